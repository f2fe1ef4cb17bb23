package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/natsembed"
	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/eventline"
	"github.com/symbridge/symbridge/pkg/subjects"
)

// tailSince is where tail starts without --since or --seq: recent enough
// to answer "is anything flowing?", bounded on a busy stream.
const tailSince = "10m"

const tailSynopsis = "tail [--config FILE | --nats-url URL] [--subject SUBJECT] [--since 10m | --seq N] [--count N] [--follow] [--json]"

// cmdTail prints the events stored in the stream, one line each, through
// an ordered consumer that it deletes on the way out (eventline.Replay).
func cmdTail(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlags("tail", tailSynopsis)
	path := fs.String("config", "", "configuration file; only its nats.* and log.* keys are used (no bot credentials needed)")
	natsURL := fs.String("nats-url", "", "overrides nats.url (enough on its own, without --config)")
	subject := fs.String("subject", bridge.DefaultStreamSubject, "subject filter, within the stream's subjects")
	since := fs.String("since", "", "start at a time: a duration ago (10m) or RFC 3339 (2026-12-03T09:00:00Z); default: "+tailSince+" ago")
	seq := fs.Uint64("seq", 0, "start at this stream sequence (1: the whole stream)")
	count := fs.Int("count", 0, "stop after this many events (0: no limit)")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted, instead of stopping at the last one stored")
	asJSON := fs.Bool("json", false, "print each event's JSON as stored, one per line, instead of the readable line")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	r := eventline.Range{Subject: *subject, Seq: *seq, Count: *count, Follow: *follow}
	switch {
	case fs.NArg() > 0:
		return usagef("tail: unexpected argument %q", fs.Arg(0))
	case *since != "" && *seq != 0:
		return usagef("tail: --since and --seq: give one of them")
	case *count < 0:
		return usagef("tail: --count %d: must be 0 (no limit) or more", *count)
	case *seq == 0:
		t, err := eventline.ParseSince(cmp.Or(*since, tailSince), time.Now())
		if err != nil {
			return usagef("tail: --since %w", err)
		}
		r.Since = t
	}
	if err := subjects.ValidFilter(*subject); err != nil {
		return usagef("tail: --subject: %w", err)
	}

	cfg, err := config.Load(*path, environ, flagOverrides(map[string]string{"nats.url": *natsURL}))
	if err != nil {
		return usageError{err}
	}
	if err := cfg.ValidateFor(config.ScopeNATS); err != nil {
		return usageError{err}
	}
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return usageError{err}
	}
	url := cfg.NATS.URL
	if cfg.NATS.Embedded.Enabled && *natsURL == "" {
		// `run` serves the stream from its embedded server, whatever
		// nats.url says: read it there.
		if url, err = natsembed.ClientURL(cfg.NATS.Embedded.Listen); err != nil {
			return usagef("nats.embedded.listen: %w", err)
		}
	}
	for _, w := range natsWarnings(cfg) {
		logger.Warn(w)
	}
	opts, err := natsOptions(cfg)
	if err != nil {
		return usageError{err}
	}
	nc, err := dialOnce(url, "symbridge-tail", opts)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", redact.URLList(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return eventline.Replay(ctx, js, cfg.NATS.Stream.Name, r, func(msg jetstream.Msg) error {
		var err error
		if *asJSON {
			_, err = fmt.Fprintf(stdout, "%s\n", msg.Data())
		} else {
			_, err = fmt.Fprintln(stdout, eventline.Line(msg))
		}
		return err
	})
}

// dialOnce connects to NATS once, within run's limit for one attempt. Not
// bridge.Connect: for tail and check a server that is down is an answer at
// once, not something to wait for.
func dialOnce(url, name string, opts []nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.Name(name), nats.Timeout(bridge.DefaultConnectTimeout)}, opts...)...)
}

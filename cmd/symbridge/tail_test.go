package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/bridgetest"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// tailMessage is a MESSAGESENT as the Agent delivers it: PresentationML
// with a mention, entities and an escaped tag in the text.
const tailMessage = `{"id":"ev1","messageId":"m1","timestamp":1796288400123,"type":"MESSAGESENT",` +
	`"initiator":{"user":{"userId":42,"displayName":"Ann Lee","email":"ann@acme.com"}},` +
	`"payload":{"messageSent":{"message":{"messageId":"m1","timestamp":1796288400123,"data":"{}",` +
	`"message":"<div data-format=\"PresentationML\" data-version=\"2.0\" class=\"wysiwyg\"><p>` +
	`<span class=\"entity\" data-entity-id=\"0\">@Bob</span> R&amp;D says &lt;b&gt; is <i>fine</i></p></div>",` +
	`"user":{"userId":42},"stream":{"streamId":"c3RyZWFt","streamType":"ROOM","external":false}}}}}`

// tailBroken has no type: the bridge dead-letters it.
const tailBroken = `{"id":"ev2","timestamp":1796288400456,"initiator":{"user":{"userId":7}}}`

// tailEnv is an embedded NATS with the bridge's stream, filled by the real
// bridge (its headers, its dead letters) from a feed the test hands events.
type tailEnv struct {
	t      *testing.T
	srv    *natstest.Server
	stream jetstream.Stream
	feed   *testFeed
	gen    *symphonytest.Generator
	stored uint64
}

func newTailEnv(t *testing.T) *tailEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv)
	stream, err := bridge.EnsureStream(t.Context(), js, bridge.StreamConfig{Name: "SYMPHONY"}, []string{"symphony.>"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed := &testFeed{batches: make(chan symphony.Batch, 8)}
	bridgetest.Start(t, context.Background(), bridgetest.Config(t, "acme", bridge.SourceDatafeed, slog.New(slog.DiscardHandler)), feed, srv.URL())
	return &tailEnv{t: t, srv: srv, stream: stream, feed: feed, gen: symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 11})}
}

// store has the bridge store the events, in one batch, and waits for them.
func (e *tailEnv) store(raws ...[]byte) {
	e.t.Helper()
	b := symphony.Batch{AckID: fmt.Sprintf("ack-%d", e.stored)}
	for _, raw := range raws {
		b.Events = append(b.Events, symphony.ParseEvent(raw))
	}
	e.feed.batches <- b
	e.stored += uint64(len(raws))
	natstest.WaitFor(e.t, 10*time.Second, func() error {
		info, err := e.stream.Info(e.t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != e.stored {
			return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, e.stored)
		}
		return nil
	})
}

// storedAt is when JetStream stored sequence seq.
func (e *tailEnv) storedAt(seq uint64) time.Time {
	e.t.Helper()
	m, err := e.stream.GetMsg(e.t.Context(), seq)
	if err != nil {
		e.t.Fatal(err)
	}
	return m.Time
}

// tail runs `symbridge tail --nats-url <server> args...` and returns its
// stdout and exit code; it fails the test when a consumer is left behind.
func (e *tailEnv) tail(ctx context.Context, args ...string) (string, int) {
	e.t.Helper()
	var stdout, stderr testlog.Buffer
	err := run(ctx, append([]string{"tail", "--nats-url", e.srv.URL()}, args...), nil, &stdout, &stderr)
	code := exitCode(err, &stderr)
	if code != 0 {
		e.t.Logf("tail %v: exit %d\nstderr: %s", args, code, stderr.String())
	}
	e.noConsumers()
	return stdout.String(), code
}

// noConsumers fails the test when a consumer is on the stream.
func (e *tailEnv) noConsumers() {
	e.t.Helper()
	info, err := e.stream.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		e.t.Errorf("%d consumers left on the stream", info.State.Consumers)
	}
}

// testFeed is a bridge.Source handing out the batches the test gives it.
type testFeed struct {
	batches chan symphony.Batch
}

func (f *testFeed) Read(ctx context.Context, _ string) (symphony.Batch, error) {
	select {
	case b := <-f.batches:
		return b, nil
	case <-ctx.Done():
		return symphony.Batch{}, ctx.Err()
	}
}

func (f *testFeed) Name() string { return "test feed" }

var tailLine = regexp.MustCompile(`^(\S+) (\d+) (\S+) (\S+) (\S+)( .*)?$`)

// seqsOf returns the stream sequence of each line, failing on a line that
// is not one of tail's.
func seqsOf(t *testing.T, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		m := tailLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a tail line: %q", line)
			continue
		}
		seq, _ := strconv.ParseUint(m[2], 10, 64)
		seqs = append(seqs, seq)
	}
	return seqs
}

// TestTailLines: one readable line per event, as the bridge stored it: the
// event's time, sequence, type, stream type and id, initiator and the
// message's text without markup; a dead letter shows its reason. --json
// prints the events as stored.
func TestTailLines(t *testing.T) {
	t.Parallel()
	e := newTailEnv(t)
	room := e.gen.Event(symphony.TypeRoomCreated)
	e.store([]byte(tailMessage), room, []byte(tailBroken))

	out, code := e.tail(t.Context())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("tail: exit %d, %d lines, want 0 and 3:\n%s", code, len(lines), out)
	}
	if want := `2026-12-03T09:00:00.123Z 1 MESSAGESENT ROOM c3RyZWFt initiator="Ann Lee" text="@Bob R&D says <b> is fine"`; lines[0] != want {
		t.Errorf("message line:\n%s\nwant\n%s", lines[0], want)
	}
	ev := symphony.ParseEvent(room)
	if prefix := fmt.Sprintf(" 2 ROOMCREATED ROOM %s initiator=", ev.StreamID); !strings.Contains(lines[1], prefix) || strings.Contains(lines[1], "text=") {
		t.Errorf("room line %q, want it to contain %q and no text", lines[1], prefix)
	}
	// An event without a type has no routing fields, its timestamp among
	// them: the line shows when it was stored.
	if m := regexp.MustCompile(`^(\S+) 3 - - - initiator=7 dead-letter="invalid event: event has no type"$`).FindStringSubmatch(lines[2]); m == nil {
		t.Errorf("dead letter line %q, want its sequence, initiator and reason", lines[2])
	} else if at, err := time.Parse(time.RFC3339, m[1]); err != nil || !at.Equal(e.storedAt(3).Truncate(time.Millisecond)) {
		t.Errorf("dead letter line's time %s (%v), want when it was stored, %s", m[1], err, e.storedAt(3))
	}

	out, code = e.tail(t.Context(), "--json")
	if want := tailMessage + "\n" + string(room) + "\n" + tailBroken + "\n"; code != 0 || out != want {
		t.Errorf("tail --json: exit %d\n%s\nwant the events as stored:\n%s", code, out, want)
	}
}

// TestTailRanges: --count, --seq, --subject, and --since as a duration or
// an RFC 3339 time (against the time JetStream stored each event).
func TestTailRanges(t *testing.T) {
	t.Parallel()
	e := newTailEnv(t)
	e.store(e.gen.Event(symphony.TypeMessageSent), e.gen.Event(symphony.TypeRoomCreated), e.gen.Event(symphony.TypeMessageSent))
	first := e.storedAt(3)
	// The second batch is stored well after the first, so that a start
	// between them is not a matter of milliseconds.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if d := time.Since(first); d < 1500*time.Millisecond {
			return fmt.Errorf("%s since the first batch", d)
		}
		return nil
	})
	e.store(e.gen.Event(symphony.TypeUserJoinedRoom), e.gen.Event(symphony.TypeMessageSent))

	for _, c := range []struct {
		args []string
		want []uint64
	}{
		{nil, []uint64{1, 2, 3, 4, 5}}, // the last 10 minutes
		{[]string{"--count", "2"}, []uint64{1, 2}},
		{[]string{"--seq", "4"}, []uint64{4, 5}},
		{[]string{"--seq", "2", "--count", "2"}, []uint64{2, 3}},
		{[]string{"--subject", "symphony.*.messagesent.>"}, []uint64{1, 3, 5}},
		{[]string{"--subject", "symphony.acme.roomcreated.room"}, []uint64{2}},
		{[]string{"--since", "1h"}, []uint64{1, 2, 3, 4, 5}},
		{[]string{"--since", first.Add(time.Millisecond).Format(time.RFC3339Nano)}, []uint64{4, 5}},
		{[]string{"--since", first.Add(-time.Hour).Format(time.RFC3339)}, []uint64{1, 2, 3, 4, 5}},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, nil},
		{[]string{"--seq", "9"}, nil},
	} {
		out, code := e.tail(t.Context(), c.args...)
		if got := seqsOf(t, out); code != 0 || !slices.Equal(got, c.want) {
			t.Errorf("tail %v: exit %d, sequences %v; want 0 and %v\n%s", c.args, code, got, c.want, out)
		}
	}

	// A duration reaching half-way between the batches, worked out just
	// before tail starts: the cases above take time a duration written in
	// the table would not allow for.
	mid := first.Add(e.storedAt(4).Sub(first) / 2)
	args := []string{"--since", time.Since(mid).Round(time.Millisecond).String()}
	out, code := e.tail(t.Context(), args...)
	if got := seqsOf(t, out); code != 0 || !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("tail %v: exit %d, sequences %v; want 0 and [4 5]\n%s", args, code, got, out)
	}
}

// TestTailFollows: --follow prints what is stored after it started, and
// stops cleanly (exit 0, no consumer left) when interrupted.
func TestTailFollows(t *testing.T) {
	t.Parallel()
	e := newTailEnv(t)
	e.store([]byte(tailMessage))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--nats-url", e.srv.URL(), "--follow"}, nil, &stdout, &stderr)
	}()
	waitSeqs := func(want []uint64) {
		natstest.WaitFor(t, 10*time.Second, func() error {
			if got := seqsOf(t, stdout.String()); !slices.Equal(got, want) {
				return fmt.Errorf("tail printed sequences %v, want %v", got, want)
			}
			return nil
		})
	}
	waitSeqs([]uint64{1})
	e.store(e.gen.Event(symphony.TypeRoomCreated))
	waitSeqs([]uint64{1, 2})
	cancel()
	select {
	case err := <-done:
		if code := exitCode(err, io.Discard); code != 0 {
			t.Errorf("tail --follow interrupted: exit %d (%v), want 0\n%s", code, err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail --follow did not stop after the interrupt")
	}
	e.noConsumers()
}

// TestTailConfigFile: tail reads nats.* from the same file as run, which
// needs no bot keys, and the stream named by nats.stream.name.
func TestTailConfigFile(t *testing.T) {
	t.Parallel()
	e := newTailEnv(t)
	e.store([]byte(tailMessage))
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", fmt.Sprintf("nats:\n  url: %s\nlog:\n  level: warn\n", e.srv.URL()))
	var stdout, stderr testlog.Buffer
	err := run(t.Context(), []string{"tail", "--config", good}, nil, &stdout, &stderr)
	if err != nil || seqsOf(t, stdout.String()) == nil {
		t.Errorf("tail --config without bot keys: %v, printed %q\n%s", err, stdout.String(), stderr.String())
	}
	// A BDK file whose bot key is missing is fine too: tail does not use it.
	bdk := write("bdk.yaml", fmt.Sprintf("host: acme.symphony.com\nbot:\n  username: bot\n  privateKey:\n    path: /nonexistent.pem\nnats:\n  url: %s\n", e.srv.URL()))
	if err := run(t.Context(), []string{"tail", "--config", bdk}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("tail --config with an unreadable bot key: %v", err)
	}

	// With nats.embedded.enabled, run serves the stream itself, on
	// nats.embedded.listen: tail reads it there.
	embedded := write("embedded.yaml", fmt.Sprintf("nats:\n  embedded:\n    enabled: true\n    listen: 127.0.0.1:%d\n", e.srv.Port()))
	stdout = testlog.Buffer{}
	if err := run(t.Context(), []string{"tail", "--config", embedded}, nil, &stdout, io.Discard); err != nil || seqsOf(t, stdout.String()) == nil {
		t.Errorf("tail --config with nats.embedded.enabled: %v, printed %q", err, stdout.String())
	}

	other := write("other.yaml", fmt.Sprintf("nats:\n  url: %s\n  stream:\n    name: OTHER\n", e.srv.URL()))
	err = run(t.Context(), []string{"tail", "--config", other}, nil, io.Discard, io.Discard)
	if code := exitCode(err, io.Discard); code != 1 || !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "OTHER") {
		t.Errorf("tail of a missing stream: exit %d (%v), want 1 naming stream OTHER", code, err)
	}
	e.noConsumers()
}

// TestTailBadUsage: bad flags and invalid nats.* or log.* keys are exit 2
// with the flag or key named.
func TestTailBadUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badURL := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badURL, []byte("nats:\n  url: http://127.0.0.1:4222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badLog := filepath.Join(dir, "log.yaml")
	if err := os.WriteFile(badLog, []byte("nats:\n  url: nats://127.0.0.1:4222\nlog:\n  format: xml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", badURL}, "nats.url: scheme must be nats, tls, ws or wss"},
		{[]string{"--config", badLog}, "log.format"},
		{nil, "nats.url: required"},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--since", "10m", "--seq", "3"}, "--since and --seq"},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--since", "-5m"}, "--since"},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--subject", "a..b"}, "--subject"},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--count", "-1"}, "--count"},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		err := run(t.Context(), append([]string{"tail"}, c.args...), nil, io.Discard, io.Discard)
		if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("tail %v: exit %d (%v), want 2 naming %q", c.args, code, err, c.want)
		}
	}
}

// TestTailUnreachableNATS: a server that does not answer is exit 1 at
// once, not a wait.
func TestTailUnreachableNATS(t *testing.T) {
	t.Parallel()
	var stderr testlog.Buffer
	err := run(t.Context(), []string{"tail", "--nats-url", "nats://user:s3cret@" + closedPort(t)}, nil, io.Discard, &stderr)
	if code := exitCode(err, &stderr); code != 1 || !strings.Contains(err.Error(), "connect to NATS") {
		t.Errorf("tail of an unreachable server: exit %d (%v), want 1", code, err)
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("the password in the URL reached the output: %s", stderr.String())
	}
}

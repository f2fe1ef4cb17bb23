// Command go-worker is an example consumer of the events symbridge stores in
// JetStream. Start as many copies as you like, in any language (the C worker
// next door joins the same consumer): they share one durable pull consumer,
// so each event is handled by one of them, and an event a worker took but did
// not acknowledge (it crashed, it was killed) goes to another after AckWait.
//
//	go run ./examples/go-worker                                  # join (or create) the durable "workers"
//	go run ./examples/go-worker --since 10m                      # replay the last ten minutes, then exit
//	go run ./examples/go-worker --seq 1 --follow                 # replay everything, then keep following
//
// Each message gets one line, the same as `symbridge tail` prints (time,
// stream sequence, type, stream type and id, initiator, a text snippet; see
// pkg/eventline), and an explicit acknowledgement. The acknowledgement is
// confirmed by the server (DoubleAck): a worker that says it handled an event
// knows the server will not deliver it again, which is what makes --record
// exact enough for a test to check "none twice".
//
// A replay (--since, --seq) reads through an ordered consumer: an ephemeral,
// server-side cursor that needs no acknowledgement and is deleted when the
// replay ends, so it leaves no consumer behind (eventline.Replay).
//
// An idempotent consumer keys its side effects on the Nats-Msg-Id header:
// symbridge derives it from the event's content, so a redelivery (this
// consumer's own, after a crash) carries the same id.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/eventline"
)

// errReported is a usage error already printed by the flag package.
var errReported = errors.New("bad usage")

type options struct {
	server, creds, stream, durable, filter, record string
	maxAckPending, batch                           int
	ackWait                                        time.Duration
	since                                          string
	seq                                            uint64
	follow, quiet                                  bool

	startTime time.Time // parsed --since
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 after a clean stop
// (SIGTERM, SIGINT, a finished replay), 1 on an error, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errReported) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "go-worker: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	natsOpts := []nats.Option{nats.Name("symbridge-go-worker"), nats.MaxReconnects(-1)}
	if o.creds != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(o.creds))
	}
	nc, err := nats.Connect(o.server, natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "go-worker: connect to %s: %v\n", o.server, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "go-worker: %v\n", err)
		return 1
	}

	var rec *os.File
	if o.record != "" {
		if rec, err = os.OpenFile(o.record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			fmt.Fprintf(stderr, "go-worker: --record: %v\n", err)
			return 1
		}
		defer rec.Close()
	}
	w := &worker{o: o, out: stdout, errOut: stderr, rec: rec}

	if o.replay() {
		err = w.replay(ctx, js)
	} else {
		err = w.work(ctx, js)
	}
	if err != nil {
		fmt.Fprintf(stderr, "go-worker: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "go-worker: stopped after %d messages\n", w.handled)
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("go-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", defaultServer(), "NATS server URL(s), comma-separated (default: $NATS_URL, else "+nats.DefaultURL+")")
	fs.StringVar(&o.creds, "creds", "", "NATS credentials file")
	fs.StringVar(&o.stream, "stream", "SYMPHONY", "the stream symbridge writes to")
	fs.StringVar(&o.durable, "durable", "workers", "durable consumer the workers share")
	fs.StringVar(&o.filter, "filter", "symphony.>", "subject filter (of the consumer this worker creates, or of the replay)")
	fs.IntVar(&o.maxAckPending, "max-ack-pending", 1000, "MaxAckPending of the consumer, when this worker creates it")
	fs.DurationVar(&o.ackWait, "ack-wait", 30*time.Second, "AckWait of the consumer, when this worker creates it: how long a message may stay un-acked before the server redelivers it")
	fs.IntVar(&o.batch, "batch", 10, "messages asked for per pull; small keeps the work shared and little in hand")
	fs.StringVar(&o.record, "record", "", "append '<stream sequence> <Nats-Msg-Id>' per message handled to this file, written before the ack")
	fs.StringVar(&o.since, "since", "", "replay from a time: a duration ago (10m) or RFC 3339 (2026-12-03T09:00:00Z)")
	fs.Uint64Var(&o.seq, "seq", 0, "replay from this stream sequence")
	fs.BoolVar(&o.follow, "follow", false, "replay only: keep following new events after catching up")
	fs.BoolVar(&o.quiet, "quiet", false, "no line per message")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go-worker [flags]\n\nJoins the durable pull consumer --durable of --stream, or replays with --since/--seq.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errReported // the flag package has printed it, with the usage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.since != "" && o.seq != 0 {
		return nil, errors.New("--since and --seq: give one of them")
	}
	if o.batch < 1 {
		return nil, fmt.Errorf("--batch %d: must be at least 1", o.batch)
	}
	if o.maxAckPending < 1 {
		return nil, fmt.Errorf("--max-ack-pending %d: must be at least 1", o.maxAckPending)
	}
	if o.ackWait < time.Second {
		return nil, fmt.Errorf("--ack-wait %s: must be at least 1s", o.ackWait)
	}
	if o.follow && !o.replay() {
		return nil, errors.New("--follow needs --since or --seq")
	}
	if o.since != "" {
		t, err := eventline.ParseSince(o.since, time.Now())
		if err != nil {
			return nil, fmt.Errorf("--since %w", err)
		}
		o.startTime = t
	}
	return o, nil
}

// defaultServer is $NATS_URL, as the nats CLI reads it, else the local
// default.
func defaultServer() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

func (o *options) replay() bool { return o.since != "" || o.seq != 0 }

type worker struct {
	o           *options
	out, errOut io.Writer
	rec         *os.File
	handled     int
}

// work joins the shared durable consumer and handles messages until ctx ends.
// On SIGTERM the iterator stops: Next returns, the message in hand (if any)
// is finished, and the messages pulled but not handed to us stay un-acked;
// the server gives them to another worker after AckWait.
func (w *worker) work(ctx context.Context, js jetstream.JetStream) error {
	cons, err := w.consumer(ctx, js)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(w.o.batch))
	if err != nil {
		return fmt.Errorf("pull from %s/%s: %w", w.o.stream, w.o.durable, err)
	}
	defer context.AfterFunc(ctx, it.Stop)()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("next message: %w", err)
		}
		if err := w.handle(msg); err != nil {
			return err
		}
		w.ack(ctx, msg)
	}
}

// ack acknowledges msg and waits for the server's confirmation. It
// finishes the message in hand even when SIGTERM came meanwhile: the ack
// gets its own short deadline.
func (w *worker) ack(ctx context.Context, msg jetstream.Msg) {
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ackCtx); err != nil {
		// Not fatal: the server redelivers the message after AckWait,
		// to this worker or another (consumers must be idempotent).
		fmt.Fprintf(w.errOut, "go-worker: ack: %v (the server will redeliver it)\n", err)
	}
}

// consumer finds the durable consumer, or creates it with this worker's
// settings. Workers starting together may race to create it: whoever loses
// joins the winner's.
func (w *worker) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cons, err := js.Consumer(ctx, w.o.stream, w.o.durable)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s/%s: %w", w.o.stream, w.o.durable, err)
	}
	cons, err = js.CreateConsumer(ctx, w.o.stream, jetstream.ConsumerConfig{
		Durable:       w.o.durable,
		FilterSubject: w.o.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       w.o.ackWait,
		MaxAckPending: w.o.maxAckPending,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return js.Consumer(ctx, w.o.stream, w.o.durable)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s/%s: %w", w.o.stream, w.o.durable, err)
	}
	return cons, nil
}

// replay reads from --since or --seq through an ordered consumer, up to the
// last matching message stored when it started (or on, with --follow).
func (w *worker) replay(ctx context.Context, js jetstream.JetStream) error {
	r := eventline.Range{Subject: w.o.filter, Seq: w.o.seq, Since: w.o.startTime, Follow: w.o.follow}
	return eventline.Replay(ctx, js, w.o.stream, r, w.handle)
}

// handle prints msg's line and records it. It fails when the record cannot be written: acknowledging an
// event the record lacks would make the record lie.
func (w *worker) handle(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	seq := md.Sequence.Stream
	if !w.o.quiet {
		fmt.Fprintln(w.out, eventline.Line(msg))
	}
	if w.rec != nil {
		// One write(2) per line, straight to the file: nothing buffered
		// here can be lost when the process is killed after the ack.
		line := strconv.FormatUint(seq, 10) + " " + msg.Headers().Get(jetstream.MsgIDHeader) + "\n"
		if _, err := w.rec.WriteString(line); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
	}
	w.handled++
	return nil
}

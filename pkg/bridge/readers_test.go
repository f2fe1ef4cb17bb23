package bridge_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// TestConcurrentReaders runs the bridge on the simulator's datafeed v2 with
// up to 3 readers: a quiet feed is polled by one reader; a backlog of full
// reads adds readers; every batch is acknowledged only once all its events
// (and every batch acknowledged before it) are in the stream; every event is
// stored exactly once; and once the feed is drained the added readers
// retire.
func TestConcurrentReaders(t *testing.T) {
	const events, maxBatch = 600, 10
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"symphony.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	agent := symphonytest.New(symphonytest.Config{Username: "bot", MaxBatch: maxBatch, LongPoll: 200 * time.Millisecond})
	t.Cleanup(agent.Close)
	url := agent.Start()

	var mu sync.Mutex
	var acked int64
	var violation error
	agent.OnAck(func(_ string, evs [][]byte) {
		// Runs before the acknowledging read goes on. Serialised, so that
		// every batch counted in acked had its ack sent before Info.
		mu.Lock()
		defer mu.Unlock()
		acked += int64(len(evs))
		info, err := stream.Info(context.Background())
		switch {
		case err != nil && violation == nil:
			violation = err
		case err == nil && int64(info.State.Msgs) < acked && violation == nil:
			violation = fmt.Errorf("acknowledged %d events with %d stored", acked, info.State.Msgs)
		}
	})

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	client, err := symphony.NewClient(symphony.ClientConfig{
		PodURL: url, AgentURL: url, KeyManagerURL: url, Username: "bot",
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	feed := symphony.NewDatafeedV2(client, symphony.DatafeedOptions{})
	if _, err := feed.Open(ctx); err != nil {
		t.Fatal(err)
	}
	subj, _ := subjects.Compile(subjects.DefaultTemplate)
	dead, _ := subjects.Compile("symphony.{pod}._invalid")
	bjs, err := bridge.NewJetStream(natstest.Connect(t, srv), bridge.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	obs := &batchObserver{}
	b, err := bridge.New(bridge.Config{Pod: testPod, Source: bridge.SourceDatafeed, Subject: subj, DeadLetter: dead,
		Readers: 3, FullRead: maxBatch, Observer: obs}, feed, bjs)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Quiet: one reader, long-polling.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := agent.Feeds()[0].Readers; n != 1 {
			return fmt.Errorf("%d reads in progress", n)
		}
		return nil
	})
	// Let a long poll come back empty: the quiet feed must still leave one reader.
	before := b.Stats().Batches
	natstest.WaitFor(t, 10*time.Second, func() error {
		if b.Stats().Batches <= before {
			return errors.New("no empty read has come back yet")
		}
		return nil
	})
	if n := b.Readers(); n != 1 {
		t.Fatalf("%d readers on a quiet feed, want 1", n)
	}

	// A backlog of full reads.
	gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 3})
	agent.Emit(gen.Mix(events)...)
	peak := 0
	natstest.WaitFor(t, 30*time.Second, func() error {
		peak = max(peak, b.Readers())
		if st := b.Stats(); st.Stored() < events {
			return fmt.Errorf("%d of %d stored", st.Stored(), events)
		}
		return nil
	})
	if peak < 2 {
		t.Errorf("at most %d reader(s) during a backlog of full reads, want more", peak)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := b.Readers(); n != 1 {
			return fmt.Errorf("%d readers after the feed drained, want 1", n)
		}
		return nil
	})

	mu.Lock()
	defer mu.Unlock()
	if violation != nil {
		t.Error(violation)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if info.State.Msgs != events || st.Published != events || st.DeadLettered != 0 {
		t.Errorf("stream holds %d, stats %+v; want %d published, each once", info.State.Msgs, st, events)
	}
	if as := agent.Stats(); as.EventsAcked != events || as.Redeliveries != 0 {
		t.Errorf("Agent: %d events acked, %d redelivered; want %d and 0", as.EventsAcked, as.Redeliveries, events)
	}
	if n, evs, least := obs.get(); n == 0 || evs != events || least <= 0 {
		t.Errorf("observed %d batches of %d events in all, the fastest in %s; want %d events, each batch taking some time",
			n, evs, least, events)
	}
}

// batchObserver is a [bridge.Observer] that sums what it is told.
type batchObserver struct {
	mu     sync.Mutex
	n      int           // batches
	events int           // events in them
	least  time.Duration // the shortest latency
}

func (o *batchObserver) ObserveBatch(d time.Duration, events int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 || d < o.least {
		o.least = d
	}
	o.n++
	o.events += events
}

func (o *batchObserver) get() (n, events int, least time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n, o.events, o.least
}

// queueFeed is a concurrent fake feed: each read takes the next batch,
// whichever reader asks; a read of the batch acknowledged by gated waits for
// gate first. With nothing left a read waits for ctx.
type queueFeed struct {
	mu      sync.Mutex
	batches []symphony.Batch
	reads   int
	gated   string
	gate    chan struct{}
}

func (q *queueFeed) Name() string          { return "queue feed" }
func (q *queueFeed) ConcurrentReads() bool { return true }

func (q *queueFeed) Read(ctx context.Context, _ string) (symphony.Batch, error) {
	q.mu.Lock()
	q.reads++
	if len(q.batches) == 0 {
		q.mu.Unlock()
		<-ctx.Done()
		return symphony.Batch{}, fmt.Errorf("read: %w", ctx.Err())
	}
	b := q.batches[0]
	q.batches = q.batches[1:]
	q.mu.Unlock()
	if b.AckID == q.gated {
		select {
		case <-q.gate:
		case <-ctx.Done():
			return symphony.Batch{}, fmt.Errorf("read: %w", ctx.Err())
		}
	}
	return b, nil
}

func (q *queueFeed) Reads() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reads
}

// stuckJS fails the first publish of the message with Msg-Id poison, and
// holds every later one until release is closed.
type stuckJS struct {
	jetstream.JetStream
	poison   string
	release  chan struct{}
	attempts atomic.Int32
}

func (j *stuckJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if m.Header.Get(jetstream.MsgIDHeader) == j.poison {
		if j.attempts.Add(1) == 1 {
			return nil, errors.New("injected publish failure")
		}
		<-j.release
	}
	return j.JetStream.PublishMsgAsync(m, opts...)
}

// TestReadyWhileAnyReaderFailsToPublish: one reader's batch cannot be
// published while another reader stores its own; /readyz must keep
// reporting the failing reader (a shared error was cleared by the other
// reader's success).
func TestReadyWhileAnyReaderFailsToPublish(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	poisonRaw := messageSent(2, "s")
	poisonEv := symphony.ParseEvent(poisonRaw)
	js := &stuckJS{JetStream: e.js, poison: symphony.MsgID(&poisonEv), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(js.release)
		}
	}()
	q := &queueFeed{
		batches: []symphony.Batch{batch("a", messageSent(1, "s")), batch("p", poisonRaw), batch("b", messageSent(3, "s"))},
		gated:   "b", gate: make(chan struct{}),
	}
	cfg := testConfig(t)
	cfg.Readers, cfg.FullRead = 2, 1
	b, err := bridge.New(cfg, q, js)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runBridge(t, b)

	// One reader is stuck on the poison batch after a failed publish.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := js.attempts.Load(); n < 2 {
			return fmt.Errorf("%d publish attempts of the poison event", n)
		}
		return nil
	})
	if err := b.Ready(); err == nil {
		t.Fatal("Ready() = nil while a publish fails")
	}
	// The other reader stores its batch and reads again.
	close(q.gate)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := q.Reads(); n < 4 {
			return fmt.Errorf("%d reads", n)
		}
		return nil
	})
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "publishing") {
		t.Errorf("Ready() = %v after another reader stored its batch, want the failing publish", err)
	}

	close(js.release)
	released = true
	natstest.WaitFor(t, 10*time.Second, b.Ready)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Published != 3 {
		t.Errorf("stats = %+v, want 3 published", st)
	}
}

package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

const (
	testPod    = "acme"
	testStream = "SYMPHONY"
	deadSubj   = "symphony.acme._invalid"
)

// --- events ---------------------------------------------------------------

const baseTS = int64(1767225600000) // 2026-01-01T00:00:00Z

func messageSent(i int, streamID string) []byte {
	return fmt.Appendf(nil, `{"id":"ev%d","messageId":"m%d","timestamp":%d,"type":"MESSAGESENT",`+
		`"initiator":{"user":{"userId":7078106482}},"payload":{"messageSent":{"message":{"messageId":"m%d",`+
		`"timestamp":%d,"message":"<div data-format=\"PresentationML\">hello %d</div>","data":"{}",`+
		`"stream":{"streamId":%q,"streamType":"ROOM"}}}}}`, i, i, baseTS+int64(i), i, baseTS+int64(i), i, streamID)
}

func userJoined(id string, affected int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"timestamp":%d,"type":"USERJOINEDROOM","initiator":{"user":{"userId":1}},`+
		`"payload":{"userJoinedRoom":{"stream":{"streamId":"lJwhJ0nYKh2V4xb_DdxKv3___o6YJ4ZRdA","streamType":"ROOM"},`+
		`"affectedUser":{"userId":%d}}}}`, id, baseTS, affected)
}

func connectionRequested(i int) []byte {
	return fmt.Appendf(nil, `{"id":"c%d","timestamp":%d,"type":"CONNECTIONREQUESTED","initiator":{"user":{"userId":1}},`+
		`"payload":{"connectionRequested":{"toUser":{"userId":%d}}}}`, i, baseTS, 100+i)
}

func imCreated(i int) []byte {
	return fmt.Appendf(nil, `{"timestamp":%d,"type":"INSTANTMESSAGECREATED","initiator":{"user":{"userId":%d}},`+
		`"payload":{"instantMessageCreated":{"stream":{"streamId":"im+%d/x==","streamType":"IM"}}}}`, baseTS, 10+i, i)
}

func unknownType(i int) []byte {
	return fmt.Appendf(nil, `{"id":"u%d","timestamp":%d,"type":"FUTURETHING","payload":{"futureThing":{"n":%d}}}`, i, baseTS, i)
}

// batch decodes raw events into a batch acknowledged by ack.
func batch(ack string, raws ...[]byte) symphony.Batch {
	b := symphony.Batch{AckID: ack, FeedID: "test_f"}
	for _, r := range raws {
		b.Events = append(b.Events, symphony.ParseEvent(r))
	}
	return b
}

// --- a fake feed ----------------------------------------------------------

// feed is a fake Symphony feed with the Agent's ack semantics: it hands out
// its batches in order; a batch counts as acknowledged when a read carries
// its AckID, and a read without it gets the same batch again (a
// redelivery). After the last batch a read long-polls until ctx ends.
type feed struct {
	mu      sync.Mutex
	batches []symphony.Batch
	next    int  // index of the batch outstanding or to deliver
	out     bool // batches[next] was delivered and not acknowledged yet
	acks    []string
	times   []time.Time
	acked   int
	// hooks, all optional; called without the lock held.
	onAck  func(b symphony.Batch)                               // a batch was acknowledged
	before func(ctx context.Context, n int, ackID string) error // may fail read n (0-based) or block
}

func (f *feed) Name() string { return "fake feed" }

func (f *feed) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	f.mu.Lock()
	n := len(f.acks)
	f.acks = append(f.acks, ackID)
	f.times = append(f.times, time.Now())
	var acked *symphony.Batch
	if f.out && ackID != "" && ackID == f.batches[f.next].AckID {
		acked = &f.batches[f.next]
		f.next++
		f.acked++
		f.out = false
	}
	f.mu.Unlock()

	if acked != nil && f.onAck != nil {
		f.onAck(*acked)
	}
	if f.before != nil {
		if err := f.before(ctx, n, ackID); err != nil {
			return symphony.Batch{}, err
		}
	}

	f.mu.Lock()
	if f.next >= len(f.batches) {
		f.mu.Unlock()
		<-ctx.Done()
		return symphony.Batch{}, fmt.Errorf("read: %w", ctx.Err())
	}
	b := f.batches[f.next]
	f.out = true
	f.mu.Unlock()
	return b, nil
}

func (f *feed) Acks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acks...)
}

func (f *feed) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acks)
}

func (f *feed) Acked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acked
}

func (f *feed) Times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

// --- NATS side ------------------------------------------------------------

type env struct {
	srv    *natstest.Server
	nc     *nats.Conn          // the bridge's connection
	js     jetstream.JetStream // the bridge's JetStream context
	check  jetstream.JetStream // a separate connection to look at the stream
	stream jetstream.Stream
}

func setup(t *testing.T, sc bridge.StreamConfig) *env {
	t.Helper()
	e := &env{srv: natstest.RunServer(t)}
	ctx := t.Context()
	nc, err := bridge.Connect(ctx, bridge.NATSConfig{URL: e.srv.URL(),
		Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	if e.js, err = bridge.NewJetStream(nc, bridge.JetStreamConfig{PublishTimeout: time.Second, MaxPending: 256}); err != nil {
		t.Fatal(err)
	}
	e.check = natstest.JetStream(t, e.srv)
	if sc.Name == "" {
		sc.Name = testStream
	}
	if e.stream, err = bridge.EnsureStream(ctx, e.js, sc, []string{"symphony.acme.>"}, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func testConfig(t *testing.T) bridge.Config {
	t.Helper()
	subj, err := subjects.Compile("symphony.{pod}.{eventType}.{streamType}")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := subjects.Compile("symphony.{pod}._invalid")
	if err != nil {
		t.Fatal(err)
	}
	return bridge.Config{
		Pod: testPod, Source: bridge.SourceDatafeed, Subject: subj, DeadLetter: dead,
		PublishTimeout: time.Second, MaxPending: 256, PublishRetryMax: 100 * time.Millisecond,
		Retry:     symphony.RetryConfig{MaxAttempts: -1, Initial: 5 * time.Millisecond, Multiplier: 2, Max: 50 * time.Millisecond},
		SlowRetry: 200 * time.Millisecond,
		Logger:    testLogger(t),
	}
}

// testLogger sends the bridge's logs to t.Log (visible with -v or on failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runBridge starts b.Run and returns a stop function that cancels it and
// returns Run's result. The test's cleanup stops it too.
func runBridge(t *testing.T, b *bridge.Bridge) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- b.Run(ctx) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-ch:
			case <-time.After(10 * time.Second):
				result = errors.New("Run did not return within 10s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop, ch
}

// runUntilAcked runs b until f has received acks ackIds, then stops it; Run
// must return nil.
func runUntilAcked(t *testing.T, b *bridge.Bridge, f *feed, acks int) {
	t.Helper()
	stop, _ := runBridge(t, b)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := f.Acked(); n < acks {
			return fmt.Errorf("%d of %d batches acknowledged", n, acks)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// storedMsgs returns every message in the stream, in order.
func storedMsgs(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	msgs, err := fetchAll(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func fetchAll(ctx context.Context, js jetstream.JetStream) ([]*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, testStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("get seq %d: %w", seq, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// checkStoredBeforeAck fails the test when a batch is acknowledged before
// every one of its events is in the stream (under its own Msg-Id, or as a
// dead letter naming it or its raw bytes).
func checkStoredBeforeAck(t *testing.T, js jetstream.JetStream) func(symphony.Batch) {
	return func(b symphony.Batch) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		msgs, err := fetchAll(ctx, js)
		if err != nil {
			t.Errorf("ack %s: reading the stream: %v", b.AckID, err)
			return
		}
		have := map[string]bool{}
		for _, m := range msgs {
			have[m.Header.Get(jetstream.MsgIDHeader)] = true
			if id := m.Header.Get(bridge.HeaderOriginalMsgID); id != "" {
				have[id] = true
			}
		}
		for i := range b.Events {
			ev := &b.Events[i]
			id := "dl-" + symphony.RawMsgID(ev.Raw)
			if ev.Err == nil {
				id = symphony.MsgID(ev)
			}
			if !have[id] {
				t.Errorf("ack %s arrived before event %d (%s) was stored", b.AckID, i, id)
			}
		}
	}
}

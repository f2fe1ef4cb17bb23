package eventline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/eventline"
)

const stream = "EVENTS"

// newStream starts a server with a stream of subjects a.> and b.>, and
// publishes the subjects given, in order (sequence i+1 is subjects[i]).
func newStream(t *testing.T, subjects ...string) (jetstream.JetStream, *natstest.Server) {
	t.Helper()
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: stream, Subjects: []string{"a.>", "b.>"}}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, subjects...)
	return js, srv
}

func publish(t *testing.T, js jetstream.JetStream, subjects ...string) {
	t.Helper()
	for _, s := range subjects {
		if _, err := js.Publish(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// replay runs Replay and returns the stream sequences it handed over.
func replay(t *testing.T, ctx context.Context, js jetstream.JetStream, r eventline.Range) ([]uint64, error) {
	t.Helper()
	var seqs []uint64
	err := eventline.Replay(ctx, js, stream, r, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seqs = append(seqs, md.Sequence.Stream)
		return nil
	})
	return seqs, err
}

// noConsumers fails the test when a consumer is left on the stream.
func noConsumers(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d consumers left on the stream", n)
	}
}

func TestReplayRanges(t *testing.T) {
	t.Parallel()
	// The last message is b.2: a replay of a.> must still end, on the
	// server saying no a.> message is pending.
	js, _ := newStream(t, "a.1", "b.1", "a.2", "a.3", "b.2")
	for _, c := range []struct {
		name string
		r    eventline.Range
		want []uint64
	}{
		{"all", eventline.Range{}, []uint64{1, 2, 3, 4, 5}},
		{"filter", eventline.Range{Subject: "a.>"}, []uint64{1, 3, 4}},
		{"from a sequence", eventline.Range{Seq: 3}, []uint64{3, 4, 5}},
		{"filter from a sequence", eventline.Range{Subject: "b.*", Seq: 3}, []uint64{5}},
		{"count", eventline.Range{Subject: "a.>", Count: 2}, []uint64{1, 3}},
		{"since the past", eventline.Range{Since: time.Now().Add(-time.Hour)}, []uint64{1, 2, 3, 4, 5}},
		{"since the future", eventline.Range{Since: time.Now().Add(time.Hour)}, nil},
		{"past the end", eventline.Range{Seq: 6}, nil},
	} {
		got, err := replay(t, t.Context(), js, c.r)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: Replay %+v = %v, %v; want %v", c.name, c.r, got, err, c.want)
		}
	}
	noConsumers(t, js)
}

func TestReplayNothingAndErrors(t *testing.T) {
	t.Parallel()
	js, _ := newStream(t)
	if got, err := replay(t, t.Context(), js, eventline.Range{}); err != nil || got != nil {
		t.Errorf("Replay of an empty stream = %v, %v", got, err)
	}
	publish(t, js, "a.1")
	if got, err := replay(t, t.Context(), js, eventline.Range{Subject: "b.>"}); err != nil || got != nil {
		t.Errorf("Replay of a filter nothing matches = %v, %v", got, err)
	}
	if err := eventline.Replay(t.Context(), js, "NOPE", eventline.Range{}, nil); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Replay of a missing stream = %v, want ErrStreamNotFound", err)
	}
	stop := errors.New("stop")
	err := eventline.Replay(t.Context(), js, stream, eventline.Range{}, func(jetstream.Msg) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Replay = %v, want fn's error", err)
	}
	noConsumers(t, js)
}

// TestReplayFollows: with Follow, a message published after the start is
// handed over, and the replay ends, leaving no consumer, when ctx ends.
func TestReplayFollows(t *testing.T) {
	t.Parallel()
	js, _ := newStream(t, "a.1")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	var seqs []uint64
	got := func() []uint64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(seqs) }
	done := make(chan error, 1)
	go func() {
		done <- eventline.Replay(ctx, js, stream, eventline.Range{Follow: true}, func(msg jetstream.Msg) error {
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			seqs = append(seqs, md.Sequence.Stream)
			return nil
		})
	}()
	wait := func(want []uint64) {
		natstest.WaitFor(t, 10*time.Second, func() error {
			if g := got(); !slices.Equal(g, want) {
				return fmt.Errorf("replayed %v, want %v", g, want)
			}
			return nil
		})
	}
	wait([]uint64{1})
	publish(t, js, "b.1")
	wait([]uint64{1, 2})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Replay after ctx ended = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Replay did not return after ctx ended")
	}
	noConsumers(t, js)
}

// TestReplayCancelledBeforeStart: a ctx that ended before the replay began
// stops it as cleanly as one ending during it (nil, no consumer left).
func TestReplayCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	js, _ := newStream(t, "a.1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := eventline.Replay(ctx, js, stream, eventline.Range{Follow: true}, func(jetstream.Msg) error { called = true; return nil })
	if err != nil || called {
		t.Errorf("Replay with an ended ctx = %v (fn called: %v), want nil before any message", err, called)
	}
	noConsumers(t, js)
}

package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLog is the runner's output in a test: one t.Log per line.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestThreeInstancesShareOneFeed runs three `symbridge run` processes with
// the same configuration (account, datafeed.tag, NATS) against the simulated
// Agent and an embedded JetStream (issue 12). Their start-ups overlap for
// certain (the Agent answers their tagged lists together, before any of them
// can create a feed); then the shared feed is lost (400) and one instance is
// SIGKILLed and restarted. Sharing one feed, they read each event about
// once; with a feed each they would read it three times.
func TestThreeInstancesShareOneFeed(t *testing.T) {
	const (
		instances = 3
		window    = 20000 // events emitted after the 400, and after the restart
		maxRatio  = 1.2   // events handed out per event emitted within a window
	)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r := &runner{
		// A budget the two windows cannot use up, however long the steps
		// between them take (a kill tried again while the others read on);
		// emission stops once they are measured.
		o: options{events: 5000 + 10*window, instances: instances, visibility: time.Second,
			longPoll: 2 * time.Second, maxBatch: 100, backlog: 500, stall: time.Minute, seed: 12},
		out: testLog{t}, t0: time.Now(), rng: mrand.New(mrand.NewPCG(12, 0xc4a05)),
	}
	r.seg = r.o.events // no plan: the emitter runs free
	t.Cleanup(r.tearDown)
	if _, err := r.setUp(ctx, dir); err != nil {
		t.Fatal(err)
	}

	// a. Start-up: all three lists answered before any create.
	r.hold = r.agent.HoldLists(instances)
	if err := r.br.start(); err != nil {
		t.Fatal(err)
	}
	superCtx, superCancel := context.WithCancel(ctx)
	emitCtx, emitCancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	emitErr := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); r.br.supervise(superCtx, r.logf) }()
	go func() {
		defer wg.Done()
		if err := r.waitFeed(emitCtx, time.Minute); err != nil {
			emitErr <- fmt.Errorf("no instance opened a feed: %w", err)
			return
		}
		emitErr <- r.emit(emitCtx)
	}()
	defer func() { emitCancel(); superCancel(); wg.Wait() }()

	within(ctx, t, time.Minute, "the start-up barrier to release (all three tagged lists waiting)", func() bool {
		select {
		case <-r.hold.Released():
			return true
		default:
			return false
		}
	})
	if listed := r.hold.Listed(); len(listed) != instances || slices.ContainsFunc(listed, func(n int) bool { return n != 0 }) {
		t.Fatalf("start-up lists answered with %v feeds, want %d answers of 0: the start-ups did not overlap", listed, instances)
	}
	within(ctx, t, time.Minute, "all three instances to read", func() bool {
		for i := range instances {
			if r.ho.read(i) == 0 {
				return false
			}
		}
		return true
	})
	if feeds := r.sharing().feeds; len(feeds) != 1 {
		t.Errorf("%d tagged feeds after three instances started at once, want 1: %v", len(feeds), feeds)
	}
	r.logf("all three instances read; %s", r.sharing().line())

	// b. The shared feed is lost: 400.
	within(ctx, t, 2*time.Minute, "5000 events emitted", func() bool { return r.led.counts().emitted >= 5000 })
	at400 := r.mark()
	if err := r.expireFeed(ctx, "the 400"); err != nil {
		t.Fatal(err)
	}
	checkRatio(ctx, t, r, at400, window, maxRatio, "after the 400")

	// c. One instance SIGKILLed and restarted.
	if err := r.killAimed(ctx, "the kill"); err != nil {
		t.Fatal(err)
	}
	atRestart := r.mark()
	killed := slices.IndexFunc(r.br, func(b *bridgeProc) bool { _, k, _ := b.counts(); return k > 0 })
	if killed < 0 {
		t.Fatal("no instance was killed")
	}
	before := r.ho.read(killed)
	within(ctx, t, time.Minute, "the restarted instance to read", func() bool { return r.ho.read(killed) > before })
	checkRatio(ctx, t, r, atRestart, window, maxRatio, "after the restart")

	// d. Every event stored once; one feed.
	emitCancel()
	select {
	case err := <-emitErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("emitting: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("emitting: %v", ctx.Err())
	}
	within(ctx, t, 2*time.Minute, "every emitted event acknowledged or dropped by Symphony", func() bool {
		c := r.led.counts()
		return c.resolved >= c.emitted
	})
	qctx, qcancel := context.WithTimeout(ctx, 3*r.o.visibility+5*time.Second)
	_ = poll(qctx, 50*time.Millisecond, func() bool { held, _ := r.backlog(); return held == 0 })
	qcancel()
	superCancel()
	if err := r.br.stop(15 * time.Second); err != nil {
		t.Errorf("stopping the instances: %v", err)
	}
	tl := r.led.newTally()
	if _, err := r.obs.readAll(ctx, func(subject string, data []byte) { tl.add(data, isDeadLetter(subject)) }); err != nil {
		t.Fatal(err)
	}
	v := tl.verdict()
	share := r.sharing()
	t.Log(share.line())
	t.Log(v.line())
	if v.Lost > 0 || v.Duplicates > 0 || v.Unexpected > 0 || v.Corrupted > 0 || v.DeadLetter > 0 {
		t.Errorf("stream: %d lost (first %v), %d duplicates, %d unexpected, %d corrupted, %d dead letters",
			v.Lost, v.FirstLost, v.Duplicates, v.Unexpected, v.Corrupted, v.DeadLetter)
	}
	if len(share.feeds) != 1 {
		t.Errorf("%d tagged feeds at the end, want 1: %v", len(share.feeds), share.feeds)
	}
	_, _, unexpected := r.br.counts()
	for _, p := range append(unexpected, r.st.problems...) {
		t.Error(p)
	}
}

// mark is a window's start: events emitted and handed out so far.
type mark struct {
	emitted, delivered int64
}

func (r *runner) mark() mark {
	r.emitMu.Lock() // no emission in between
	defer r.emitMu.Unlock()
	return mark{emitted: int64(r.led.counts().emitted), delivered: r.agent.Stats().EventsDelivered}
}

// checkRatio waits until n more events were emitted since m and fails the
// test when the Agent handed out more than maxRatio times as many.
func checkRatio(ctx context.Context, t *testing.T, r *runner, m mark, n int, maxRatio float64, what string) {
	t.Helper()
	within(ctx, t, 3*time.Minute, fmt.Sprintf("%d events emitted %s", n, what), func() bool {
		return int64(r.led.counts().emitted) >= m.emitted+int64(n)
	})
	end := r.mark()
	ratio := float64(end.delivered-m.delivered) / float64(end.emitted-m.emitted)
	r.logf("%s: %d events handed out for %d emitted (%.2fx); tagged feeds %v", what,
		end.delivered-m.delivered, end.emitted-m.emitted, ratio, r.sharing().feeds)
	if ratio > maxRatio {
		feeds := r.sharing().feeds
		t.Errorf("%s, the instances read %.2fx the events emitted (%d for %d; at most %.1fx expected): %d tagged feeds %v",
			what, ratio, end.delivered-m.delivered, end.emitted-m.emitted, maxRatio, len(feeds), feeds)
	}
}

// within polls cond until it holds, failing the test after d.
func within(ctx context.Context, t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := poll(wctx, 20*time.Millisecond, cond); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waited %s for %s", d, what)
		}
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

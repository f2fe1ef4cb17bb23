package component_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// TestTransientReadFaults: 5xx, 429, a connection reset and truncated
// bodies (fixed length and chunked) on reads are backed off and retried; the
// loop never dies, becomes ready again, and nothing is lost (events handed
// out in a truncated answer come back after the visibility timeout).
func TestTransientReadFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	rec := &recordingSource{src: h.openDatafeed(h.newClient())}
	r := h.startBridge(rec, bridge.SourceDatafeed)
	h.emit(h.gen.Mix(10)...)
	h.waitStored()

	kinds := []symphonytest.FaultKind{
		symphonytest.FaultTruncated, symphonytest.FaultServerError, symphonytest.FaultTooManyRequests,
		symphonytest.FaultReset, symphonytest.FaultTruncatedChunked, symphonytest.FaultServerError,
	}
	h.agent.InjectNext(kinds...)
	// Events queued while the faults hit the next reads; some are handed out
	// in the truncated answers.
	h.emit(h.gen.Mix(30)...)
	natstest.WaitFor(t, waitLong, func() error {
		if left := len(h.agent.Faults().Next); left > 0 {
			return fmt.Errorf("%d injected faults not consumed yet", left)
		}
		return nil
	})
	h.emit(h.gen.Mix(10)...)
	h.checkExactlyOnce()
	r.Alive(t)
	r.WaitReady(t, waitLong)

	want := map[symphonytest.FaultKind]int64{}
	for _, k := range kinds {
		want[k]++
	}
	got := h.agent.Stats().Faults
	for k, n := range want {
		if got[k] != n {
			t.Errorf("fault %s injected %d times, want %d", k, got[k], n)
		}
	}
	if st := r.Bridge.Stats(); st.ReadErrors < int64(len(kinds)) {
		t.Errorf("bridge saw %d read errors, want at least %d (one per fault)", st.ReadErrors, len(kinds))
	}
	if got := len(h.col.all()); got != 50 {
		t.Errorf("stream holds %d messages, want 50", got)
	}

	// Backoff, not a busy loop: after the k-th failure in a row the next
	// read waits at least the configured exponential delay, and at least
	// the Retry-After of a 429.
	retry := h.bridgeConfig(bridge.SourceDatafeed).Retry
	reads := rec.snapshot()
	failures, consecutive := 0, 0
	for i := 0; i+1 < len(reads); i++ {
		if reads[i].err == nil {
			consecutive = 0
			continue
		}
		failures++
		consecutive++
		want := retry.Initial
		for range consecutive - 1 {
			want = time.Duration(float64(want) * retry.Multiplier)
		}
		want = min(want, retry.Max)
		var apiErr *symphony.APIError
		if errors.As(reads[i].err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests {
			if apiErr.RetryAfter < time.Second {
				t.Errorf("429 carried Retry-After %s, want the simulator's 1s", apiErr.RetryAfter)
			}
			want = max(want, apiErr.RetryAfter)
		}
		if gap := reads[i+1].start.Sub(reads[i].end); gap < want {
			t.Errorf("read %d failed (%v, failure %d in a row); the next read came %s later, want at least %s",
				i, reads[i].err, consecutive, gap, want)
		}
	}
	if failures < len(kinds) {
		t.Errorf("%d failed reads recorded, want at least %d", failures, len(kinds))
	}
}

// readRecord is one Read of a recordingSource.
type readRecord struct {
	start, end time.Time
	err        error
}

// recordingSource records when each read started and ended, and its error.
type recordingSource struct {
	src bridge.Source

	mu    sync.Mutex
	reads []readRecord
}

func (s *recordingSource) Name() string { return s.src.Name() }

func (s *recordingSource) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	start := time.Now()
	b, err := s.src.Read(ctx, ackID)
	s.mu.Lock()
	s.reads = append(s.reads, readRecord{start: start, end: time.Now(), err: err})
	s.mu.Unlock()
	return b, err
}

func (s *recordingSource) snapshot() []readRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reads)
}

// TestSessionExpiryReauthenticates: a 401 from the Agent (expired session)
// makes the client log in again; reading goes on and nothing is lost.
func TestSessionExpiryReauthenticates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	r := h.startBridge(h.openDatafeed(h.newClient()), bridge.SourceDatafeed)
	h.emit(h.gen.Mix(10)...)
	h.checkExactlyOnce()
	before := h.agent.Stats()

	h.agent.ExpireSessions()
	h.emit(h.gen.Mix(20)...)
	h.checkExactlyOnce()
	r.Alive(t)
	r.WaitReady(t, waitLong)

	after := h.agent.Stats()
	if after.Unauthorized <= before.Unauthorized {
		t.Errorf("no read was refused with 401 after the sessions expired (%d before, %d after)", before.Unauthorized, after.Unauthorized)
	}
	if after.Auths <= before.Auths {
		t.Errorf("the client did not log in again: %d logins before, %d after", before.Auths, after.Auths)
	}
	if after.FeedsCreated != 1 {
		t.Errorf("%d feeds created: a 401 must not recreate the feed", after.FeedsCreated)
	}
}

// gatedSource holds the bridge's next read until the test opens the gate, so
// the test can act on the Agent while the bridge is between two reads.
type gatedSource struct {
	src bridge.Source

	mu      sync.Mutex
	gate    chan struct{} // nil: reads pass
	waiting bool          // a read is held at the gate
}

func (g *gatedSource) Name() string { return g.src.Name() }

func (g *gatedSource) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	g.mu.Lock()
	gate := g.gate
	g.waiting = gate != nil
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return symphony.Batch{}, ctx.Err()
		}
	}
	return g.src.Read(ctx, ackID)
}

func (g *gatedSource) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedSource) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate, g.waiting = nil, false
}

func (g *gatedSource) held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// TestExpiredFeedIsRecreated: a read of an expired feed answers 400; the
// client finds the feed gone and creates a new one, the bridge counts the
// recreation and keeps going. The events Symphony dropped with the old feed
// (queued there while the bridge was between two reads) are counted apart:
// they are exactly what is missing, and everything else lands once.
func TestExpiredFeedIsRecreated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	g := &gatedSource{src: h.openDatafeed(h.newClient())}
	r := h.startBridge(g, bridge.SourceDatafeed)
	h.emit(h.gen.Mix(10)...)
	h.checkExactlyOnce()
	old := h.waitFeed(symphonytest.KindDatafeed)

	g.close()
	natstest.WaitFor(t, waitLong, func() error {
		if !g.held() {
			return fmt.Errorf("the bridge has not come back for its next read yet")
		}
		return nil
	})
	droppedBefore := h.agent.Stats().EventsDropped
	doomed := h.gen.Mix(5)
	h.agent.Emit(doomed...) // not recorded: Symphony drops them with the feed
	if !h.agent.ExpireFeed(old.ID) {
		t.Fatalf("feed %s was not live", old.ID)
	}
	dropped := h.agent.Stats().EventsDropped - droppedBefore
	g.open()

	natstest.WaitFor(t, waitLong, func() error {
		if n := r.Bridge.Stats().FeedRecreations; n < 1 {
			return fmt.Errorf("no feed recreation seen by the bridge yet")
		}
		for _, f := range h.agent.Feeds() {
			if f.Kind == symphonytest.KindDatafeed && f.ID != old.ID {
				return nil
			}
		}
		return fmt.Errorf("no new feed yet")
	})
	h.emit(h.gen.Mix(20)...)
	h.checkExactlyOnce()
	r.Alive(t)
	r.WaitReady(t, waitLong)

	st := h.agent.Stats()
	t.Logf("feed %s expired holding %d events; the Agent counted %d dropped", old.ID, len(doomed), dropped)
	if dropped < int64(len(doomed)) {
		t.Errorf("the Agent counted %d events dropped with the feed, want at least the %d queued in it", dropped, len(doomed))
	}
	for _, raw := range doomed {
		if s := serialOf(t, raw); len(h.col.withSerial(s)) != 0 {
			t.Errorf("serial %d, dropped with the old feed, was stored anyway", s)
		}
	}
	if st.FeedsCreated != 2 || st.FeedsExpired != 1 {
		t.Errorf("agent stats %+v: want the expired feed replaced by one new feed", st)
	}
	if got := len(h.col.all()); got != 30 {
		t.Errorf("stream holds %d messages, want 30", got)
	}
}

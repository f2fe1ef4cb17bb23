package symphonytest

import (
	"context"
	"slices"
	"time"
)

// ListHold is a one-shot barrier on tagged datafeed list requests, armed by
// [Agent.HoldLists].
type ListHold struct {
	a        *Agent
	n        int
	waiters  []*listWaiter // arrival order; guarded by Agent.mu
	listed   []int         // set at release; guarded by Agent.mu
	released chan struct{}
}

type listWaiter struct {
	account, tag string
	answer       chan []v5Datafeed // buffered: the release never blocks
}

// HoldLists arms a one-shot barrier: the next GET /agent/v5/datafeeds
// requests that filter by a tag (?tag=) are held until n of them are
// waiting at once; then all of them are answered together, computed in one
// critical section, so none of them can see a feed that another one's
// client creates afterwards. Lists without a tag pass through: a client's
// lists are sequential (symbridge lists without, then with the tag), and the
// tagged one is what decides between reusing a feed and creating one. With
// n instances starting at once, HoldLists(n) makes their start-ups overlap
// for certain: every instance learns "no feed" before any of them creates
// one.
//
// A held request whose client goes away stops counting; [Agent.Close]
// answers the waiting ones at once. Arming a barrier while another is still
// waiting releases the waiting one first. n <= 0 arms nothing: the returned
// hold is already released.
func (a *Agent) HoldLists(n int) *ListHold {
	h := &ListHold{a: a, n: n, released: make(chan struct{})}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold != nil {
		a.releaseHoldLocked(a.hold)
	}
	if n <= 0 || a.isClosed() {
		close(h.released)
		return h
	}
	a.hold = h
	return h
}

// Released is closed once the barrier opened: n lists were waiting, the
// Agent closed, or another HoldLists replaced it.
func (h *ListHold) Released() <-chan struct{} { return h.released }

// Waiting is how many lists the barrier holds right now.
func (h *ListHold) Waiting() int {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	return len(h.waiters)
}

// Listed is, after the release, how many feeds each held list was answered
// with, in arrival order (nil before): all zeros mean every held client
// learned that no feed with its tag existed, i.e. all of them were answered
// before any of them could create one.
func (h *ListHold) Listed() []int {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	return slices.Clone(h.listed)
}

// holdList waits at the armed barrier, if any, for a list filtered by tag.
// held is false when no barrier is armed (the caller answers as usual); err
// is the request context's error when the client went away while held.
func (a *Agent) holdList(ctx context.Context, account, tag string) (feeds []v5Datafeed, held bool, err error) {
	a.mu.Lock()
	h := a.hold
	if h == nil || tag == "" {
		a.mu.Unlock()
		return nil, false, nil
	}
	w := &listWaiter{account: account, tag: tag, answer: make(chan []v5Datafeed, 1)}
	h.waiters = append(h.waiters, w)
	a.stats.HeldLists++
	if len(h.waiters) >= h.n {
		a.releaseHoldLocked(h)
	}
	a.mu.Unlock()

	select {
	case feeds := <-w.answer:
		return feeds, true, nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := slices.Index(h.waiters, w); i >= 0 && a.hold == h {
		h.waiters = slices.Delete(h.waiters, i, i+1)
		return nil, true, ctx.Err()
	}
	return <-w.answer, true, nil // released meanwhile: the answer is there
}

// releaseHoldLocked answers every list waiting at h and disarms it.
func (a *Agent) releaseHoldLocked(h *ListHold) {
	if a.hold != h {
		return
	}
	a.hold = nil
	a.sweepLocked(time.Now())
	for _, w := range h.waiters {
		feeds := a.listLocked(w.account, w.tag)
		h.listed = append(h.listed, len(feeds))
		w.answer <- feeds
	}
	if h.listed == nil {
		h.listed = []int{}
	}
	h.waiters = nil
	close(h.released)
}

package symphonytest

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// feed is one queue of events with SQS-like visibility semantics. All its
// fields are guarded by Agent.mu.
type feed struct {
	id               string
	kind             FeedKind
	account          string
	tag              string
	eventTypes       []string
	typeSet          map[string]bool
	scopes           []string
	includeInvisible bool
	created          time.Time
	seq              uint64
	lastRead         time.Time
	readers          int

	queue    []*qevent
	batches  map[string]*batch // every ackId issued and still remembered
	finished []string          // ackIds of acked/requeued batches, oldest first
	notify   chan struct{}     // closed and replaced when the feed changes
	gone     bool

	delivered, acked int64
}

type qevent struct {
	raw       []byte
	malformed bool
}

type batchState int

const (
	batchInFlight batchState = iota
	batchAcked
	batchRequeued
)

// batch is what one read handed out under one ackId.
type batch struct {
	ackID    string
	events   []*qevent
	deadline time.Time
	state    batchState
}

// maxFinished bounds how many acked or requeued ackIds a feed remembers
// (so that a client retrying a read with an ackId already used is not
// mistaken for one sending garbage).
const maxFinished = 1024

func (a *Agent) newFeedLocked(kind FeedKind, account string, now time.Time) *feed {
	a.seq++
	f := &feed{
		id:       a.newFeedIDLocked(kind, account),
		kind:     kind,
		account:  account,
		created:  now,
		seq:      a.seq,
		lastRead: now,
		batches:  make(map[string]*batch),
		notify:   make(chan struct{}),
	}
	a.feeds[f.id] = f
	return f
}

// newFeedIDLocked mimics Symphony's ids: a 32-hex prefix stable per account,
// then "_f" (first datafeed of the account) or "_f_<5 hex>", "_p_<5 hex>" for
// datahose, and a UUID for datafeed v1. Ids are never reused.
func (a *Agent) newFeedIDLocked(kind FeedKind, account string) string {
	sum := md5.Sum([]byte(account))
	prefix := hex.EncodeToString(sum[:])
	for {
		var id string
		switch kind {
		case KindDatafeed:
			id = prefix + "_f"
			if a.usedIDs[id] {
				id += "_" + hex.EncodeToString(randomBytes(3))[:5]
			}
		case KindDatahose:
			id = prefix + "_p_" + hex.EncodeToString(randomBytes(3))[:5]
		default:
			b := randomBytes(16)
			b[6] = b[6]&0x0f | 0x40
			b[8] = b[8]&0x3f | 0x80
			h := hex.EncodeToString(b)
			id = fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
		}
		if !a.usedIDs[id] {
			a.usedIDs[id] = true
			return id
		}
	}
}

func newAckID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(30)) }

// wake releases every read waiting on the feed.
func (f *feed) wake() {
	close(f.notify)
	f.notify = make(chan struct{})
}

func (f *feed) info() FeedInfo {
	fi := FeedInfo{
		ID: f.id, Kind: f.kind, Account: f.account, Tag: f.tag,
		EventTypes: slices.Clone(f.eventTypes), Scopes: slices.Clone(f.scopes),
		IncludeInvisible: f.includeInvisible, CreatedAt: f.created, LastRead: f.lastRead,
		Queued: len(f.queue), Readers: f.readers, Delivered: f.delivered, Acked: f.acked,
	}
	for _, b := range f.batches {
		if b.state == batchInFlight {
			fi.InFlightBatches++
			fi.InFlight += len(b.events)
		}
	}
	return fi
}

// requeueExpiredLocked puts the events of batches whose visibility timeout
// passed back at the end of the queue, behind newer events, and returns the
// earliest deadline still pending (zero if none).
func (f *feed) requeueExpiredLocked(a *Agent, now time.Time) time.Time {
	var next time.Time
	requeued := false
	for _, b := range f.batches {
		if b.state != batchInFlight {
			continue
		}
		if !now.Before(b.deadline) {
			f.queue = append(f.queue, b.events...)
			a.stats.Redeliveries += int64(len(b.events))
			f.finishLocked(b, batchRequeued)
			requeued = true
			continue
		}
		if next.IsZero() || b.deadline.Before(next) {
			next = b.deadline
		}
	}
	if requeued {
		f.wake()
	}
	return next
}

func (f *feed) finishLocked(b *batch, state batchState) {
	b.state = state
	f.finished = append(f.finished, b.ackID)
	if len(f.finished) > maxFinished {
		delete(f.batches, f.finished[0])
		f.finished = f.finished[1:]
	}
}

// readResult is what a read hands back to the HTTP layer.
type readResult struct {
	events    [][]byte
	ackID     string
	malformed bool // a deliberately malformed event is in the batch
}

// ackLocked applies an ack. The caller already checked the ackId is known.
func (a *Agent) ackLocked(f *feed, b *batch) {
	if len(b.events) == 0 {
		return // an empty batch has nothing to acknowledge
	}
	if b.state != batchInFlight {
		a.stats.RepeatAcks++
		return
	}
	a.stats.Acks++
	a.stats.EventsAcked += int64(len(b.events))
	f.acked += int64(len(b.events))
	f.finishLocked(b, batchAcked)
}

// errFeedGone and errBadAckID are mapped to 400 by the HTTP layer.
var (
	errFeedGone = errors.New("feed gone")
	errBadAckID = errors.New("bad ackId")
)

// ack looks up ackID on f, calls the OnAck hook outside the lock, then
// applies the ack. An empty ackID acknowledges nothing.
func (a *Agent) ack(f *feed, ackID string) error {
	if ackID == "" {
		return nil
	}
	a.mu.Lock()
	if f.gone {
		a.mu.Unlock()
		return errFeedGone
	}
	b, ok := f.batches[ackID]
	if !ok {
		a.stats.BadAckIDs++
		a.mu.Unlock()
		return errBadAckID
	}
	hook := a.onAck
	evs := make([][]byte, len(b.events))
	for i, e := range b.events {
		evs[i] = e.raw
	}
	a.mu.Unlock()

	if hook != nil {
		hook(f.id, evs)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if f.gone {
		return errFeedGone
	}
	a.ackLocked(f, b)
	return nil
}

// take hands out up to limit events of f, holding the read up to LongPoll
// while the queue is empty. withAck records the batch under a fresh ackId
// (datafeed v2, datahose); without it the events are simply removed
// (datafeed v1). It returns errFeedGone when the feed is deleted or expires
// meanwhile, the context's error when the client went away, and an empty
// result when the long poll ran out or the Agent closed.
func (a *Agent) take(ctx context.Context, f *feed, limit int, withAck bool) (readResult, error) {
	pollEnd := time.Now().Add(a.cfg.LongPoll)
	a.mu.Lock()
	f.readers++
	defer func() {
		f.readers--
		f.lastRead = time.Now()
		a.mu.Unlock()
	}()
	for {
		if f.gone {
			return readResult{}, errFeedGone
		}
		now := time.Now()
		f.lastRead = now
		next := f.requeueExpiredLocked(a, now)
		if len(f.queue) > 0 || !now.Before(pollEnd) || a.isClosed() {
			return a.handOutLocked(f, limit, withAck, now), nil
		}
		wait := pollEnd.Sub(now)
		if !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		ch := f.notify
		a.mu.Unlock()
		t := time.NewTimer(wait)
		var err error
		select {
		case <-ch:
		case <-t.C:
		case <-a.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.Stop()
		a.mu.Lock()
		if err != nil {
			return readResult{}, err
		}
	}
}

func (a *Agent) isClosed() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *Agent) handOutLocked(f *feed, limit int, withAck bool, now time.Time) readResult {
	n := min(limit, len(f.queue))
	evs := slices.Clone(f.queue[:n])
	f.queue = slices.Delete(f.queue, 0, n)
	a.stats.Reads++
	if n == 0 {
		a.stats.EmptyReads++
	}
	a.stats.EventsDelivered += int64(n)
	f.delivered += int64(n)
	res := readResult{events: make([][]byte, n)}
	for i, e := range evs {
		res.events[i] = e.raw
		res.malformed = res.malformed || e.malformed
	}
	if !withAck {
		a.stats.EventsConsumed += int64(n)
		return res
	}
	b := &batch{ackID: newAckID(), events: evs, deadline: now.Add(a.cfg.VisibilityTimeout)}
	f.batches[b.ackID] = b
	if n == 0 {
		// Nothing to redeliver: remember the ackId only so that acking it is valid.
		f.finishLocked(b, batchAcked)
	}
	res.ackID = b.ackID
	return res
}

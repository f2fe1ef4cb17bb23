package symphony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// FeedCoordinator lets several instances that read one account's datafeed
// v2 with one tag agree on one feed. Without it each instance that finds no
// feed at start-up, or that recovers from a 400, creates a feed of its own,
// and every feed of the account receives a full copy of every event: N
// instances then read N copies (finos/symphony-bdk-java#782).
//
// The coordinator holds, per key ([FeedKey]), an exclusive claim that lapses
// by itself when its holder dies, and a record of the feed the instances
// share. pkg/symphony depends on nothing behind it; cmd/symbridge backs it
// with a JetStream key-value bucket.
//
// Any error other than the context's makes [DatafeedV2] do that one step on
// its own, as it would without a coordinator: correct, only less efficient.
type FeedCoordinator interface {
	// Claim blocks until this instance holds the claim on key, or ctx ends.
	// The claim lapses by itself (within seconds) if this process dies
	// holding it. release gives it back; it is safe to call once, with the
	// claim lapsed or not.
	Claim(ctx context.Context, key string) (release func(), err error)
	// Recorded returns the feed recorded under key; a zero FeedRecord and a
	// nil error when none is.
	Recorded(ctx context.Context, key string) (FeedRecord, error)
	// Record records rec under key. DatafeedV2 calls it only while it holds
	// the claim on key.
	Record(ctx context.Context, key string, rec FeedRecord) error
}

// FeedRecord is the feed that the instances of one account and tag share.
type FeedRecord struct {
	ID string `json:"id"`
	// Created is no earlier than the feed's creation, on the clock of the
	// instance that recorded it: the time its create call returned, or the
	// time it adopted a feed it found. A feed left for this one is drained
	// until it hands out events stamped after Created (plus a margin for
	// clocks), so an upper bound errs on the safe side.
	Created time.Time `json:"created"`
}

// FeedKey is the coordination key of the datafeed v2 feed of one account:
// the pod's host name (from ClientConfig.PodURL; scheme, port, path and case
// do not count, so replicas that spell the URL differently still meet), the
// bot's username and the tag (an empty tag is [DefaultDatafeedTag]), hashed,
// because a tag holds up to 100 arbitrary characters and a key-value key
// does not. It is made of [0-9a-f] only.
func FeedKey(podURL, username, tag string) string {
	pod := podURL
	if u, err := url.Parse(podURL); err == nil && u.Hostname() != "" {
		pod = u.Hostname()
	}
	pod = strings.ToLower(pod)
	tag = DatafeedOptions{Tag: tag}.tag()
	h := sha256.New()
	for _, s := range []string{pod, username, tag} {
		// Length-prefixed: ("a", "bc") and ("ab", "c") must not meet.
		var n [8]byte
		for i, l := 0, uint64(len(s)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// CoordinationStats counts what coordination did in one [DatafeedV2].
type CoordinationStats struct {
	// Alone counts steps taken without the other instances because the
	// coordinator failed: a feed chosen or replaced, a recheck skipped.
	Alone int64
	// Moves counts moves from a feed of this instance's own to the
	// recorded feed, each after a drain.
	Moves int64
}

// CoordinationStats returns the counts so far; zero without a coordinator.
func (f *DatafeedV2) CoordinationStats() CoordinationStats {
	return CoordinationStats{Alone: f.alone.Load(), Moves: f.moves.Load()}
}

// clockMargin is added to a recorded creation time before it is compared
// with events' timestamps, which are the pod's clock, not the recording
// instance's: a feed is drained a little longer rather than too little.
const clockMargin = 5 * time.Second

// drainState is a move in progress from feed from to the recorded feed to:
// reads stay on from until it has handed out events stamped after past (to's
// recorded creation plus clockMargin), or answered empty to a read begun
// after past, and at least one visibility timeout has passed since the move
// began. Then every event of from that to may lack has been handed out to a
// reader, and a batch handed to a reader that died has come back.
type drainState struct {
	from, to string
	created  time.Time // to's recorded creation
	past     time.Time
	since    time.Time
	reached  bool
}

// retireState is a feed left for the recorded one. It is deleted at the
// first read after at: by then every batch it handed to this instance's
// readers has been stored (or it was redelivered to them anyway).
type retireState struct {
	feed string
	at   time.Time
}

func (f *DatafeedV2) key() string { return FeedKey(f.c.pod, f.c.username, f.opts.tag()) }

func (f *DatafeedV2) recheck() time.Duration {
	if f.opts.Recheck > 0 {
		return f.opts.Recheck
	}
	return DefaultFeedRecheck
}

func (f *DatafeedV2) visibility() time.Duration {
	if f.opts.Visibility > 0 {
		return f.opts.Visibility
	}
	return DefaultVisibility
}

func (f *DatafeedV2) logger() *slog.Logger {
	if f.opts.Logger != nil {
		return f.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// decideAlone logs that step is taken without the other instances because
// the coordinator failed.
func (f *DatafeedV2) decideAlone(step string, err error) {
	f.alone.Add(1)
	f.logger().Warn("feed coordination failed; "+step+" alone, as without coordination: another instance may read a feed of its own until this one rejoins it",
		"tag", f.opts.tag(), "err", err)
}

// openShared is Open's coordinated half, given the tagged feeds (mine) that
// Open listed without the claim. done false: the coordinator failed, and Open
// decides alone.
func (f *DatafeedV2) openShared(ctx context.Context, mine []v5Datafeed) (res OpenResult, created time.Time, done bool, err error) {
	c, key := f.opts.Coordinator, f.key()
	rec, err := c.Recorded(ctx, key)
	if err != nil {
		return f.openAlone(ctx, err)
	}
	if rec.ID != "" && listed(mine, rec.ID) {
		return OpenResult{FeedID: rec.ID}, rec.Created, true, nil
	}
	release, err := c.Claim(ctx, key)
	if err != nil {
		return f.openAlone(ctx, err)
	}
	defer release()
	// Under the claim: whatever another instance did meanwhile is recorded
	// or at least listed now.
	if rec, err = c.Recorded(ctx, key); err != nil {
		return f.openAlone(ctx, err)
	}
	if mine, err = f.list(ctx, true); err != nil {
		return OpenResult{}, time.Time{}, false, err
	}
	if rec.ID != "" && listed(mine, rec.ID) {
		return OpenResult{FeedID: rec.ID}, rec.Created, true, nil
	}
	// No live record (none yet, or a feed the Agent no longer knows, which
	// is as good as a 400): reuse a listed feed, else create one.
	res.FeedID = firstFeed(mine, "")
	if res.FeedID == "" {
		if res.FeedID, err = f.create(ctx); err != nil {
			return OpenResult{}, time.Time{}, false, err
		}
		res.Created = true
	}
	created = time.Now()
	f.record(ctx, key, FeedRecord{ID: res.FeedID, Created: created})
	return res, created, true, nil
}

func (f *DatafeedV2) openAlone(ctx context.Context, err error) (OpenResult, time.Time, bool, error) {
	if ctx.Err() != nil {
		return OpenResult{}, time.Time{}, false, ctx.Err()
	}
	f.decideAlone("choosing the feed", err)
	return OpenResult{}, time.Time{}, false, nil
}

// record records rec; a failure only costs efficiency (the feed is listed,
// and the next instance that holds the claim records it), so it is logged.
func (f *DatafeedV2) record(ctx context.Context, key string, rec FeedRecord) {
	if err := f.opts.Coordinator.Record(ctx, key, rec); err != nil && ctx.Err() == nil {
		f.decideAlone("recording the feed "+rec.ID, err)
	}
}

// recoverShared is the coordinated replacement of feed id, which answered
// 400 twice or is no longer listed. Under the claim it joins the feed that
// another instance recorded in the meantime, or else adopts another listed
// feed with the tag, or else replaces the feed and records the new one.
// done false: the coordinator failed, and the caller replaces it alone.
func (f *DatafeedV2) recoverShared(ctx context.Context, id, chain string, readErr error) (b Batch, done bool, err error) {
	c, key := f.opts.Coordinator, f.key()
	release, err := c.Claim(ctx, key)
	if err != nil {
		return f.recoverAlone(ctx, err)
	}
	defer release()
	rec, err := c.Recorded(ctx, key)
	if err != nil {
		return f.recoverAlone(ctx, err)
	}
	mine, err := f.list(ctx, true)
	if err != nil {
		return Batch{}, true, fmt.Errorf("datafeed v2 %s: %w (%v); listing feeds: %w", id, ErrFeedGone, readErr, err)
	}
	if rec.ID != "" && rec.ID != id && listed(mine, rec.ID) {
		// Another instance replaced the feed already: join it. The
		// recreation is the other instance's to report.
		if err := f.deleteLost(ctx, id, readErr); err != nil {
			return Batch{}, true, err
		}
		f.logger().Info("feed lost; joining the feed another instance recorded", "lost", id, "feed", rec.ID)
		f.setFeed(rec.ID, rec.Created)
		b, err := f.read(ctx, rec.ID, "")
		return b, true, err
	}
	newID := firstFeed(mine, id)
	if newID == "" {
		if newID, err = f.replace(ctx, id, readErr); err != nil {
			return Batch{}, true, err
		}
	} else if err := f.deleteLost(ctx, id, readErr); err != nil {
		return Batch{}, true, err
	}
	now := time.Now()
	f.record(ctx, key, FeedRecord{ID: newID, Created: now})
	f.setFeed(newID, now)
	b, err = f.readRecreated(ctx, newID, chain)
	return b, true, err
}

func (f *DatafeedV2) recoverAlone(ctx context.Context, err error) (Batch, bool, error) {
	if ctx.Err() != nil {
		return Batch{}, true, ctx.Err()
	}
	f.decideAlone("replacing the lost feed", err)
	return Batch{}, false, nil
}

// beforeRead runs the coordinated chores before a read of feed id: it
// deletes a feed left behind once its time has come, and now and then
// compares id with the recorded feed.
func (f *DatafeedV2) beforeRead(ctx context.Context, id string) {
	now := time.Now()
	f.mu.Lock()
	var retire string
	if r := f.retire; r != nil && !now.Before(r.at) {
		retire, f.retire = r.feed, nil
	}
	check := !now.Before(f.nextCheck)
	if check {
		f.nextCheck = now.Add(f.recheck())
	}
	f.mu.Unlock()
	if retire != "" {
		f.deleteRetired(ctx, retire)
	}
	if check {
		f.recheckFeed(ctx, id)
	}
}

// deleteRetired deletes the feed this instance left, unless it has become
// the recorded feed meanwhile (the feed it moved to was lost, and another
// instance adopted the old one): then it holds events no other feed has.
func (f *DatafeedV2) deleteRetired(ctx context.Context, retire string) {
	if rec, err := f.opts.Coordinator.Recorded(ctx, f.key()); err != nil || rec.ID == retire {
		return // when in doubt, keep it: unread, it expires by itself
	}
	switch err := f.delete(ctx, retire); {
	case err == nil:
		f.logger().Info("deleted the feed left for the recorded one", "feed", retire)
	case ctx.Err() == nil:
		// Not fatal: unread, it expires by itself within 30 minutes.
		f.logger().Warn("could not delete the feed left for the recorded one", "feed", retire, "err", err)
	}
}

// recheckFeed compares feed id with the recorded feed. A recorded feed that
// is listed and is not id starts a drain of id into it; no live record makes
// this instance record id, under the claim.
func (f *DatafeedV2) recheckFeed(ctx context.Context, id string) {
	c, key := f.opts.Coordinator, f.key()
	rec, err := c.Recorded(ctx, key)
	if err != nil {
		if ctx.Err() == nil {
			f.decideAlone("reading on", err)
		}
		return
	}
	if rec.ID == id {
		f.stopDrain(id)
		return
	}
	mine, err := f.list(ctx, true)
	if err != nil || !listed(mine, id) {
		return // the Agent is unwell, or the feed is gone: the read says which
	}
	if rec.ID == "" || !listed(mine, rec.ID) {
		f.recordMine(ctx, id, rec)
		return
	}
	d := &drainState{from: id, to: rec.ID, created: rec.Created, past: rec.Created.Add(clockMargin), since: time.Now()}
	f.mu.Lock()
	started := f.id == id && (f.drain == nil || f.drain.to != rec.ID) // else another reader moved, or it drains already
	if started {
		f.drain = d
	}
	f.mu.Unlock()
	if started {
		f.logger().Info("another feed is recorded for this tag: draining this one into it, then moving",
			"feed", id, "recorded", rec.ID, "drain_past", d.past.Format(time.RFC3339Nano))
	}
}

// recordMine records feed id, for which no live record exists (seen was the
// stale record), under the claim.
func (f *DatafeedV2) recordMine(ctx context.Context, id string, seen FeedRecord) {
	c, key := f.opts.Coordinator, f.key()
	release, err := c.Claim(ctx, key)
	if err != nil {
		if ctx.Err() == nil {
			f.decideAlone("reading on", err)
		}
		return
	}
	defer release()
	rec, err := c.Recorded(ctx, key)
	if err != nil || rec != seen {
		return // changed meanwhile: the next recheck looks again
	}
	f.mu.Lock()
	created := f.created
	f.mu.Unlock()
	f.record(ctx, key, FeedRecord{ID: id, Created: created})
	f.stopDrain(id)
}

func (f *DatafeedV2) stopDrain(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.drain; d != nil && d.from == id {
		f.drain = nil
	}
}

// afterRead advances a drain with batch b, read by a read begun at start,
// and makes the move once the drain is complete.
func (f *DatafeedV2) afterRead(b Batch, start time.Time) {
	f.mu.Lock()
	d := f.drain
	if d == nil || b.FeedID != d.from || f.id != d.from {
		f.mu.Unlock()
		return
	}
	if !d.reached {
		d.reached = len(b.Events) == 0 && start.After(d.past)
		for _, ev := range b.Events {
			d.reached = d.reached || ev.Timestamp > d.past.UnixMilli()
		}
	}
	moved := d.reached && time.Since(d.since) >= f.visibility()
	if moved {
		f.id, f.created, f.drain = d.to, d.created, nil
		f.retire = &retireState{feed: d.from, at: time.Now().Add(f.visibility())}
	}
	f.mu.Unlock()
	if moved {
		f.moves.Add(1)
		f.logger().Info("drained this feed past the recorded feed's creation: moved to the recorded feed",
			"left", d.from, "feed", d.to)
	}
}

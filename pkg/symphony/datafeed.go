package symphony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultDatafeedTag is the tag of symbridge's own datafeed.
const DefaultDatafeedTag = "symbridge"

// MaxDatafeedTag is V5DatafeedCreateBody.tag's maxLength, in characters
// (runes).
const MaxDatafeedTag = 100

// fanoutFeedRE is the BDK's pattern of a datafeed v2 ("fanout") id:
// "<id>_f" optionally followed by "_<suffix>". Datahose feeds ("_p_") show up
// in the same list and must never be read as a datafeed.
var fanoutFeedRE = regexp.MustCompile(`^[^\s_]+_f(_[^\s_]+)?$`)

// isDatafeedV2ID reports whether id looks like a datafeed v2 feed id.
func isDatafeedV2ID(id string) bool { return fanoutFeedRE.MatchString(id) }

// DatafeedOptions configures a [DatafeedV2].
type DatafeedOptions struct {
	// Tag names the feed (datafeed.tag). Empty means [DefaultDatafeedTag].
	// A feed of its own matters: two programs reading one feed split its
	// events between them.
	Tag string
	// IncludeInvisible asks for events of "invisible" rooms too
	// (datafeed.includeInvisible; Agent 26.2.1+). It is fixed when the feed
	// is created: a reused feed keeps the value it was created with.
	IncludeInvisible bool

	// Coordinator, when set, makes the instances of one account and tag
	// share one feed through the start-up race and after a 400 (see
	// [FeedCoordinator]). Nil: every instance decides alone, as before.
	Coordinator FeedCoordinator
	// Logger receives what coordination decides: a step taken alone because
	// the coordinator failed (warn), a move to the recorded feed (info).
	// Nil discards it.
	Logger *slog.Logger
	// Recheck is how often, at most, a reader compares its feed with the
	// recorded one, so that an instance that once decided alone rejoins the
	// others (default [DefaultFeedRecheck]). Only with a Coordinator.
	Recheck time.Duration
	// Visibility is the Agent's visibility timeout, after which an un-acked
	// batch comes back (default [DefaultVisibility]). A feed that is left
	// for the recorded one is drained for at least this long, so that a
	// batch handed to a reader that died comes back and is stored first.
	Visibility time.Duration
}

// Defaults of [DatafeedOptions].
const (
	DefaultFeedRecheck = time.Minute
	DefaultVisibility  = 30 * time.Second
)

// Validate names the offending Go field (callers name their own keys).
func (o DatafeedOptions) Validate() error {
	if n := utf8.RuneCountInString(o.Tag); n > MaxDatafeedTag {
		return fmt.Errorf("DatafeedOptions.Tag: at most %d characters, got %d", MaxDatafeedTag, n)
	}
	if o.Recheck < 0 || o.Visibility < 0 {
		return fmt.Errorf("DatafeedOptions.Recheck, Visibility: must not be negative, got %v, %v", o.Recheck, o.Visibility)
	}
	return nil
}

func (o DatafeedOptions) tag() string {
	if o.Tag == "" {
		return DefaultDatafeedTag
	}
	return o.Tag
}

// DatafeedV2 reads a datafeed v2 (/agent/v5/datafeeds) of its own, found by
// its tag or created. Each ackId chain is strictly read, process, read with
// the ackId; several chains may read concurrently (see ConcurrentReads).
// Name may be called anytime.
type DatafeedV2 struct {
	c    *Client
	opts DatafeedOptions

	// recoverMu lets one reader at a time recover the feed after a 400:
	// concurrent readers would otherwise each create a new feed.
	recoverMu sync.Mutex

	mu sync.Mutex
	id string
	// created is no earlier than the current feed's creation (the time a
	// create returned, or the feed was found); it is what gets recorded
	// when a recheck records this instance's feed.
	created time.Time
	// nextCheck is when a reader next compares the feed with the recorded
	// one (coordination only); drain is the move to it in progress, and
	// retire the feed left behind, deleted once its last batches are
	// stored (see coordinate.go).
	nextCheck time.Time
	drain     *drainState
	retire    *retireState
	// alone and moves feed CoordinationStats.
	alone, moves atomic.Int64
	// owed holds the ackIds of chains whose read recreated the feed but
	// failed before a batch could say so. Such a chain re-sends the same
	// ackId (a failed read does not advance it): its next batch reports the
	// recreation, once, and the ackId, which belongs to the old feed, is
	// not sent. Other chains are told nothing: the recreation is theirs to
	// report only when their own read recreates the feed. Chains that have
	// no ackId yet all share the key "": one of them reports the debt.
	owed map[string]bool
}

// NewDatafeedV2 prepares a datafeed v2 reader; nothing is contacted until
// [DatafeedV2.Open] or the first [DatafeedV2.Read].
func NewDatafeedV2(c *Client, opts DatafeedOptions) *DatafeedV2 {
	return &DatafeedV2{c: c, opts: opts}
}

// OpenResult says which feed [DatafeedV2.Open] settled on.
type OpenResult struct {
	FeedID  string
	Created bool // false: an existing feed with the tag was reused
	// OtherFeeds are the account's other datafeed v2 feeds, whatever their
	// tag. Every feed gets its own copy of each event, so they take nothing
	// from this one; but they mean another reader (the team's bot, a second
	// bridge with another tag) or leaked feeds: worth a warning at start-up.
	OtherFeeds []string
}

// Name identifies the feed in logs, e.g. "datafeed v2 abc_f".
func (f *DatafeedV2) Name() string {
	id := f.feedID()
	if id == "" {
		return "datafeed v2 (tag " + f.opts.tag() + ", not open)"
	}
	return "datafeed v2 " + id
}

func (f *DatafeedV2) feedID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

type v5Datafeed struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Open finds the feed with the configured tag (GET /agent/v5/datafeeds?tag=)
// and reuses the first listed id that is a datafeed v2 id, or creates one
// (POST /agent/v5/datafeeds with the tag and includeInvisible). It also lists
// the account's feeds without the tag filter, for [OpenResult.OtherFeeds].
//
// With a [DatafeedOptions.Coordinator], the lists come first, without the
// claim (they are most of the work of a start and need no one's leave); then
// Open reuses the recorded feed when it is listed, and otherwise takes the
// claim, lists again and reuses what another instance recorded or found
// meanwhile, or creates a feed and records it. So instances that start at
// once settle on one feed. If the coordinator fails, Open decides alone.
func (f *DatafeedV2) Open(ctx context.Context) (OpenResult, error) {
	all, mine, reuse, err := f.survey(ctx)
	if err != nil {
		return OpenResult{}, err
	}
	if f.opts.Coordinator != nil {
		res, created, done, err := f.openShared(ctx, mine)
		if err != nil {
			return OpenResult{}, err
		}
		if done {
			res.OtherFeeds = otherFeeds(all, res.FeedID)
			f.setFeed(res.FeedID, created)
			return res, nil
		}
	}
	res := OpenResult{FeedID: reuse}
	if res.FeedID == "" {
		if res.FeedID, err = f.create(ctx); err != nil {
			return OpenResult{}, err
		}
		res.Created = true
	}
	res.OtherFeeds = otherFeeds(all, res.FeedID)
	f.setFeed(res.FeedID, time.Now())
	return res, nil
}

// setFeed makes id the feed that reads go to.
func (f *DatafeedV2) setFeed(id string, created time.Time) {
	f.mu.Lock()
	f.id, f.created = id, created
	f.nextCheck = time.Now().Add(f.recheck())
	f.mu.Unlock()
}

// FeedPlan is what [DatafeedV2.Open] would do, as [DatafeedV2.Plan] finds it.
type FeedPlan struct {
	// Reuse is the tagged feed Open would reuse; "" means Open would create one.
	Reuse string
	// OtherFeeds are the account's other datafeed v2 feeds (see [OpenResult]).
	OtherFeeds []string
}

// Plan lists the account's feeds as Open does and says which feed Open
// would reuse, by the same rule, without creating, reading or deleting any:
// a read would take events away from a bridge running on the feed.
func (f *DatafeedV2) Plan(ctx context.Context) (FeedPlan, error) {
	all, _, reuse, err := f.survey(ctx)
	if err != nil {
		return FeedPlan{}, err
	}
	return FeedPlan{Reuse: reuse, OtherFeeds: otherFeeds(all, reuse)}, nil
}

// survey lists the account's feeds, all of them and those with the tag
// (mine), and picks the one to reuse: the first listed id with the tag that
// is a datafeed v2 id ("" = none).
func (f *DatafeedV2) survey(ctx context.Context) (all, mine []v5Datafeed, reuse string, err error) {
	if err := f.opts.Validate(); err != nil {
		return nil, nil, "", err
	}
	if all, err = f.list(ctx, false); err != nil {
		return nil, nil, "", err
	}
	if mine, err = f.list(ctx, true); err != nil {
		return nil, nil, "", err
	}
	return all, mine, firstFeed(mine, ""), nil
}

// firstFeed is the first datafeed v2 id among feeds other than except.
func firstFeed(feeds []v5Datafeed, except string) string {
	for _, feed := range feeds {
		if isDatafeedV2ID(feed.ID) && feed.ID != except {
			return feed.ID
		}
	}
	return ""
}

// listed reports whether id is among feeds.
func listed(feeds []v5Datafeed, id string) bool {
	for _, feed := range feeds {
		if feed.ID == id {
			return true
		}
	}
	return false
}

// otherFeeds are the datafeed v2 ids of all other than id.
func otherFeeds(all []v5Datafeed, id string) []string {
	var others []string
	for _, feed := range all {
		if isDatafeedV2ID(feed.ID) && feed.ID != id {
			others = append(others, feed.ID)
		}
	}
	return others
}

func (f *DatafeedV2) list(ctx context.Context, tagged bool) ([]v5Datafeed, error) {
	op := "list datafeeds"
	req := request{op: op, method: http.MethodGet, url: f.c.agent + "/agent/v5/datafeeds", authed: true}
	if tagged {
		req.op = "list datafeeds with tag " + f.opts.tag()
		req.query = map[string]string{"tag": f.opts.tag()}
	}
	resp, err := f.c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	var feeds []v5Datafeed
	if err := decodeJSON(req.op, resp, &feeds); err != nil {
		return nil, err
	}
	return feeds, nil
}

func (f *DatafeedV2) create(ctx context.Context) (string, error) {
	const op = "create datafeed v2"
	body := struct {
		Tag string `json:"tag"`
		// Omitted when false, as the BDK does: Agents before 26.2.1 do not
		// know the field.
		IncludeInvisible bool `json:"includeInvisible,omitempty"`
	}{Tag: f.opts.tag(), IncludeInvisible: f.opts.IncludeInvisible}
	resp, err := f.c.do(ctx, request{op: op, method: http.MethodPost, url: f.c.agent + "/agent/v5/datafeeds", body: body, authed: true})
	if err != nil {
		return "", err
	}
	var feed v5Datafeed
	if err := decodeJSON(op, resp, &feed); err != nil {
		return "", err
	}
	if feed.ID == "" {
		return "", fmt.Errorf("%s: %w: no id in the answer", op, ErrBadResponse)
	}
	return feed.ID, nil
}

// Read long-polls the feed (POST /agent/v5/datafeeds/{id}/read) sending
// ackID, which acknowledges the batch that came with it; send "" first and
// after a batch with FeedRecreated. It opens the feed first if Open was not
// called or failed.
//
// A 400 means the feed is gone (30-minute TTL) or the ackId is bad. If the
// feed is still listed, Read reads once more with ackId "" (the unacked
// batch comes back after the visibility timeout). Otherwise, or if that
// also answers 400, it deletes the feed and creates a new one, and returns
// the new feed's first batch with FeedRecreated set: whatever the old feed
// still held is lost. If that recovery fails the error wraps [ErrFeedGone]
// and the next Read tries again. One recreation is reported by one batch
// only, on the chain whose read recreated the feed: when the new feed's
// first read failed, by that chain's next Read with the same ackID.
func (f *DatafeedV2) Read(ctx context.Context, ackID string) (Batch, error) {
	chain := ackID // the caller's ackId names its chain in owed
	f.mu.Lock()
	id, owed := f.id, f.owed[chain]
	f.mu.Unlock()
	if id == "" {
		var err error
		if id, err = f.openOnce(ctx); err != nil {
			return Batch{}, err
		}
		ackID = "" // an ackId of another feed would only earn a 400
	}
	if owed {
		ackID = ""
	}
	if f.opts.Coordinator != nil {
		f.beforeRead(ctx, id)
	}
	start := time.Now()
	b, err := f.read(ctx, id, ackID)
	if isStatus(err, http.StatusBadRequest) {
		b, err = f.recoverOnce(ctx, id, chain, err)
	}
	if err != nil {
		return Batch{}, err
	}
	if f.opts.Coordinator != nil {
		f.afterRead(b, start)
	}
	if owed {
		// Claimed under the lock: of two Reads that both saw the debt
		// (chains share the key "", every reader's first ackId), only one
		// reports it.
		f.mu.Lock()
		b.FeedRecreated = b.FeedRecreated || f.owed[chain]
		delete(f.owed, chain)
		f.mu.Unlock()
	}
	return b, nil
}

func (f *DatafeedV2) read(ctx context.Context, id, ackID string) (Batch, error) {
	op := "read datafeed v2 " + id
	body := struct {
		AckID          string `json:"ackId"`
		UpdatePresence bool   `json:"updatePresence"`
	}{ackID, true}
	resp, err := f.c.do(ctx, request{
		op: op, method: http.MethodPost, url: f.c.agent + "/agent/v5/datafeeds/" + url.PathEscape(id) + "/read",
		body: body, authed: true,
	})
	if err != nil {
		return Batch{}, err
	}
	b, err := decodeBatch(op, resp, false)
	if err != nil {
		return Batch{}, err
	}
	b.FeedID = id
	return b, nil
}

// ConcurrentReads reports that Read may be called from several goroutines
// at once, each with its own ackId chain: the Agent spreads the feed's events
// over concurrent readers, and a 400 is recovered by one reader at a time.
func (f *DatafeedV2) ConcurrentReads() bool { return true }

// recoverOnce runs recover for one reader at a time. A reader that finds the
// feed already replaced by another reader's recovery reads the new feed
// without its ackId, which belonged to the old one; the recreation is the
// other reader's to report.
func (f *DatafeedV2) recoverOnce(ctx context.Context, id, chain string, readErr error) (Batch, error) {
	f.recoverMu.Lock()
	defer f.recoverMu.Unlock()
	if cur := f.feedID(); cur != "" && cur != id {
		return f.read(ctx, cur, "")
	}
	b, gone, err := f.reread(ctx, id, readErr)
	if !gone {
		return b, err
	}
	if f.opts.Coordinator != nil {
		b, done, err := f.recoverShared(ctx, id, chain, err)
		if done {
			return b, err
		}
	}
	newID, err := f.replace(ctx, id, err)
	if err != nil {
		return Batch{}, err
	}
	f.setFeed(newID, time.Now())
	return f.readRecreated(ctx, newID, chain)
}

// openOnce opens the feed for a Read that found none, one Read at a time:
// concurrent first reads would otherwise each run Open, and each might
// create a feed.
func (f *DatafeedV2) openOnce(ctx context.Context) (string, error) {
	f.recoverMu.Lock()
	defer f.recoverMu.Unlock()
	if id := f.feedID(); id != "" {
		return id, nil
	}
	res, err := f.Open(ctx)
	return res.FeedID, err
}

// reread handles the first half of a 400 (readErr) on a read of feed id:
// if the feed is still listed, perhaps only the ackId was refused, so it
// reads once more without one. gone reports that the feed must be replaced;
// err is then the last 400.
func (f *DatafeedV2) reread(ctx context.Context, id string, readErr error) (b Batch, gone bool, err error) {
	feeds, err := f.list(ctx, true)
	if err != nil {
		return Batch{}, false, fmt.Errorf("datafeed v2 %s: read answered HTTP 400, checking whether the feed still exists: %w", id, err)
	}
	if !listed(feeds, id) {
		return Batch{}, true, readErr
	}
	b, err = f.read(ctx, id, "")
	if !isStatus(err, http.StatusBadRequest) {
		return b, false, err
	}
	return Batch{}, true, err
}

// replace deletes the lost feed id and creates another; readErr is the 400
// that condemned it.
func (f *DatafeedV2) replace(ctx context.Context, id string, readErr error) (string, error) {
	if err := f.deleteLost(ctx, id, readErr); err != nil {
		return "", err
	}
	newID, err := f.create(ctx)
	if err != nil {
		return "", fmt.Errorf("datafeed v2 %s: %w (%v); creating a new one: %w", id, ErrFeedGone, readErr, err)
	}
	return newID, nil
}

// deleteLost deletes feed id, condemned by the 400 readErr.
func (f *DatafeedV2) deleteLost(ctx context.Context, id string, readErr error) error {
	if err := f.delete(ctx, id); err != nil {
		return fmt.Errorf("datafeed v2 %s: %w (%v); deleting it: %w", id, ErrFeedGone, readErr, err)
	}
	return nil
}

// readRecreated reads the feed that replaced a lost one. It reports the
// recreation on the batch, or, when the read fails, owes it to chain.
func (f *DatafeedV2) readRecreated(ctx context.Context, newID, chain string) (Batch, error) {
	b, err := f.read(ctx, newID, "")
	if err != nil {
		f.mu.Lock()
		if f.owed == nil {
			f.owed = make(map[string]bool)
		}
		f.owed[chain] = true
		f.mu.Unlock()
		return Batch{}, err
	}
	b.FeedRecreated = true
	return b, nil
}

// delete removes feed id; an id the Agent no longer knows (400, 404) is
// already what was wanted.
func (f *DatafeedV2) delete(ctx context.Context, id string) error {
	_, err := f.c.do(ctx, request{
		op: "delete datafeed v2 " + id, method: http.MethodDelete,
		url: f.c.agent + "/agent/v5/datafeeds/" + url.PathEscape(id), authed: true,
	})
	if isStatus(err, http.StatusBadRequest) || isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Delete deletes the feed (DELETE /agent/v5/datafeeds/{id}); the events it
// still holds are lost. A feed already gone is not an error. Delete is for
// tools and tests: the bridge keeps its feed across restarts.
func (f *DatafeedV2) Delete(ctx context.Context) error {
	id := f.feedID()
	if id == "" {
		return errors.New("delete datafeed v2: no feed open")
	}
	if err := f.delete(ctx, id); err != nil {
		return err
	}
	f.mu.Lock()
	if f.id == id {
		f.id = ""
	}
	f.mu.Unlock()
	return nil
}

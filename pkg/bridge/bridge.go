package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/defaults"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Source is one reader of a Symphony feed (datafeed v2, datahose, v1).
type Source interface {
	// Read performs one long poll. ackID acknowledges the previous batch
	// ("" on the first read, after a feed recreation, or to re-read without
	// acknowledging). It blocks until events arrive, the poll times out
	// (an empty batch) or ctx ends, and returns errors [symphony.Classify]
	// understands.
	Read(ctx context.Context, ackID string) (symphony.Batch, error)
	// Name names the source in logs and errors ("datafeed v2 abc_f").
	Name() string
}

// ConcurrentSource is a [Source] whose Read may run on several goroutines at
// once, each goroutine carrying its own ackId chain (datafeed v2: the Agent
// spreads a feed's events over its concurrent readers). The bridge runs
// more than one reader only on such a source.
type ConcurrentSource interface {
	Source
	// ConcurrentReads reports whether concurrent reads are safe now.
	ConcurrentReads() bool
}

// Source kinds, the values of Config.Source (the {source} subject placeholder).
const (
	SourceDatafeed = "datafeed"
	SourceDatahose = "datahose"
)

// Defaults applied by [Config.Validate].
const (
	DefaultPublishTimeout  = 5 * time.Second
	DefaultMaxPending      = 4096
	DefaultSlowRetry       = 30 * time.Second
	DefaultPublishRetryMax = 5 * time.Second
	DefaultUnhealthyAfter  = 3
	// DefaultReaders is the most concurrent readers of one feed. Measured
	// (BENCHMARKS.md): one reader's read -> publish -> wait -> read chain
	// leaves JetStream idle between batches; two overlapping chains keep it
	// busy, and more only queue behind each other's publish-acks (4 readers
	// gave the same rate at twice the batch latency).
	DefaultReaders = 2
	// DefaultFullRead is the batch size that counts as a full read: the
	// most events a datafeed v2 read returns.
	DefaultFullRead = 100
)

// Config of a [Bridge]. The zero value of every optional field means "the
// default"; [Config.Validate] fills them in.
type Config struct {
	// Pod names the pod in headers and subjects ({pod}). Required.
	Pod string
	// Source is SourceDatafeed or SourceDatahose ({source}).
	Source string
	// Subject maps events to subjects; DeadLetter maps events that cannot be
	// published (undecodable, too big, refused) to the dead-letter subject.
	// Both required.
	Subject, DeadLetter *subjects.Mapper

	// PublishTimeout bounds the wait for one publish-ack (default 5 s). The
	// JetStream context must use the same value: see [NewJetStream].
	PublishTimeout time.Duration
	// MaxPending bounds the async publishes in flight (default 4096); batches
	// larger than this are published in chunks. See [NewJetStream].
	MaxPending int
	// Retry is the read retry policy for transient read errors (BDK
	// semantics; a finite MaxAttempts that runs out stops Run with an error).
	// The zero value means [symphony.DefaultRetry] (retry forever).
	Retry symphony.RetryConfig
	// SlowRetry is the wait between reads the Agent refuses (403, 404, other
	// 4xx): those are retried forever, never in a busy loop (default 30 s).
	SlowRetry time.Duration
	// PublishRetryMax caps the backoff between re-publishes of events whose
	// publish failed transiently (default 5 s).
	PublishRetryMax time.Duration
	// Dedupe, when set, skips publishing events stored recently. Optional.
	Dedupe Deduper
	// MaxMsgBytes is the size a dead letter (headers + payload) must fit in.
	// 0 takes the server's max payload, lowered to the dead-letter stream's
	// MaxMsgSize when it has one.
	MaxMsgBytes int
	// UnhealthyAfter is the number of consecutive read failures after which
	// [Bridge.Ready] reports not ready (default 3).
	UnhealthyAfter int
	// Readers is the most concurrent readers of the feed, each with its own
	// ackId chain (default 2; 1 reads strictly in sequence). Readers are
	// added only while reads come back full (FullRead events) and retire
	// when the feed is drained; a source that is not a [ConcurrentSource]
	// is always read by one.
	Readers int
	// FullRead is the number of events from which a read counts as full
	// (default 100).
	FullRead int
	// Observer receives the latency of every stored batch; nil = none.
	Observer Observer
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
}

// Deduper remembers the Msg-Ids of events stored recently, so that a
// redelivery is not published again. It is an optimisation: JetStream's
// duplicate window is the guarantee. It must be safe for concurrent use.
type Deduper interface {
	// Seen reports whether id was marked and is still remembered.
	Seen(id string) bool
	// Mark remembers ids as stored; the bridge calls it only once every
	// one of them has its publish-ack.
	Mark(ids ...string)
}

// Observer is told about the bridge's work, for metrics. Its methods are
// called on the readers' goroutines, several at once: they must be safe
// for concurrent use, and quick (they run between a batch and the next read).
type Observer interface {
	// ObserveBatch reports one non-empty batch stored: d is the time from
	// the read returning to the batch being stored, when its ackId is
	// ready to go out with the reader's next read (what the bridge adds to
	// a batch's life, JetStream's round trip included); events is the
	// number of events in the batch.
	ObserveBatch(d time.Duration, events int)
}

// Validate fills in defaults and checks the configuration. Errors name the
// Go field: what a user typed was checked, under its own key, by whoever
// built the Config (cmd/symbridge: internal/config).
func (c *Config) Validate() error {
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.Retry = cmp.Or(c.Retry, symphony.DefaultRetry)
	c.SlowRetry = cmp.Or(c.SlowRetry, DefaultSlowRetry)
	c.PublishRetryMax = cmp.Or(c.PublishRetryMax, DefaultPublishRetryMax)
	c.UnhealthyAfter = cmp.Or(c.UnhealthyAfter, DefaultUnhealthyAfter)
	c.Readers = cmp.Or(c.Readers, DefaultReaders)
	c.FullRead = cmp.Or(c.FullRead, DefaultFullRead)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	check := func(bad bool, field, format string, a ...any) {
		if bad {
			errs = append(errs, fmt.Errorf("bridge: Config.%s: "+format, append([]any{field}, a...)...))
		}
	}
	check(c.Pod == "", "Pod", "required")
	check(c.Source != SourceDatafeed && c.Source != SourceDatahose, "Source", "must be %q or %q, got %q", SourceDatafeed, SourceDatahose, c.Source)
	check(c.Subject == nil, "Subject", "required (a compiled subject template)")
	check(c.DeadLetter == nil, "DeadLetter", "required (a compiled subject template)")
	check(c.PublishTimeout < 0, "PublishTimeout", "must be positive, got %s", c.PublishTimeout)
	check(c.MaxPending < 0, "MaxPending", "must be positive, got %d", c.MaxPending)
	check(c.SlowRetry < 0, "SlowRetry", "must be positive, got %s", c.SlowRetry)
	check(c.PublishRetryMax < 0, "PublishRetryMax", "must be positive, got %s", c.PublishRetryMax)
	check(c.MaxMsgBytes < 0, "MaxMsgBytes", "must be 0 (from the server) or positive, got %d", c.MaxMsgBytes)
	check(c.UnhealthyAfter < 0, "UnhealthyAfter", "must be positive, got %d", c.UnhealthyAfter)
	check(c.Readers < 0, "Readers", "must be positive, got %d", c.Readers)
	check(c.FullRead < 0, "FullRead", "must be positive, got %d", c.FullRead)
	// Each of Retry's problems (joined) gets the prefix, not only the first.
	var retryErrs []error
	if err := c.Retry.Validate(); err != nil {
		retryErrs = []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			retryErrs = j.Unwrap()
		}
	}
	for _, err := range retryErrs {
		errs = append(errs, fmt.Errorf("bridge: Config.Retry.%w", err))
	}
	return errors.Join(errs...)
}

// JetStreamConfig is what [NewJetStream] needs; use the same values as the
// bridge's [Config].
type JetStreamConfig struct {
	MaxPending     int           // async publishes in flight (default 4096)
	PublishTimeout time.Duration // wait for one publish-ack (default 5 s)
}

// NewJetStream creates the JetStream context a [Bridge] needs: async
// publishes bounded by cfg.MaxPending and failed with
// jetstream.ErrAsyncPublishTimeout after cfg.PublishTimeout (without that
// option a lost ack would be awaited forever). A caller building its own
// context must set both options (jetstream.WithPublishAsyncMaxPending,
// jetstream.WithPublishAsyncTimeout).
func NewJetStream(nc *nats.Conn, cfg JetStreamConfig) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(defaults.Positive(cfg.MaxPending, DefaultMaxPending)),
		jetstream.WithPublishAsyncTimeout(defaults.Positive(cfg.PublishTimeout, DefaultPublishTimeout)),
	)
	if err != nil {
		return nil, fmt.Errorf("bridge: jetstream context: %w", err)
	}
	return js, nil
}

// ErrAlreadyRunning is returned by [Bridge.Run] when called twice.
var ErrAlreadyRunning = errors.New("bridge: already running")

// Bridge reads one Symphony feed and stores every event in JetStream. Create
// it with [New]; Run it once. Ready, Stats and OnStored are safe to call from
// other goroutines at any time.
type Bridge struct {
	cfg  Config
	src  Source
	msgs *msgBuilder // BuildMsg for cfg.Pod and cfg.Source
	js   jetstream.JetStream
	nc   *nats.Conn // js.Conn(); nil only for a JetStream implementation without one
	log  *slog.Logger

	started atomic.Bool
	stats   counters
	hook    atomic.Pointer[func(*nats.Msg, *jetstream.PubAck)]
	notes   chan storedNote // to the OnStored goroutine; nil when not running

	// dlLimit caches the dead-letter size limit found on the server (0 =
	// not looked up yet).
	dlLimit atomic.Int64

	mu      sync.Mutex
	running bool
	stopped error // why Run returned, once it did
	readers []*reader
}

// New checks cfg (see [Config.Validate]) and returns a Bridge reading src and
// publishing through js, which should come from [NewJetStream].
func New(cfg Config, src Source, js jetstream.JetStream) (*Bridge, error) {
	if src == nil {
		return nil, errors.New("bridge: nil Source")
	}
	if js == nil {
		return nil, errors.New("bridge: nil JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, src: src, js: js, nc: js.Conn(), log: cfg.Logger.With("source", src.Name()),
		msgs: newMsgBuilder(cfg.Pod, cfg.Source)}
	return b, nil
}

// OnStored sets a hook called once for every message JetStream acknowledged
// (fresh or duplicate ack, dead letters included), after the ack. It runs on
// a goroutine of its own, in order; when it falls more than 1024 messages
// behind, notifications are dropped (counted in Stats.HookDropped) rather
// than slowing the bridge. nil removes the hook.
func (b *Bridge) OnStored(fn func(msg *nats.Msg, ack *jetstream.PubAck)) {
	if fn == nil {
		b.hook.Store(nil)
		return
	}
	b.hook.Store(&fn)
}

// Ready reports whether the bridge is doing its job: nil when it is, else
// why not (not running, NATS not connected, publishes failing, the Agent
// refusing reads, UnhealthyAfter consecutive read failures). It becomes ready
// again after a read whose batch was fully stored.
func (b *Bridge) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.stopped != nil:
		return fmt.Errorf("bridge stopped: %w", b.stopped)
	case !b.running:
		return errors.New("bridge not running")
	}
	if b.nc != nil {
		if st := b.nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", st)
		}
	}
	for _, r := range b.readers {
		if r.publishErr != nil {
			return fmt.Errorf("reader %d: publishing to JetStream fails: %w", r.id, r.publishErr)
		}
		if r.refused != nil {
			return fmt.Errorf("reader %d: the Agent refuses reads: %w", r.id, r.refused)
		}
		if r.failures >= b.cfg.UnhealthyAfter {
			return fmt.Errorf("reader %d: %d consecutive read failures, last: %w", r.id, r.failures, r.lastErr)
		}
	}
	return nil
}

// Stats is a snapshot of the bridge's counters since New.
type Stats struct {
	Batches         int64 // reads that returned a batch (empty ones included)
	EventsRead      int64 // events in those batches
	Published       int64 // events JetStream stored as new messages
	Duplicates      int64 // events JetStream already had (duplicate ack)
	DedupeSkipped   int64 // events not published because the dedupe set had them
	DeadLettered    int64 // events stored on the dead-letter subject instead
	ReadErrors      int64 // failed reads
	PublishRetries  int64 // re-publishes after a transient failure
	FeedRecreations int64 // batches reporting a recreated feed (events lost upstream)
	HookDropped     int64 // OnStored notifications dropped because the hook lagged
	// NewestStored is the Symphony timestamp of the newest event stored
	// (the latest event timestamp among the batches fully stored, dead
	// letters and dedupe skips included); zero before any. time.Since it
	// is how far the bridge lags behind Symphony while events flow.
	NewestStored time.Time
}

// Stored is the number of events whose storage is confirmed: new, duplicate
// or skipped by the dedupe set (dead letters not included).
func (s Stats) Stored() int64 { return s.Published + s.Duplicates + s.DedupeSkipped }

type counters struct {
	batches, eventsRead, published, duplicates, dedupeSkipped, deadLettered,
	readErrors, publishRetries, feedRecreations, hookDropped atomic.Int64
	newestStored atomic.Int64 // Stats.NewestStored in ms since the epoch; 0 before any
}

// storedUpTo raises newestStored to ts (ms) unless it is there already:
// one compare-and-swap per batch, whatever the readers' interleaving.
func (c *counters) storedUpTo(ts int64) {
	for {
		cur := c.newestStored.Load()
		if ts <= cur || c.newestStored.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	c := &b.stats
	return Stats{
		Batches: c.batches.Load(), EventsRead: c.eventsRead.Load(), Published: c.published.Load(),
		Duplicates: c.duplicates.Load(), DedupeSkipped: c.dedupeSkipped.Load(),
		DeadLettered: c.deadLettered.Load(), ReadErrors: c.readErrors.Load(),
		PublishRetries: c.publishRetries.Load(), FeedRecreations: c.feedRecreations.Load(),
		HookDropped: c.hookDropped.Load(), NewestStored: unixMilli(c.newestStored.Load()),
	}
}

// unixMilli is the time of ms since the epoch, in UTC (Stats print the
// same everywhere); the zero time for 0.
func unixMilli(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Readers returns the number of readers running now.
func (b *Bridge) Readers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.readers)
}

type storedNote struct {
	msg *nats.Msg
	ack *jetstream.PubAck
}

const hookQueue = 1024

// notifyStored hands a stored message to the OnStored goroutine without ever
// blocking the loop.
func (b *Bridge) notifyStored(msg *nats.Msg, ack *jetstream.PubAck) {
	if b.hook.Load() == nil || b.notes == nil {
		return
	}
	select {
	case b.notes <- storedNote{msg, ack}:
	default:
		b.stats.hookDropped.Add(1)
	}
}

// runHook delivers notifications until notes is closed and drained.
func (b *Bridge) runHook(notes <-chan storedNote) {
	for n := range notes {
		if fn := b.hook.Load(); fn != nil {
			(*fn)(n.msg, n.ack)
		}
	}
}

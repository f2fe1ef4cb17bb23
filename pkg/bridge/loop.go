package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/symbridge/symbridge/internal/backoff"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// reader is the state of one reader of the feed: its own ackId chain, its own
// read backoff and its own health. Several readers of one feed (each with its
// own chain) can run side by side, one goroutine each; everything they share
// lives on the Bridge.
type reader struct {
	b       *Bridge
	p       *pool
	id      int
	primary bool             // the first reader, which never retires
	ackID   string           // acknowledges the last batch fully stored
	retry   *backoff.Backoff // transient read failures

	// Health, guarded by b.mu.
	failures   int   // consecutive read failures
	lastErr    error // the last read error
	refused    error // set while the Agent refuses reads (slow retry)
	publishErr error // set while this reader's batch fails to publish, cleared once stored
}

// pool owns the readers of one Run: it starts them, and the first fatal
// error stops them all.
type pool struct {
	b      *Bridge
	max    int
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	active int
	nextID int
	err    error
}

// start adds a reader unless max are running. Each reader is a goroutine
// owned by the pool (p.wg) and stopped by the pool's context.
func (p *pool) start(ctx context.Context) {
	p.mu.Lock()
	if p.active >= p.max || p.err != nil || ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.active++
	id := p.nextID
	p.nextID++
	p.mu.Unlock()

	r := &reader{b: p.b, p: p, id: id, primary: id == 0, retry: backoff.New(backoff.Config(p.b.cfg.Retry))}
	p.b.mu.Lock()
	p.b.readers = append(p.b.readers, r)
	p.b.mu.Unlock()
	if id > 0 {
		p.b.log.Debug("reads come back full: adding a reader", "reader", id)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := r.run(ctx)
		p.b.mu.Lock()
		p.b.readers = slices.DeleteFunc(p.b.readers, func(x *reader) bool { return x == r })
		p.b.mu.Unlock()
		p.mu.Lock()
		p.active--
		if err != nil && p.err == nil {
			p.err = err
			p.cancel()
		}
		p.mu.Unlock()
	}()
}

// Run reads the feed and stores its events until ctx ends (it then returns
// nil, leaving the batches in hand un-acknowledged: the Agent redelivers
// them) or until it cannot go on: a fatal read error ([symphony.ClassFatal])
// or read retries exhausted (Config.Retry.MaxAttempts). Publish failures
// never stop it: they are retried or dead-lettered. Run may be called once.
//
// Run starts with one reader. When the source allows concurrent reads
// ([ConcurrentSource]), each read that comes back full (Config.FullRead
// events) adds a reader, up to Config.Readers; an added reader retires at
// its first empty read. A quiet feed is so polled by one reader, a busy one
// by several, each with its own ackId chain: events of different batches
// are then stored in no particular order (Symphony guarantees none either).
func (b *Bridge) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	notes := make(chan storedNote, hookQueue)
	b.notes = notes
	hookDone := make(chan struct{})
	go func() {
		defer close(hookDone)
		b.runHook(notes)
	}()

	b.mu.Lock()
	b.running = true
	b.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	p := &pool{b: b, max: 1, cancel: cancel}
	if cs, ok := b.src.(ConcurrentSource); ok && cs.ConcurrentReads() {
		p.max = b.cfg.Readers
	}
	p.start(runCtx)
	p.wg.Wait()
	cancel()
	err := p.err

	close(notes) // the readers are gone: nothing sends any more
	<-hookDone
	b.mu.Lock()
	b.running = false
	if err != nil {
		b.stopped = err
	} else {
		b.stopped = errors.New("context ended")
	}
	b.mu.Unlock()
	return err
}

// run is the loop of one reader. Each turn:
//
//  1. read: one long poll carrying the ackId of the last stored batch;
//  2. on a read error: back off, retry slowly, or stop (see readFailed); the
//     next read re-sends the same ackId;
//  3. store: publish every event and wait for every publish-ack, retrying
//     transient failures for as long as it takes;
//  4. advance: only now adopt the batch's ackId, so the next read
//     acknowledges it.
//
// A ctx ending at any point returns nil without advancing.
func (r *reader) run(ctx context.Context) error {
	log := r.b.log.With("reader", r.id)
	for {
		if ctx.Err() != nil {
			return nil
		}

		// 1. Read.
		batch, err := r.b.src.Read(ctx, r.ackID)
		readAt := time.Now()

		// 2. Read failed.
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if err := r.readFailed(ctx, log, err); err != nil {
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			}
			continue
		}
		r.b.stats.batches.Add(1)
		r.b.stats.eventsRead.Add(int64(len(batch.Events)))
		if batch.FeedRecreated {
			r.b.stats.feedRecreations.Add(1)
			log.Error("feed was recreated: Symphony dropped the events the old feed still held",
				"feed", batch.FeedID)
		}

		// 3. Store.
		if err := r.b.storeBatch(ctx, log, r, batch.Events); err != nil {
			log.Info("stopping in the middle of a batch; it stays un-acknowledged and will be redelivered",
				"events", len(batch.Events))
			return nil
		}

		// 4. Advance.
		r.ackID = batch.AckID
		r.retry.Reset()
		r.setHealthy()
		if len(batch.Events) > 0 {
			if o := r.b.cfg.Observer; o != nil {
				o.ObserveBatch(time.Since(readAt), len(batch.Events))
			}
			log.Debug("batch stored", "events", len(batch.Events), "feed", batch.FeedID)
		}

		// 5. Adapt: a full read says events are waiting, so another reader
		// helps; an added reader whose read came back empty holds nothing
		// un-acknowledged (the read acknowledged its last batch) and retires.
		switch {
		case len(batch.Events) >= r.b.cfg.FullRead:
			r.p.start(ctx)
		case len(batch.Events) == 0 && !r.primary:
			log.Debug("feed drained: reader retires")
			return nil
		}
	}
}

// errStop tells run that ctx ended while handling a read error.
var errStop = errors.New("stop")

// readFailed handles one read error: it returns nil to read again, errStop
// when ctx ended, or the error that stops Run.
func (r *reader) readFailed(ctx context.Context, log *slog.Logger, err error) error {
	r.b.stats.readErrors.Add(1)
	class := symphony.Classify(err)
	if class == symphony.ClassCanceled && ctx.Err() == nil {
		// A cancellation that is not the reader's own (its ctx is live):
		// a transient failure like any other, never a silent stop.
		class = symphony.ClassRetry
	}
	r.recordFailure(err, class == symphony.ClassSlowRetry)

	switch class {
	case symphony.ClassCanceled:
		return errStop
	case symphony.ClassFatal:
		log.Error("read failed for good", "err", err)
		return fmt.Errorf("bridge: read %s: %w", r.b.src.Name(), err)
	case symphony.ClassSlowRetry:
		// Retrying fast cannot help; retrying never would be a silent death.
		log.Error("the Agent refuses reads; retrying slowly", "err", err, "backoff", r.b.cfg.SlowRetry)
		if backoff.Sleep(ctx, r.b.cfg.SlowRetry) != nil {
			return errStop
		}
		return nil
	default: // symphony.ClassRetry
		var min time.Duration
		var apiErr *symphony.APIError
		if errors.As(err, &apiErr) {
			min = apiErr.RetryAfter
		}
		attempt := r.retry.Attempts() + 1
		log.Warn("read failed; backing off", "err", err, "attempt", attempt)
		werr := r.retry.Wait(ctx, min)
		switch {
		case werr == nil:
			return nil
		case errors.Is(werr, backoff.ErrExhausted):
			log.Error("read retries exhausted", "err", err, "attempt", attempt)
			return fmt.Errorf("bridge: read %s: %w: last error: %w", r.b.src.Name(), werr, err)
		default:
			return errStop
		}
	}
}

func (r *reader) recordFailure(err error, refused bool) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return
	}
	r.failures++
	r.lastErr = err
	if refused {
		r.refused = err
	}
}

// setPublishErr records (nil: clears) the reader's publish failure, which
// [Bridge.Ready] reports while it lasts.
func (r *reader) setPublishErr(err error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	r.publishErr = err
}

func (r *reader) setHealthy() {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	r.failures, r.lastErr, r.refused = 0, nil, nil
}

package main

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/symbridge/symbridge/pkg/bridge"
)

// progressInterval is how often `run` logs its progress line while events
// move. Not a configuration key: a line every 30 s is cheap, and a quiet
// feed logs none whatever the interval.
const progressInterval = 30 * time.Second

// progressSource is what the progress line reads: a *bridge.Bridge.
type progressSource interface {
	Stats() bridge.Stats
	Readers() int
}

// reportProgress logs a "progress" line every interval in which events were
// stored or dead-lettered, nothing after an idle one (a quiet feed does not
// flood the log), and a last line, whatever moved, when ctx ends. Its caller
// owns it: it returns once it has logged that last line.
func reportProgress(ctx context.Context, src progressSource, logger *slog.Logger, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	p := newProgress(src.Stats(), time.Now())
	for {
		select {
		case <-ctx.Done():
			attrs, _ := p.next(src.Stats(), src.Readers(), time.Now())
			logger.Info("progress", attrs...)
			return
		case <-tick.C:
			// The clock is read with the counts, not taken from the tick:
			// a tick waiting in its channel carries an earlier time, which
			// would shorten the newest event's age and inflate the rate.
			if attrs, moved := p.next(src.Stats(), src.Readers(), time.Now()); moved {
				logger.Info("progress", attrs...)
			}
		}
	}
}

// progress remembers the previous tick, so that a rate covers one interval
// (an idle interval moves the baseline too: a burst after an hour of quiet
// is not averaged over the hour).
type progress struct {
	at      time.Time
	handled int64 // stored + dead-lettered at the previous tick
}

func newProgress(st bridge.Stats, now time.Time) *progress {
	return &progress{at: now, handled: st.Stored() + st.DeadLettered}
}

// next takes the counts at now and returns the progress line's fields, and
// whether events were handled since the previous call.
func (p *progress) next(st bridge.Stats, readers int, now time.Time) (attrs []any, moved bool) {
	handled := st.Stored() + st.DeadLettered
	rate := 0.0
	if d := now.Sub(p.at); d > 0 {
		rate = float64(handled-p.handled) / d.Seconds()
	}
	moved = handled != p.handled
	p.at, p.handled = now, handled
	// The age is a string in both log formats ("1.5s", or "none" before the
	// first event): slog's JSON handler would print a Duration as nanoseconds.
	age := "none"
	if !st.NewestStored.IsZero() {
		age = now.Sub(st.NewestStored).Round(time.Millisecond).String()
	}
	return []any{
		"events_per_s", math.Round(rate*10) / 10,
		"stored", st.Stored(),
		"duplicates", st.Duplicates + st.DedupeSkipped,
		"dead_lettered", st.DeadLettered,
		"publish_retries", st.PublishRetries,
		"readers", readers,
		"newest_event_age", age,
	}, moved
}

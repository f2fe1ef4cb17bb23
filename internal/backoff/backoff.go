// Package backoff is the one exponential backoff of symbridge: the read
// retries of a feed (the BDK's datafeed.retry / datahose.retry semantics),
// the re-publishes of events JetStream failed to store, and the start-up
// steps all wait through it.
//
// It has no jitter, on purpose: it follows the BDK's retry block, and each
// loop backs off alone (one reader, one batch), not a crowd of clients.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Config of a [Backoff]. The caller validates it.
type Config struct {
	// MaxAttempts is the number of attempts before giving up; -1 = forever.
	MaxAttempts int
	Initial     time.Duration // the first wait
	Multiplier  float64       // each wait is the previous one times this
	Max         time.Duration // the longest wait
}

// ErrExhausted is returned by [Backoff.Wait] and [Backoff.Next] when a
// finite MaxAttempts ran out.
var ErrExhausted = errors.New("retries exhausted")

// Backoff tracks consecutive failures of one operation. Not safe for
// concurrent use; each loop owns one.
type Backoff struct {
	cfg      Config
	attempts int
	next     time.Duration
}

// New starts a backoff with no failures recorded.
func New(cfg Config) *Backoff { return &Backoff{cfg: cfg, next: cfg.Initial} }

// Reset forgets past failures (call after a success).
func (b *Backoff) Reset() { b.attempts = 0; b.next = b.cfg.Initial }

// Attempts is the number of failures since the last Reset.
func (b *Backoff) Attempts() int { return b.attempts }

// Next records one failure and returns how long to wait before the next
// attempt, or an error wrapping ErrExhausted when MaxAttempts attempts have
// failed.
func (b *Backoff) Next() (time.Duration, error) {
	b.attempts++
	if b.cfg.MaxAttempts > 0 && b.attempts >= b.cfg.MaxAttempts {
		return 0, fmt.Errorf("%w after %d attempts", ErrExhausted, b.attempts)
	}
	d := b.next
	n := time.Duration(float64(b.next) * b.cfg.Multiplier)
	if n > b.cfg.Max || n <= 0 {
		n = b.cfg.Max
	}
	b.next = n
	return d, nil
}

// Wait records one failure and sleeps the backoff (at least min), returning
// early with ctx's error when ctx ends.
func (b *Backoff) Wait(ctx context.Context, min time.Duration) error {
	d, err := b.Next()
	if err != nil {
		return err
	}
	return Sleep(ctx, max(d, min))
}

// Sleep waits for d or until ctx ends (it then returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

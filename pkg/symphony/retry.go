package symphony

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RetryConfig is the BDK's retry block (datafeed.retry, datahose.retry), with
// units: the BDK's *Millis keys are converted to time.Duration when the
// configuration is loaded.
type RetryConfig struct {
	// MaxAttempts is the number of attempts before giving up; -1 = forever
	// (the BDK's default for feeds).
	MaxAttempts int
	Initial     time.Duration // BDK initialIntervalMillis, default 500 ms
	Multiplier  float64       // default 2
	Max         time.Duration // BDK maxIntervalMillis, default 300 s
}

// DefaultRetry is the BDK's datafeed/datahose default.
var DefaultRetry = RetryConfig{MaxAttempts: -1, Initial: 500 * time.Millisecond, Multiplier: 2, Max: 300 * time.Second}

// Validate names the offending field.
func (c RetryConfig) Validate(prefix string) error {
	switch {
	case c.MaxAttempts == 0 || c.MaxAttempts < -1:
		return fmt.Errorf("%s.maxAttempts: must be -1 (forever) or at least 1, got %d", prefix, c.MaxAttempts)
	case c.Initial <= 0:
		return fmt.Errorf("%s.initialIntervalMillis: must be positive, got %s", prefix, c.Initial)
	case c.Multiplier < 1:
		return fmt.Errorf("%s.multiplier: must be at least 1, got %g", prefix, c.Multiplier)
	case c.Max < c.Initial:
		return fmt.Errorf("%s.maxIntervalMillis: must be at least initialIntervalMillis (%s), got %s", prefix, c.Initial, c.Max)
	}
	return nil
}

// ErrRetriesExhausted is returned by [Backoff.Wait] when a finite MaxAttempts ran out.
var ErrRetriesExhausted = errors.New("retries exhausted")

// Backoff tracks consecutive failures of one operation. Not safe for
// concurrent use; each loop owns one.
type Backoff struct {
	cfg      RetryConfig
	attempts int
	next     time.Duration
}

// NewBackoff starts a backoff with no failures recorded.
func NewBackoff(cfg RetryConfig) *Backoff { return &Backoff{cfg: cfg, next: cfg.Initial} }

// Reset forgets past failures (call after a success).
func (b *Backoff) Reset() { b.attempts = 0; b.next = b.cfg.Initial }

// Attempts is the number of failures since the last Reset.
func (b *Backoff) Attempts() int { return b.attempts }

// Next records one failure and returns how long to wait before the next
// attempt, or ErrRetriesExhausted when MaxAttempts attempts have failed.
func (b *Backoff) Next() (time.Duration, error) {
	b.attempts++
	if b.cfg.MaxAttempts > 0 && b.attempts >= b.cfg.MaxAttempts {
		return 0, fmt.Errorf("%w after %d attempts", ErrRetriesExhausted, b.attempts)
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
	if d < min {
		d = min
	}
	return Sleep(ctx, d)
}

// Sleep waits for d or until ctx ends.
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

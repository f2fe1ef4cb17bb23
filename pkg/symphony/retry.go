package symphony

import (
	"fmt"
	"time"

	"github.com/symbridge/symbridge/internal/backoff"
)

// RetryConfig is the BDK's retry block (datafeed.retry, datahose.retry), with
// units: the BDK's *Millis keys are converted to time.Duration when the
// configuration is loaded. The bridge waits with it through symbridge's one
// backoff (internal/backoff), whose Config has the same fields.
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

// ErrRetriesExhausted is wrapped by the error of a retry loop whose finite
// MaxAttempts ran out (the bridge's Run returns it): check it with
// errors.Is.
var ErrRetriesExhausted = backoff.ErrExhausted

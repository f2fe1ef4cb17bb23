package symphony

import (
	"errors"
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

// FieldError is a problem with one field of a configuration of this
// package; Field is the Go field's name, so that a caller can name the key its
// user typed.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem, each a [*FieldError], joined.
func (c RetryConfig) Validate() error {
	var errs []error
	check := func(bad bool, field, format string, a ...any) {
		if bad {
			errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, a...)})
		}
	}
	check(c.MaxAttempts == 0 || c.MaxAttempts < -1, "MaxAttempts", "must be -1 (forever) or at least 1, got %d", c.MaxAttempts)
	check(c.Initial <= 0, "Initial", "must be positive, got %s", c.Initial)
	check(c.Multiplier < 1, "Multiplier", "must be at least 1, got %g", c.Multiplier)
	check(c.Initial > 0 && c.Max < c.Initial, "Max", "must be at least the initial interval (%s), got %s", c.Initial, c.Max)
	return errors.Join(errs...)
}

// ErrRetriesExhausted is wrapped by the error of a retry loop whose finite
// MaxAttempts ran out (the bridge's Run returns it): check it with
// errors.Is.
var ErrRetriesExhausted = backoff.ErrExhausted

package symphony

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// APIError is a non-2xx answer from the Agent, the pod or the key manager.
// Message and Code come from Symphony's error body when it has one; the body
// is never echoed whole (it could hold anything).
type APIError struct {
	Op         string        // what was attempted, e.g. "read datafeed"
	StatusCode int           // HTTP status
	Code       int           // Symphony's "code", when the body had one
	Message    string        // Symphony's "message", truncated
	RetryAfter time.Duration // from a Retry-After header, when present
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Sentinel errors callers decide on with errors.Is.
var (
	// ErrAuthRejected: the pod or key manager answered 401 to an
	// authentication request. The credentials are wrong; retrying cannot help.
	ErrAuthRejected = errors.New("authentication rejected")
	// ErrFeedGone: a datafeed read answered 400 and could not be recovered.
	ErrFeedGone = errors.New("feed gone")
)

// Class says what a caller should do about an error.
type Class int

const (
	// ClassRetry: transient (5xx, 429, network, timeout, unparsable body,
	// authentication not possible right now). Back off and try again.
	ClassRetry Class = iota
	// ClassSlowRetry: the Agent refuses (403, 404, other 4xx). Retrying fast
	// would be a busy loop; report unhealthy and retry slowly.
	ClassSlowRetry
	// ClassFatal: configuration is wrong (credentials rejected). Exit with the reason.
	ClassFatal
	// ClassCanceled: the caller's context ended.
	ClassCanceled
)

func (c Class) String() string {
	switch c {
	case ClassRetry:
		return "retry"
	case ClassSlowRetry:
		return "slow-retry"
	case ClassFatal:
		return "fatal"
	case ClassCanceled:
		return "canceled"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify sorts an error returned by this package.
func Classify(err error) Class {
	switch {
	case err == nil:
		return ClassRetry
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, ErrAuthRejected):
		return ClassFatal
	case errors.Is(err, ErrAuthUnavailable):
		// Checked before the status: a 403 or 400 from an authentication
		// endpoint (a key manager not ready) must not look permanent.
		return ClassRetry
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch s := apiErr.StatusCode; {
		case s == http.StatusTooManyRequests, s >= 500:
			return ClassRetry
		case s >= 400:
			return ClassSlowRetry
		}
		return ClassRetry
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return ClassRetry
	}
	return ClassRetry
}

package main

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/symbridge/symbridge/pkg/bridge"
)

// lifecycle feeds /readyz and /metrics from start-up on: while symbridge
// connects, authenticates and opens its feed, /readyz answers 503 with the
// step it is on, how long it has been waiting and the last error of that
// step's attempts (what the log says, where a probe or an operator without
// the log looks); once the bridge runs, the bridge decides.
type lifecycle struct {
	mu      sync.Mutex
	step    string
	since   time.Time // when step began
	lastErr error     // the last failed attempt of step; nil before any
	b       *bridge.Bridge
	metrics http.Handler
}

// setStep starts a start-up step: its clock, and no error yet.
func (l *lifecycle) setStep(step string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.step, l.since, l.lastErr = step, time.Now(), nil
}

// failed records a failed attempt of the current step. err is shown on
// /readyz as it is logged: errors reaching here carry no secrets (the
// Symphony client redacts tokens, NATS URLs are redacted).
func (l *lifecycle) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
}

func (l *lifecycle) running(b *bridge.Bridge, metrics http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b, l.metrics = b, metrics
}

// ready is nil once the bridge is ready; during start-up the error reads
// "starting: authenticating (waiting 42s; last error: ...)".
func (l *lifecycle) ready() error {
	l.mu.Lock()
	b, step, waiting, lastErr := l.b, l.step, time.Since(l.since).Round(time.Second), l.lastErr
	l.mu.Unlock()
	if b != nil {
		return b.Ready()
	}
	if lastErr == nil {
		return fmt.Errorf("starting: %s (waiting %s)", step, waiting)
	}
	return fmt.Errorf("starting: %s (waiting %s; last error: %w)", step, waiting, lastErr)
}

// ServeHTTP serves /metrics once the bridge exists (503 before).
func (l *lifecycle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	h := l.metrics
	l.mu.Unlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

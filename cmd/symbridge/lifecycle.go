package main

import (
	"errors"
	"net/http"
	"sync"

	"github.com/symbridge/symbridge/pkg/bridge"
)

// lifecycle feeds /readyz and /metrics from start-up on: while symbridge
// connects, authenticates and opens its feed, /readyz answers 503 with the
// step it is on; once the bridge runs, the bridge decides.
type lifecycle struct {
	mu      sync.Mutex
	step    string
	b       *bridge.Bridge
	metrics http.Handler
}

func (l *lifecycle) setStep(step string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.step = step
}

func (l *lifecycle) running(b *bridge.Bridge, metrics http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b, l.metrics = b, metrics
}

func (l *lifecycle) ready() error {
	l.mu.Lock()
	b, step := l.b, l.step
	l.mu.Unlock()
	if b == nil {
		return errors.New("starting: " + step)
	}
	return b.Ready()
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

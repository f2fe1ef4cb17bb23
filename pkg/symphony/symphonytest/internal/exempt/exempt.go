// Package exempt carries the mark by which the simulated Agent tells the
// OpenAPI validator that a response is deliberately off-spec (an injected
// fault, a malformed event). It is its own package so that the simulator,
// which the daemon links for demo and agent-sim, does not import the
// validator and its OpenAPI and JSON-schema libraries, and the validator does
// not import the simulator.
package exempt

import (
	"context"
	"net/http"
	"sync/atomic"
)

// FaultHeader is the response header naming the fault the Agent injected.
const FaultHeader = "X-Symbridge-Sim-Fault"

type mark struct{ reason atomic.Value }

type key struct{}

// Track returns r with an empty mark in its context, and a function that
// reports the reason set on it by [Mark], if any, once the handler returned.
func Track(r *http.Request) (*http.Request, func() (string, bool)) {
	m := &mark{}
	r = r.WithContext(context.WithValue(r.Context(), key{}, m))
	return r, func() (string, bool) {
		reason, ok := m.reason.Load().(string)
		return reason, ok
	}
}

// Mark records why the response to r is exempt from spec checks; it does
// nothing for a request that is not tracked.
func Mark(r *http.Request, reason string) {
	if m, ok := r.Context().Value(key{}).(*mark); ok {
		m.reason.Store(reason)
	}
}

// Package bridgetest runs the real bridge inside a test process, wired as
// `symbridge run` wires it (its own NATS connection and JetStream context),
// with the default subject templates and timings short enough for tests.
package bridgetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Config is the bridge configuration of the tests: the default subject
// templates, a short publish timeout and a short read backoff.
func Config(t testing.TB, pod, source string, logger *slog.Logger) bridge.Config {
	t.Helper()
	subj, err := subjects.Compile(subjects.DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := subjects.Compile(subjects.DefaultDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	return bridge.Config{
		Pod: pod, Source: source, Subject: subj, DeadLetter: dead,
		PublishTimeout: time.Second, MaxPending: 256, PublishRetryMax: 100 * time.Millisecond,
		Retry:     symphony.RetryConfig{MaxAttempts: -1, Initial: 20 * time.Millisecond, Multiplier: 2, Max: 200 * time.Millisecond},
		SlowRetry: 200 * time.Millisecond,
		Logger:    logger,
	}
}

// Running is a bridge whose Run goroutine the test owns.
type Running struct {
	Bridge *bridge.Bridge

	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, valid once done is closed
}

// Start runs a new Bridge with cfg on src, connected to natsURL, with Run's
// context derived from parent. It is stopped at the test's cleanup.
func Start(t testing.TB, parent context.Context, cfg bridge.Config, src bridge.Source, natsURL string) *Running {
	t.Helper()
	nc, err := bridge.Connect(t.Context(), bridge.NATSConfig{
		URL: natsURL, Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond)},
	}, cfg.Logger)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	js, err := bridge.NewJetStream(nc, bridge.JetStreamConfig{PublishTimeout: cfg.PublishTimeout, MaxPending: cfg.MaxPending})
	if err != nil {
		nc.Close()
		t.Fatalf("NewJetStream: %v", err)
	}
	b, err := bridge.New(cfg, src, js)
	if err != nil {
		nc.Close()
		t.Fatalf("bridge.New: %v", err)
	}
	ctx, cancel := context.WithCancel(parent)
	r := &Running{Bridge: b, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() { // owned by r: ends when Stop cancels ctx
		defer close(r.done)
		r.err = b.Run(ctx)
	}()
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Done is closed when Run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is Run's result, once Done is closed.
func (r *Running) Err() error { return r.err }

// Stop cancels the bridge and waits for Run to return. Safe to call twice.
func (r *Running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Errorf("bridge did not stop within 10s of its context ending")
	}
	r.nc.Close()
}

// Alive fails the test when Run has returned.
func (r *Running) Alive(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("the bridge loop died: Run returned %v", r.err)
	default:
	}
}

// WaitReady polls until the bridge reports ready, for at most timeout.
func (r *Running) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	natstest.WaitFor(t, timeout, r.Bridge.Ready)
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/bridge"
)

// TestStreamNotCoveringSubjectsStops: a stream that would not capture the
// bridge's subjects is a configuration error an operator must mend; run
// stops with the reason instead of retrying forever.
func TestStreamNotCoveringSubjectsStops(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	srv := natstest.RunServer(t)
	path := writeConfig(t, agentURL, srv.URL(), "nats:\n", "nats:\n  stream:\n    subjects: [\"other.>\"]\n")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr testlog.Buffer
	err := run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("run: err %v, ctx %v; want a prompt error", err, ctx.Err())
	}
	if !errors.Is(err, bridge.ErrStreamCoverage) || !strings.Contains(err.Error(), "other.>") {
		t.Errorf("error %q does not name the stream's subjects", err)
	}
	if code := exitCode(err, &bytes.Buffer{}); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

// startStuck runs `symbridge run --config path` for a start-up expected to
// wait (a dependency unreachable), until the test ends; it returns the
// logs and the health server's address once it listens.
func startStuck(t *testing.T, path string) (logs *testlog.Buffer, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("run did not stop within 5s of cancellation during start-up")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", stderr.String())
		}
	})
	natstest.WaitFor(t, 10*time.Second, func() error {
		if addr = healthAddr(stderr.String()); addr == "" {
			return errors.New("no health server yet")
		}
		return nil
	})
	return &stderr, addr
}

// readyzWaiting polls /readyz until it reports the last error of a start-up
// step (the step's first attempt may still be under way), and returns it.
func readyzWaiting(t *testing.T, addr string) string {
	t.Helper()
	var body string
	natstest.WaitFor(t, 20*time.Second, func() error {
		var code int
		code, body = get(t, "http://"+addr+"/readyz")
		if code != 503 || !strings.Contains(body, "; last error: ") {
			return fmt.Errorf("/readyz: %d %q, want 503 with the last error", code, body)
		}
		return nil
	})
	t.Logf("/readyz: %s", body)
	return body
}

// TestReadyzDuringStartup: while symbridge waits for NATS, /healthz answers
// and /readyz says what it is waiting for, since when, and why.
func TestReadyzDuringStartup(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	path := writeConfig(t, agentURL, "nats://127.0.0.1:1") // nothing listens there

	_, addr := startStuck(t, path)
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz while starting: %d, want 200", code)
	}
	body := readyzWaiting(t, addr)
	for _, want := range []string{"not ready: starting: connecting to NATS (waiting ", "connection refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz %q lacks %q", body, want)
		}
	}
}

// TestReadyzStuckAuthenticating: with NATS up and the Agent (pod, key
// manager) refusing connections, start-up retries authentication, and
// /readyz says so: the step, how long it has waited, and the error behind
// it, as the log does.
func TestReadyzStuckAuthenticating(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nowhere := &url.URL{Scheme: "http", Host: "127.0.0.1:1"} // nothing listens there
	path := writeConfig(t, nowhere, srv.URL())

	logs, addr := startStuck(t, path)
	body := readyzWaiting(t, addr)
	for _, want := range []string{"not ready: starting: authenticating (waiting ", "127.0.0.1:1", "connection refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz %q lacks %q", body, want)
		}
	}
	if !strings.Contains(logs.String(), "start-up step failed; retrying") {
		t.Errorf("the log does not report the failed step:\n%s", logs.String())
	}
}

// TestRunUnlimitedMessageSize: nats.stream.maxMsgSize -1 is documented as
// "unlimited"; run accepts it (it used to exit 2) and creates the stream
// with MaxMsgSize -1.
func TestRunUnlimitedMessageSize(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	srv := natstest.RunServer(t)
	path := writeConfig(t, agentURL, srv.URL(), "nats:\n", "nats:\n  stream:\n    maxMsgSize: -1\n")

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr) }()
	js := natstest.JetStream(t, srv)
	natstest.WaitFor(t, 20*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("run returned %v\n%s", err, stderr.String())
		default:
		}
		s, err := js.Stream(t.Context(), "SYMPHONY")
		if err != nil {
			return err
		}
		if got := s.CachedInfo().Config.MaxMsgSize; got != -1 {
			t.Errorf("stream MaxMsgSize %d, want -1", got)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !regexp.MustCompile(`"msg":"go runtime settings","gomaxprocs":\d+,"gogc":-?\d+,"memory_limit":\d+`).MatchString(stderr.String()) {
		t.Errorf("no runtime settings line with its values in the logs:\n%s", stderr.String())
	}
}

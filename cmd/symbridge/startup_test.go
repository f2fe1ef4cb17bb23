package main

import (
	"bytes"
	"context"
	"errors"
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

// TestReadyzDuringStartup: while symbridge waits for NATS, /healthz answers
// and /readyz says what it is waiting for.
func TestReadyzDuringStartup(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	path := writeConfig(t, agentURL, "nats://127.0.0.1:1") // nothing listens there

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("run did not stop within 5s of cancellation while waiting for NATS")
		}
	}()
	var addr string
	natstest.WaitFor(t, 10*time.Second, func() error {
		if addr = healthAddr(stderr.String()); addr == "" {
			return errors.New("no health server yet")
		}
		return nil
	})
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz while starting: %d, want 200", code)
	}
	code, body := get(t, "http://"+addr+"/readyz")
	if code != 503 || !strings.Contains(body, "connecting to NATS") {
		t.Errorf("/readyz while starting: %d %q, want 503 naming the step", code, body)
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
	if !strings.Contains(stderr.String(), `"msg":"go runtime settings"`) {
		t.Errorf("no runtime settings line in the logs:\n%s", stderr.String())
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/testlog"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

const testBot = "bridge-bot"

var (
	keyOnce          sync.Once
	botKey, otherKey *rsa.PrivateKey
)

// keys returns the bot's key and an unrelated one, generated once.
func keys(t testing.TB) (bot, other *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if botKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return botKey, otherKey
}

// newAgent starts a simulated Agent over plain HTTP, behind the OpenAPI
// validator (when ../shared holds the spec files: spec.ForTest), that
// accepts pub's signatures for testBot.
func newAgent(t *testing.T, pub *rsa.PublicKey, longPoll time.Duration) (*symphonytest.Agent, *url.URL) {
	t.Helper()
	v := spec.ForTest(t)
	a := symphonytest.New(symphonytest.Config{Username: testBot, PublicKey: pub, LongPoll: longPoll, VisibilityTimeout: time.Second})
	a.Use(func(next http.Handler) http.Handler { return v.Middleware(next, nil) })
	u, err := url.Parse(a.Start())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		for _, f := range v.Failures() {
			t.Errorf("OpenAPI validation: %v", f)
		}
	})
	return a, u
}

// writeConfig writes a BDK-style config.yaml (plus symbridge's sections)
// pointing at the simulator and at natsURL, and the bot's key file. edits are
// (old, new) pairs replaced in the YAML text.
func writeConfig(t *testing.T, agent *url.URL, natsURL string, edits ...string) string {
	t.Helper()
	bot, _ := keys(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "bot.pem")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(bot)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`# A BDK config.yaml, as a team has it, plus symbridge's sections.
scheme: http
host: %s
port: %s
bot:
  username: %s
  privateKey:
    path: %s
datafeed:
  retry:
    maxAttempts: -1
    initialIntervalMillis: 50
    multiplier: 2
    maxIntervalMillis: 500
bridge:
  pod: acme
nats:
  url: %s
http:
  listen: 127.0.0.1:0
log:
  level: info
  format: json
`, agent.Hostname(), agent.Port(), testBot, keyFile, natsURL)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(cfg, edits[i]) {
			t.Fatalf("config edit: %q not in the file", edits[i])
		}
		cfg = strings.Replace(cfg, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// healthAddrRe finds the health server's address in text or JSON logs.
var healthAddrRe = regexp.MustCompile(`health endpoints listening"?[ ,]"?addr"?[=:]"?([0-9.]+:[0-9]+)`)

// healthAddr is the health server's address in the logs, "" before it
// listens.
func healthAddr(logs string) string {
	if m := healthAddrRe.FindStringSubmatch(logs); m != nil {
		return m[1]
	}
	return ""
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// landedLine is one line of the demo's live view.
var landedLine = regexp.MustCompile(`(?m)^\s*\d+\s+seq=\d+\s+symphony\.demo\.[a-z_]+\.[a-z]+\s`)

// TestDemo: the one-command demo shows events landing in JetStream and a
// summary, and stops by itself after --duration with exit status 0.
func TestDemo(t *testing.T) {
	t.Parallel()
	var stdout, stderr testlog.Buffer
	start := time.Now()
	err := run(t.Context(), []string{"demo", "--duration", "3s", "--nats-listen", "127.0.0.1:0", "--dir", t.TempDir()},
		nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("demo --duration 3s took %s", d)
	}
	out := stdout.String()
	landed := landedLine.FindAllString(out, -1)
	m := regexp.MustCompile(`(\d+) events generated, (\d+) messages stored in JetStream`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in the demo's output:\n%s", out)
	}
	generated, _ := strconv.Atoi(m[1])
	stored, _ := strconv.Atoi(m[2])
	if stored == 0 || len(landed) != stored || generated < stored {
		t.Errorf("demo: %d landed lines, summary %d generated / %d stored:\n%s", len(landed), generated, stored, out)
	}
	// The demo starts with one event of every type, MESSAGESENT first.
	if !strings.Contains(out, "symphony.demo.messagesent.") {
		t.Errorf("no MESSAGESENT event in the demo's live view:\n%s", out)
	}
	t.Logf("demo: %d events generated, %d stored", generated, stored)
	if exitCode(err, io.Discard) != 0 {
		t.Error("demo exit code not 0")
	}
}

// TestRunBridgesAndStopsMidLongPoll: `symbridge run --config FILE` with a
// BDK-style file bridges events from the Agent into JetStream, serves
// /healthz and /readyz, and a cancellation in the middle of a 30 s long
// poll makes it return nil within a few seconds.
func TestRunBridgesAndStopsMidLongPoll(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	agent, agentURL := newAgent(t, &bot.PublicKey, 30*time.Second)
	srv := natstest.RunServer(t)
	path := writeConfig(t, agentURL, srv.URL())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return at cleanup")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", stderr.String())
		}
	})

	natstest.WaitFor(t, 20*time.Second, func() error {
		for _, f := range agent.Feeds() {
			if f.Kind == symphonytest.KindDatafeed && f.Readers > 0 {
				return nil
			}
		}
		return errors.New("the bridge is not reading its feed yet")
	})
	gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 7})
	events := gen.Mix(25)
	agent.Emit(events...)

	js := natstest.JetStream(t, srv)
	natstest.WaitFor(t, 20*time.Second, func() error {
		s, err := js.Stream(t.Context(), "SYMPHONY")
		if err != nil {
			return err
		}
		info, err := s.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(len(events)) {
			return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(events))
		}
		return nil
	})

	addr := healthAddr(stderr.String())
	if addr == "" {
		t.Fatalf("no health server address in the logs:\n%s", stderr.String())
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(t, "http://"+addr+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	} else {
		// Values of the publish counters depend on timing (a late ack is
		// retried and counted as a duplicate); their presence does not.
		for _, m := range []string{"symbridge_events_published_total ", "symbridge_events_duplicate_total ", "symbridge_ready 1\n", "symbridge_nats_connected 1\n", "symbridge_build_info{", "symbridge_newest_event_timestamp_seconds ",
			"symbridge_batch_latency_seconds_bucket{le=", "symbridge_batch_latency_seconds_sum ", "symbridge_batch_latency_seconds_count "} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %q:\n%s", m, body)
			}
		}
	}

	// Everything acknowledged and the next read held by the Agent: the
	// bridge is in the middle of a 30 s long poll.
	natstest.WaitFor(t, 20*time.Second, func() error {
		for _, f := range agent.Feeds() {
			if f.Acked == int64(len(events)) && f.InFlight == 0 && f.Readers == 1 {
				return nil
			}
		}
		return fmt.Errorf("not idle in a long poll yet: %+v", agent.Feeds())
	})
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancellation: %v, want nil", err)
		}
		d := time.Since(start)
		if d > 3*time.Second {
			t.Errorf("run took %s to stop in a long poll, want under 3s", d)
		}
		t.Logf("run stopped %s after cancellation in a 30s long poll", d)
		// The progress line at stop, with the totals.
		if lines := progressLines(t, stderr.String()); len(lines) == 0 {
			t.Errorf("no progress line at stop:\n%s", stderr.String())
		} else {
			l := lines[len(lines)-1]
			if stored, _ := l["stored"].(float64); stored < float64(len(events)) || l["newest_event_age"] == "none" {
				t.Errorf("progress line at stop %v, want at least %d stored and an age", l, len(events))
			}
		}
		done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop within 5s of cancellation in a long poll")
	}
}

// TestCredentialsRejected: a key the pod does not accept stops `run` with
// exit status 1 and a clear reason, without retrying forever.
func TestCredentialsRejected(t *testing.T) {
	t.Parallel()
	_, other := keys(t)
	_, agentURL := newAgent(t, &other.PublicKey, time.Second) // the pod knows another key
	srv := natstest.RunServer(t)
	path := writeConfig(t, agentURL, srv.URL())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr testlog.Buffer
	err := run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("run with a rejected key: err %v, ctx %v; want a prompt error", err, ctx.Err())
	}
	t.Logf("run: %v", err)
	if !errors.Is(err, symphony.ErrAuthRejected) || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("error %q does not say the credentials were rejected", err)
	}
	var msg bytes.Buffer
	if code := exitCode(err, &msg); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(msg.String(), "authentication rejected") {
		t.Errorf("printed reason %q", msg.String())
	}
}

// TestUsageAndConfigErrors: bad usage and invalid configuration exit with 2
// and name what is wrong.
func TestUsageAndConfigErrors(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	cases := []struct {
		name string
		args func(t *testing.T) []string
		want string // in the error
	}{
		{"no command", func(*testing.T) []string { return nil }, "no command"},
		{"unknown command", func(*testing.T) []string { return []string{"frobnicate"} }, `unknown command "frobnicate"`},
		{"unknown flag", func(*testing.T) []string { return []string{"run", "--bogus"} }, "bogus"},
		{"invalid value", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, agentURL, "nats://127.0.0.1:1", "datafeed:\n", "datafeed:\n  version: v9\n")}
		}, "datafeed.version"},
		{"unknown key in symbridge's section", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, agentURL, "nats://127.0.0.1:1", "bridge:\n", "bridge:\n  sauce: datahose\n")}
		}, "bridge.sauce"},
		{"bad log level flag", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, agentURL, "nats://127.0.0.1:1"), "--log-level", "loud"}
		}, "log.level"},
		{"missing config file", func(t *testing.T) []string {
			return []string{"run", "--config", filepath.Join(t.TempDir(), "nope.yaml")}
		}, "nope.yaml"},
		{"healthcheck without URL", func(*testing.T) []string { return []string{"healthcheck"} }, "usage"},
		{"config without subcommand", func(*testing.T) []string { return []string{"config"} }, "usage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr testlog.Buffer
			err := run(ctx, tc.args(t), nil, &stdout, &stderr)
			if err == nil {
				t.Fatal("no error")
			}
			var u usageError
			if !errors.As(err, &u) {
				t.Errorf("error %q is not a usage error", err)
			}
			if code := exitCode(err, io.Discard); code != 2 {
				t.Errorf("exit code %d, want 2 (error %q)", code, err)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestHealthcheck: the container health check exits 0 on 200, 1 otherwise.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	ready := true
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: NATS connection is RECONNECTING")
			return
		}
		fmt.Fprintln(w, "ready")
	}))
	defer hs.Close()

	var out bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", hs.URL + "/readyz"}, nil, &out, io.Discard); err != nil {
		t.Fatalf("healthcheck of a ready server: %v", err)
	}
	if !strings.Contains(out.String(), "ready") {
		t.Errorf("healthcheck printed %q", out.String())
	}

	mu.Lock()
	ready = false
	mu.Unlock()
	err := run(t.Context(), []string{"healthcheck", hs.URL + "/readyz"}, nil, io.Discard, io.Discard)
	if code := exitCode(err, io.Discard); code != 1 || !strings.Contains(fmt.Sprint(err), "503") {
		t.Errorf("healthcheck of an unready server: exit %d, error %v; want 1 naming the status", code, err)
	}

	hs.Close()
	err = run(t.Context(), []string{"healthcheck", hs.URL + "/readyz"}, nil, io.Discard, io.Discard)
	if code := exitCode(err, io.Discard); code != 1 {
		t.Errorf("healthcheck of a closed server: exit %d, error %v; want 1", code, err)
	}
}

// TestConfigKeysAndVersion: the configuration reference lists every key
// with its environment spelling; version prints something.
func TestConfigKeysAndVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"config", "keys"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"bot.privateKey.path", "SYMBRIDGE_BOT__PRIVATEKEY__PATH",
		"nats.url", "SYMBRIDGE_NATS__URL",
		"datafeed.retry.initialIntervalMillis", "bridge.subject", "http.listen",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config keys lacks %q", want)
		}
	}
	out.Reset()
	if err := run(t.Context(), []string{"version"}, nil, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) == "" {
		t.Errorf("version: %v, printed %q", err, out.String())
	}
}

// TestCommandHelp: every command's --help exits 0 and prints its usage and
// flags to stdout, nothing to stderr.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	cases := map[string]string{ // command: a flag or word its help names
		"run": "-config", "check": "-json", "demo": "-duration", "agent-sim": "-listen",
		"healthcheck": "URL", "config": "keys", "tail": "-since",
	}
	for cmd, want := range cases {
		for _, h := range []string{"--help", "-h"} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{cmd, h}, nil, &stdout, &stderr)
			if code := exitCode(err, io.Discard); code != 0 {
				t.Errorf("%s %s: exit %d (%v), want 0", cmd, h, code, err)
			}
			if !strings.Contains(stdout.String(), "Usage: symbridge "+cmd) || !strings.Contains(stdout.String(), want) {
				t.Errorf("%s %s printed %q; want its usage naming %q", cmd, h, stdout.String(), want)
			}
			if stderr.Len() != 0 {
				t.Errorf("%s %s wrote to stderr: %q", cmd, h, stderr.String())
			}
		}
	}
}

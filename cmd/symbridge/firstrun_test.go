package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/internal/testshared"
)

// exampleConfig is the ready configuration README's first-run block uses.
const exampleConfig = "examples/agent-sim/config.yaml"

var (
	docMetricRe    = regexp.MustCompile(`symbridge_[a-z0-9_]*[a-z0-9]`)
	agentSimAddrRe = regexp.MustCompile(`serving the Symphony Agent, pod and key manager at (http://\S+)`)
	publishedRe    = regexp.MustCompile(`(?m)^symbridge_events_published_total (\d+)`)
)

// TestREADMEFirstRun runs README's first-run block as written, from a
// directory holding examples/agent-sim/config.yaml as the repository does:
// the key it generates with openssl, `symbridge agent-sim` in the
// background and `symbridge run --config examples/agent-sim/config.yaml`,
// and sees events stored and /readyz ready. Only the ports differ (free
// ones, through agent-sim's --listen and SYMBRIDGE_* variables, so that the
// test runs beside others), and `go build` is replaced by calling the same
// code in-process. A line the test does not know fails it, so the block
// cannot change without the test.
func TestREADMEFirstRun(t *testing.T) {
	block := testshared.READMEBlock(t, "first-run")
	root := testshared.RepoRoot(t)
	example, err := os.ReadFile(filepath.Join(root, exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(exampleConfig)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, exampleConfig), example, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // the block runs from the repository root; the example's paths are relative to it

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type proc struct {
		name           string
		stdout, stderr *testlog.Buffer
		done           chan error
	}
	var procs []*proc
	start := func(args, environ []string) *proc {
		p := &proc{name: strings.Join(args, " "), stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, done: make(chan error, 1)}
		go func() { p.done <- run(ctx, args, environ, p.stdout, p.stderr) }()
		procs = append(procs, p)
		return p
	}
	t.Cleanup(func() {
		cancel()
		for _, p := range procs {
			select {
			case err := <-p.done:
				if err != nil {
					t.Errorf("%s returned %v", p.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop within 10s of Ctrl-C", p.name)
			}
			if t.Failed() {
				t.Logf("%s:\n%s%s", p.name, p.stdout.String(), p.stderr.String())
			}
		}
	})

	var agentPort string
	var bridge *proc
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		background := strings.HasSuffix(line, "&")
		line = strings.TrimSpace(strings.TrimSuffix(line, "&"))
		fields := strings.Fields(line)
		switch {
		case line == "":
		case line == "go build -o symbridge ./cmd/symbridge":
			// this test calls the same code in-process
		case fields[0] == "openssl":
			if out, err := exec.CommandContext(ctx, "bash", "-euc", line).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
		case len(fields) > 1 && fields[0] == "./symbridge" && fields[1] == "agent-sim":
			if !background {
				t.Fatalf("README runs agent-sim in the foreground: %q", line)
			}
			p := start(append(fields[1:], "--listen", "127.0.0.1:0"), nil)
			natstest.WaitFor(t, 10*time.Second, func() error {
				m := agentSimAddrRe.FindStringSubmatch(p.stdout.String())
				if m == nil {
					return fmt.Errorf("agent-sim has not said where it serves:\n%s", p.stdout.String())
				}
				u, err := url.Parse(m[1])
				if err != nil {
					return err
				}
				agentPort = u.Port()
				return nil
			})
		case len(fields) > 1 && fields[0] == "./symbridge" && fields[1] == "run":
			if agentPort == "" {
				t.Fatal("README starts run before agent-sim")
			}
			bridge = start(fields[1:], []string{
				"SYMBRIDGE_PORT=" + agentPort,
				"SYMBRIDGE_NATS__EMBEDDED__LISTEN=127.0.0.1:0",
				"SYMBRIDGE_HTTP__LISTEN=127.0.0.1:0",
			})
		default:
			t.Fatalf("README first-run block: a line this test does not run: %q", line)
		}
	}
	if bridge == nil {
		t.Fatal("README's first-run block does not start symbridge run")
	}

	var addr string
	natstest.WaitFor(t, 20*time.Second, func() error {
		if addr = healthAddr(bridge.stderr.String()); addr == "" {
			return fmt.Errorf("no health address in run's logs yet")
		}
		return nil
	})
	natstest.WaitFor(t, 30*time.Second, func() error {
		_, metrics := get(t, "http://"+addr+"/metrics")
		m := publishedRe.FindStringSubmatch(metrics)
		if m == nil {
			return fmt.Errorf("no symbridge_events_published_total in /metrics")
		}
		if n, _ := strconv.Atoi(m[1]); n < 10 {
			return fmt.Errorf("%d events stored, want at least 10", n)
		}
		return nil
	})
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	_, metrics := get(t, "http://"+addr+"/metrics")
	t.Run("metric names in the docs", func(t *testing.T) { checkDocMetricNames(t, root, metrics) })
	if _, err := os.Stat(filepath.Join(dir, "symbridge-data")); err != nil {
		t.Errorf("the embedded server's store is not where the example says: %v", err)
	}
}

// checkDocMetricNames fails for every symbridge_* name README.md and
// docs/operations.md (under root) use (in alerts, dashboards, prose) that metrics, the
// text a real run served on /metrics, does not export.
func checkDocMetricNames(t *testing.T, root, metrics string) {
	exported := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, "symbridge_") {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
	}
	if len(exported) < 10 {
		t.Fatalf("only %d symbridge_* names in /metrics:\n%s", len(exported), metrics)
	}
	for _, doc := range []string{"README.md", "docs/operations.md"} {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range docMetricRe.FindAllString(string(text), -1) {
			if !exported[name] {
				t.Errorf("%s names %s, which /metrics does not export", doc, name)
			}
		}
	}
}

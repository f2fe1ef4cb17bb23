//go:build consumers

package consumers_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/testshared"
)

// runBlock runs a README block with bash as a script would: the module root
// as working directory, NATS_URL set, no standard input, no terminal, its
// own process group (killed at the end, with whatever it left running in
// the background). It returns the combined output once bash has exited.
func runBlock(t *testing.T, block, natsURL string) string {
	t.Helper()
	root, err := testshared.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("nats"); err != nil {
		t.Fatalf("the nats CLI is not on PATH: go install github.com/nats-io/natscli/nats@v0.5.0 (.ci/run does)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := os.CreateTemp(t.TempDir(), "block-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL)
	cmd.Stdin = nil // /dev/null: a prompt fails instead of waiting
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	runErr := cmd.Wait()
	text, _ := os.ReadFile(out.Name())
	if runErr != nil {
		t.Fatalf("README block failed: %v\n%s\n--- output ---\n%s", runErr, block, text)
	}
	return string(text)
}

// TestReadmeCLIBlock runs README's `nats` CLI block against a live stream:
// it must create the shared consumer with every setting given, take and ack
// ten events, and replay from a time and a sequence, with no terminal.
func TestReadmeCLIBlock(t *testing.T) {
	e := newEnv(t)
	e.startBridge()
	e.emit(50)
	e.waitStored(50)

	out := runBlock(t, testshared.READMEBlock(t, "consumer-cli"), e.srv.URL())
	if n := strings.Count(out, "Acknowledged message"); n != 10 {
		t.Errorf("`nats consumer next --count 10 --ack` acknowledged %d messages, want 10\n%s", n, out)
	}
	if n := strings.Count(out, "/ tries: 1 /"); n != 15 {
		t.Errorf("the block showed %d messages, want 10 taken by the workers' consumer and 5 replayed\n%s", n, out)
	}
	lister := e.stream.ListConsumers(t.Context())
	for c := range lister.Info() {
		if c.Name != durable {
			t.Errorf("consumer %q left behind by the README block", c.Name)
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	info := e.consumerInfo()
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy || info.Config.FilterSubject != "symphony.>" ||
		info.Config.AckWait != 30*time.Second || info.Config.MaxAckPending != 1000 {
		t.Errorf("consumer %q made by the README: %+v", durable, info.Config)
	}
	if info.AckFloor.Stream != 10 {
		t.Errorf("ack floor after the README block: %d, want 10", info.AckFloor.Stream)
	}
}

// TestReadmeWorkersBlock runs README's worker block: a Go worker and the C
// worker share the durable in the background while the two replays run in
// the foreground; then the background workers must have handled every event.
func TestReadmeWorkersBlock(t *testing.T) {
	workers(t) // the C worker's build errors read better from here
	e := newEnv(t)
	e.startBridge()
	const n = 300
	e.emit(n)
	e.waitStored(n)

	out := runBlock(t, testshared.READMEBlock(t, "consumer-workers"), e.srv.URL())
	if lines := strings.Count(out, " initiator="); lines < n {
		// the two replays print n (all) + the MESSAGESENT events, the
		// workers their share of the n
		t.Errorf("the README block printed %d event lines, want at least %d\n%s", lines, n, lastLines(out, 20))
	}
	e.waitAllAcked(n)
	if got := strings.Count(out, "go-worker: stopped after"); got != 2 {
		t.Errorf("want the two replays to end by themselves, saw %d ends\n%s", got, lastLines(out, 20))
	}
}

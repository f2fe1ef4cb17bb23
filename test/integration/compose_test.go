//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/symbridge/symbridge/internal/testshared"
)

// composeCommand finds the Compose tool: the docker CLI plugin ("docker
// compose") or the standalone v1 tool ("docker-compose", Debian's package).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err == nil {
		if exec.Command("docker", "compose", "version").Run() == nil {
			return []string{"docker", "compose"}
		}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if dockerRequired() {
		t.Fatalf("neither `docker compose` nor `docker-compose` found, and CI or %s=1 requires one", envRequireDocker)
	}
	t.Skip("neither `docker compose` nor `docker-compose` found")
	return nil
}

// TestCompose brings up docker-compose.yml (NATS, symbridge, the Agent
// simulator) with the locally built images, checks that both health checks
// pass and that events reach the stream, seen from the host through the
// published NATS port, then takes the stack down with its volume.
func TestCompose(t *testing.T) {
	cli := requireDocker(t)
	compose := composeCommand(t)
	natsRef, symbridgeRef := natsImage(t), symbridgeImage(t)
	root, err := testshared.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}

	// The bot's key pair: the simulator verifies the login JWT that
	// symbridge signs with it. The directory is bind-mounted and read by
	// nobody (65534).
	secrets := t.TempDir()
	if err := os.Chmod(secrets, 0o755); err != nil {
		t.Fatal(err)
	}
	priv, _ := writeRSAKeyPair(t, secrets)
	if os.Getuid() == 0 { // keep the key private to the container's user
		if err := os.Chown(priv, 65534, 65534); err == nil {
			os.Chmod(priv, 0o600)
		}
	}

	ports := freePorts(t, 4)
	project := "symbridge-it-" + strings.ReplaceAll(uniqueSuffix(), "-", "")
	env := append(os.Environ(),
		"SYMBRIDGE_IMAGE="+symbridgeRef,
		"SYMBRIDGE_NATS_IMAGE="+natsRef,
		fmt.Sprintf("SYMBRIDGE_NATS_PORT=%d", ports[0]),
		fmt.Sprintf("SYMBRIDGE_NATS_MONITOR_PORT=%d", ports[1]),
		fmt.Sprintf("SYMBRIDGE_HTTP_PORT=%d", ports[2]),
		fmt.Sprintf("SYMBRIDGE_AGENT_PORT=%d", ports[3]),
		"SYMBRIDGE_SECRETS_DIR="+secrets,
		"SYMBRIDGE_DEMO_RATE=50",
	)
	run := func(ctx context.Context, args ...string) ([]byte, error) {
		full := append(append(compose[1:len(compose):len(compose)], "-f", filepath.Join(root, "docker-compose.yml"), "-p", project), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Dir = root
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	down := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := run(ctx, "down", "-v", "--remove-orphans", "--timeout", "10")
		return err
	}
	downDone := false
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, _ := run(ctx, "logs", "--no-color", "--tail", "40")
			cancel()
			t.Logf("--- compose logs ---\n%s", out)
		}
		if !downDone {
			if err := down(); err != nil {
				t.Errorf("compose down: %v", err)
			}
		}
	})

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := run(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	upIn := time.Since(start)

	// Health checks: the simulator answers, symbridge's /readyz is 200.
	for _, svc := range []string{"agent-sim", "symbridge"} {
		out, err := run(ctx, "ps", "-q", svc)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(out))
		if id == "" {
			t.Fatalf("service %s has no container", svc)
		}
		if err := poll(ctx, 90*time.Second, 500*time.Millisecond, func() error {
			res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			st := res.Container.State
			if st == nil || st.Health == nil {
				return errors.New("no health status (does the compose file define a health check?)")
			}
			if s := string(st.Health.Status); s != "healthy" {
				return fmt.Errorf("%s is %s", svc, s)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	healthyIn := time.Since(start)

	// Events reach the stream, seen from the host.
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to the published NATS port: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const want = 100
	var msgs uint64
	if err := poll(ctx, 90*time.Second, 250*time.Millisecond, func() error {
		s, err := js.Stream(ctx, "SYMPHONY")
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if msgs = info.State.Msgs; msgs < want {
			return fmt.Errorf("%d events in SYMPHONY, waiting for %d", msgs, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "SYMPHONY")
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.GetLastMsgForSubject(ctx, "symphony.demo.>")
	if err != nil {
		t.Fatalf("no event on symphony.demo.>: %v", err)
	}
	if last.Header.Get(jetstream.MsgIDHeader) == "" || last.Header.Get("Symphony-Event-Type") == "" {
		t.Errorf("event %s lacks its Nats-Msg-Id or Symphony-Event-Type header: %v", last.Subject, last.Header)
	}
	flowingIn := time.Since(start)
	nc.Close()

	downDone = true
	if err := down(); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t.Context(), "ps", "-q"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers left after down: %q %v", out, err)
	}
	msg := fmt.Sprintf("COMPOSE %s up=%.1fs healthy=%.1fs events=%d (>=%d after %.1fs) last=%s down=%.1fs",
		strings.Join(compose, " "), upIn.Seconds(), healthyIn.Seconds(), msgs, want, flowingIn.Seconds(), last.Subject,
		time.Since(start).Seconds()-flowingIn.Seconds())
	t.Log(msg)
	fmt.Println(msg)
}

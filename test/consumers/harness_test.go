//go:build consumers

package consumers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/bridgetest"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/internal/testshared"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

const (
	pod        = "acme"
	botUser    = "bridge-bot"
	streamName = "SYMPHONY"
	durable    = "workers"

	// ackWait is the shared consumer's AckWait: what a killed worker held
	// comes back to the others after it.
	ackWait = 2 * time.Second
	// waitLong bounds every poll; a healthy run needs a fraction of it.
	waitLong = 90 * time.Second
)

// binaries are the example workers, built once per test binary.
var binaries struct {
	once            sync.Once
	goWorker, cWork string
	err             error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "symbridge-consumers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var binDir string

// workers builds the Go worker with `go build` and the C worker with the
// Makefile a user runs (`make -C examples/c-worker`).
func workers(t testing.TB) (goWorker, cWorker string) {
	t.Helper()
	binaries.once.Do(func() {
		root, err := testshared.ModuleRoot()
		if err != nil {
			binaries.err = err
			return
		}
		binaries.goWorker = filepath.Join(binDir, "go-worker")
		build := exec.Command("go", "build", "-o", binaries.goWorker, "./examples/go-worker")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("go build ./examples/go-worker: %v\n%s", err, out)
			return
		}
		mk := exec.Command("make", "-C", filepath.Join(root, "examples", "c-worker"))
		if out, err := mk.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("make -C examples/c-worker (needs Debian's libnats-dev): %v\n%s", err, out)
			return
		}
		binaries.cWork = filepath.Join(root, "examples", "c-worker", "c-worker")
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.goWorker, binaries.cWork
}

// env is one simulated Agent with the bridge's datafeed opened on it, one
// embedded JetStream with the stream, and the bridge (started on demand).
type env struct {
	t      *testing.T
	srv    *natstest.Server
	js     jetstream.JetStream
	stream jetstream.Stream
	agent  *symphonytest.Agent
	feed   *symphony.DatafeedV2
	gen    *symphonytest.Generator
	logs   *testlog.Buffer
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k, pemKey, err := symphonytest.BotKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: natstest.RunServer(t), logs: &testlog.Buffer{}, dir: t.TempDir(),
		gen: symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 9, NoIDRate: 0.1, SharedIDRate: 0.2, UnknownTypeRate: 0.05})}
	e.js = natstest.JetStream(t, e.srv)
	e.stream, err = bridge.EnsureStream(t.Context(), e.js, bridge.StreamConfig{Name: streamName}, []string{"symphony.>"}, nil)
	if err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	e.agent = symphonytest.New(symphonytest.Config{Username: botUser, PublicKey: &k.PublicKey,
		LongPoll: 200 * time.Millisecond, VisibilityTimeout: time.Second})
	url := e.agent.Start()
	t.Cleanup(e.agent.Close)
	c, err := symphony.NewClient(symphony.ClientConfig{PodURL: url, AgentURL: url, KeyManagerURL: url,
		Username: botUser, PrivateKeyPEM: pemKey})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	// Opened now, so that events emitted before the bridge starts are
	// queued for it.
	e.feed = symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	if _, err := e.feed.Open(t.Context()); err != nil {
		t.Fatalf("open datafeed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge log (tail):\n%s", lastLines(e.logs.String(), 30))
		}
	})
	return e
}

// createConsumer creates the shared durable as the workers would, with the
// short AckWait the redelivery checks need.
func (e *env) createConsumer() {
	e.t.Helper()
	_, err := e.js.CreateConsumer(e.t.Context(), streamName, jetstream.ConsumerConfig{
		Durable: durable, FilterSubject: "symphony.>", AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: ackWait, MaxAckPending: 1000,
	})
	if err != nil {
		e.t.Fatalf("create consumer: %v", err)
	}
}

func (e *env) consumerInfo() *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.js.Consumer(e.t.Context(), streamName, durable)
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(e.t.Context())
	if err != nil {
		e.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// waitPulls waits until n pull requests wait on the shared consumer: every
// worker is ready before the first event is stored.
func (e *env) waitPulls(n int) {
	e.t.Helper()
	natstest.WaitFor(e.t, waitLong, func() error {
		if w := e.consumerInfo().NumWaiting; w < n {
			return fmt.Errorf("%d pull requests waiting, want %d", w, n)
		}
		return nil
	})
}

// startBridge runs the real bridge on the feed with its own NATS connection,
// as `symbridge run` does, until the test ends.
func (e *env) startBridge() {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bridgetest.Start(e.t, context.Background(), bridgetest.Config(e.t, pod, bridge.SourceDatafeed, logger), e.feed, e.srv.URL())
}

// emit gives the Agent n more events of the generator's mix.
func (e *env) emit(n int) { e.agent.Emit(e.gen.Mix(n)...) }

// waitStored waits until the stream holds n messages.
func (e *env) waitStored(n uint64) {
	e.t.Helper()
	natstest.WaitFor(e.t, waitLong, func() error {
		info, err := e.stream.Info(e.t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != n {
			return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, n)
		}
		return nil
	})
}

// waitAllAcked waits until the shared consumer has delivered and had acked
// every message of the stream (redeliveries after AckWait included).
func (e *env) waitAllAcked(n uint64) {
	e.t.Helper()
	natstest.WaitFor(e.t, waitLong, func() error {
		info := e.consumerInfo()
		if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream != n {
			return fmt.Errorf("consumer: %d pending, %d awaiting ack, ack floor %d of %d",
				info.NumPending, info.NumAckPending, info.AckFloor.Stream, n)
		}
		return nil
	})
}

// proc is one worker process.
type proc struct {
	name, record, logPath string
	cmd                   *exec.Cmd
	done                  chan struct{}
	err                   error // Wait's result, set before done closes
}

// startWorker starts bin on the shared consumer with a record file of its
// own; extra flags are appended.
func (e *env) startWorker(bin, name string, extra ...string) *proc {
	e.t.Helper()
	p := &proc{name: name, record: filepath.Join(e.dir, name+".record"), logPath: filepath.Join(e.dir, name+".log")}
	args := append([]string{"--server", e.srv.URL(), "--stream", streamName, "--durable", durable,
		"--record", p.record}, extra...)
	logf, err := os.Create(p.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		e.t.Fatalf("start %s: %v", name, err)
	}
	p.done = make(chan struct{})
	go func() { // owned by p: ends when the process is reaped
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if e.t.Failed() {
			e.t.Logf("%s output (tail):\n%s", name, lastLines(readFile(p.logPath), 8))
		}
	})
	return p
}

// term sends SIGTERM and returns how long the process took to exit, and
// its exit error (nil for exit 0). It kills it after limit.
func (p *proc) term(t testing.TB, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, limit)
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// entry is one line of a --record file.
type entry struct {
	seq   uint64
	msgID string
}

// records reads a worker's --record file.
func records(t testing.TB, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		seqText, id, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil || id == "" {
			t.Fatalf("%s: malformed record line %q", path, sc.Text())
		}
		out = append(out, entry{seq, id})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitRecorded waits until the worker's record holds at least n lines.
func waitRecorded(t testing.TB, p *proc, n int) {
	t.Helper()
	natstest.WaitFor(t, waitLong, func() error {
		if got := len(records(t, p.record)); got < n {
			return fmt.Errorf("%s recorded %d, want %d", p.name, got, n)
		}
		return nil
	})
}

// streamIDs maps every stored sequence to its Nats-Msg-Id, read back from
// the stream, so that records are checked against what JetStream holds.
func (e *env) streamIDs(n uint64) map[uint64]string {
	e.t.Helper()
	ids := make(map[uint64]string, n)
	for seq := uint64(1); seq <= n; seq++ {
		m, err := e.stream.GetMsg(e.t.Context(), seq)
		if err != nil {
			e.t.Fatalf("get message %d: %v", seq, err)
		}
		ids[seq] = m.Header.Get(nats.MsgIdHdr)
	}
	return ids
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// agentState is the simulator side of the symbridge measurement.
type agentState struct {
	agent *symphonytest.Agent

	acked atomic.Int64 // events acknowledged by ackId-carrying reads
	done  chan struct{}
	end   atomic.Int64 // unix ns when acked reached the target
	want  int64

	mu      sync.Mutex
	handout map[string]time.Time // ackId -> when the batch's answer was written
	lat     []time.Duration
	full    int // non-empty batches handed out
}

// reset prepares for another symbridge run (the feed stays: the next
// bridge reuses it, as a restarted one would).
func (st *agentState) reset(want int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.want = want
	st.acked.Store(0)
	st.end.Store(0)
	st.done = make(chan struct{})
	st.handout = map[string]time.Time{}
	st.lat = nil
	st.full = 0
}

// startAgent serves the simulator on a loopback port (in this process, as
// a real Agent would be another process than the bridge).
func (w *workload) startAgent() error {
	a := symphonytest.New(symphonytest.Config{Username: benchUser, MaxBatch: w.o.batch})
	st := &agentState{agent: a, handout: map[string]time.Time{}, done: make(chan struct{})}
	a.Use(st.middleware)
	a.OnAck(func(_ string, events [][]byte) {
		if st.want > 0 && st.acked.Add(int64(len(events))) >= st.want && st.end.CompareAndSwap(0, time.Now().UnixNano()) {
			close(st.done)
		}
	})
	u, err := url.Parse(a.Start())
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return err
	}
	w.agent = st
	w.agentHost = host
	w.agentPort, err = strconv.Atoi(port)
	return err
}

// middleware times each batch from the moment its answer is written to the
// moment a read carrying its ackId arrives: the bridge's read-to-ack time
// plus one HTTP round trip on loopback.
func (st *agentState) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !isRead(r.URL.Path) {
			next.ServeHTTP(rw, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			AckID string `json:"ackId"`
		}
		if json.Unmarshal(body, &req) == nil && req.AckID != "" {
			st.mu.Lock()
			if t, ok := st.handout[req.AckID]; ok {
				st.lat = append(st.lat, now.Sub(t))
				delete(st.handout, req.AckID)
			}
			st.mu.Unlock()
		}
		tw := &tailWriter{ResponseWriter: rw}
		next.ServeHTTP(tw, r)
		if tw.empty || tw.status != http.StatusOK {
			return
		}
		if id := ackIDFromTail(tw.tail); id != "" {
			st.mu.Lock()
			st.handout[id] = time.Now()
			st.full++
			st.mu.Unlock()
		}
	})
}

func isRead(path string) bool {
	return len(path) > 5 && path[len(path)-5:] == "/read" && bytes.HasPrefix([]byte(path), []byte("/agent/v5/datafeeds/"))
}

// tailWriter remembers the status, whether the event list is empty, and the
// last bytes written (where the ackId is).
type tailWriter struct {
	http.ResponseWriter
	status  int
	started bool
	empty   bool
	tail    []byte
}

func (t *tailWriter) WriteHeader(code int) {
	t.status = code
	t.ResponseWriter.WriteHeader(code)
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	if !t.started {
		t.started = true
		t.empty = bytes.HasPrefix(p, []byte(`{"events":[]`))
	}
	t.tail = append(t.tail, p[max(0, len(p)-256):]...)
	if len(t.tail) > 512 {
		t.tail = t.tail[len(t.tail)-256:]
	}
	return t.ResponseWriter.Write(p)
}

func ackIDFromTail(tail []byte) string {
	i := bytes.LastIndex(tail, []byte(`"ackId":`))
	if i < 0 {
		return ""
	}
	var id string
	if json.Unmarshal(bytes.TrimSuffix(bytes.TrimSpace(tail[i+len(`"ackId":`):]), []byte("}")), &id) != nil {
		return ""
	}
	return id
}

// runBridge runs `symbridge run` against the simulator and measures it.
func (w *workload) runBridge(ctx context.Context, bin string) (result, error) {
	stream := w.streamName("symbridge")
	cfgPath, err := w.configFile(w.agentHost, w.agentPort, stream)
	if err != nil {
		return result{}, err
	}
	st := w.agent
	st.reset(int64(len(w.events)))

	logPath := filepath.Join(w.tmp, "symbridge.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if w.o.bridgeEnv != "" {
		cmd.Env = append(cmd.Env, strings.Split(w.o.bridgeEnv, ",")...)
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopBridge := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return waitErr
	}
	pid := cmd.Process.Pid
	fail := func(err error) (result, error) {
		_ = stopBridge()
		tail, _ := os.ReadFile(logPath)
		return result{}, fmt.Errorf("%w\nsymbridge log:\n%s", err, lastLines(tail, 20))
	}

	// Wait until the bridge created its feed and a read is waiting on it.
	feedID, err := waitFeed(ctx, st.agent, exited)
	if err != nil {
		return fail(err)
	}

	var perf *exec.Cmd
	if w.o.perf {
		perf = exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", filepath.Join(w.tmp, "perf.data"))
		perf.Stdout, perf.Stderr = io.Discard, io.Discard
		if err := perf.Start(); err != nil {
			return fail(fmt.Errorf("perf: %w", err))
		}
	}

	// Queue the events: a first large chunk, then top-ups that keep the
	// simulator's queue short (its queue is a slice it shifts on every read).
	const prefill, lowWater, chunk = 200_000, 10_000, 5_000
	first := min(len(w.events), prefill)
	st.agent.Emit(w.events[:first]...)
	cpu0, err := procCPU(pid)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	var feeding sync.WaitGroup
	var rss []int64
	feeding.Add(1)
	go func() {
		defer feeding.Done()
		next := first
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		lastSample := time.Now()
		for {
			select {
			case <-feedCtx.Done():
				return
			case <-tick.C:
			}
			if time.Since(lastSample) >= time.Second {
				lastSample = time.Now()
				rss = append(rss, procStatus(pid, "VmRSS"))
			}
			if next < len(w.events) && queued(st.agent, feedID) < lowWater {
				end := min(next+chunk, len(w.events))
				st.agent.Emit(w.events[next:end]...)
				next = end
			}
		}
	}()

	select {
	case <-st.done:
	case <-exited:
		stopFeed()
		feeding.Wait()
		tail, _ := os.ReadFile(logPath)
		return result{}, fmt.Errorf("symbridge exited early: %v\n%s", waitErr, lastLines(tail, 20))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	elapsed := time.Duration(st.end.Load() - start.UnixNano())
	cpu1, err := procCPU(pid)
	if err != nil {
		return fail(err)
	}
	hwm := procStatus(pid, "VmHWM")
	stopFeed()
	feeding.Wait()
	if perf != nil {
		_ = perf.Process.Signal(os.Interrupt)
		_ = perf.Wait()
	}
	if err := stopBridge(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return result{}, err
		}
		tail, _ := os.ReadFile(logPath)
		return result{}, fmt.Errorf("symbridge: %w\n%s", err, lastLines(tail, 20))
	}
	bp50, bp99 := bridgeLatency(logPath)
	stats := st.agent.Stats()
	st.mu.Lock()
	lat := st.lat
	st.mu.Unlock()
	note := fmt.Sprintf("%d reads with events, %d redeliveries; bridge's own view (read returned to batch stored): p50 %s p99 %s",
		st.full, stats.Redeliveries, bp50, bp99)
	if len(rss) > 2 {
		note += fmt.Sprintf("; RSS at 10%%/50%%/end of the run: %.1f/%.1f/%.1f MiB", mib(rss[len(rss)/10]), mib(rss[len(rss)/2]), mib(rss[len(rss)-1]))
	}
	return result{
		Events: len(w.events), Elapsed: elapsed, CPU: cpu1 - cpu0, PeakRSS: hwm,
		P50: percentile(lat, 0.50), P99: percentile(lat, 0.99), Batches: len(lat), Note: note,
	}, nil
}

// bridgeLatency reads the batch latency quantiles symbridge logs when it
// stops (Bridge.BatchLatency).
func bridgeLatency(logPath string) (p50, p99 string) {
	b, _ := os.ReadFile(logPath)
	field := func(name string) string {
		i := bytes.LastIndex(b, []byte(name+"="))
		if i < 0 {
			return "?"
		}
		v := b[i+len(name)+1:]
		if j := bytes.IndexAny(v, " \n"); j >= 0 {
			v = v[:j]
		}
		return string(v)
	}
	return field("batch_p50"), field("batch_p99")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func queued(a *symphonytest.Agent, feedID string) int {
	for _, f := range a.Feeds() {
		if f.ID == feedID {
			return f.Queued
		}
	}
	return 0
}

func waitFeed(ctx context.Context, a *symphonytest.Agent, exited <-chan struct{}) (string, error) {
	deadline := time.After(30 * time.Second)
	for {
		for _, f := range a.Feeds() {
			if f.Kind == symphonytest.KindDatafeed && f.Readers > 0 {
				return f.ID, nil
			}
		}
		select {
		case <-exited:
			return "", errors.New("symbridge exited before reading")
		case <-deadline:
			return "", errors.New("symbridge did not start reading within 30 s")
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

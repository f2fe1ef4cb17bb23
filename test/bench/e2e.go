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

// The simulator's queue is a slice it shifts on every read, so it is kept
// short: a first chunk of at most prefill events, then top-ups of chunk
// events whenever fewer than lowWater are queued.
const prefill, lowWater, chunk = 200_000, 10_000, 5_000

// runBridge runs `symbridge run` against the simulator into stream and
// measures it: all events as fast as it goes, or p.events of them offered
// at p.rate.
func (w *workload) runBridge(ctx context.Context, bin, stream string, p pace) (result, error) {
	events := w.events
	if p.events > 0 {
		events = events[:p.events]
	}
	st := w.agent
	st.reset(int64(len(events)))
	cfgPath, err := w.configFile(w.agentHost, w.agentPort, stream)
	if err != nil {
		return result{}, err
	}
	b, err := w.startBridge(bin, cfgPath, stream)
	if err != nil {
		return result{}, err
	}
	// Wait until the bridge created its feed and a read is waiting on it.
	feedID, err := waitFeed(ctx, st.agent, b.exited)
	if err != nil {
		return result{}, b.fail(err)
	}

	var perf *exec.Cmd
	if w.o.perf && p.rate == 0 {
		perf = exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(b.pid), "-o", filepath.Join(w.tmp, "perf.data"))
		perf.Stdout, perf.Stderr = io.Discard, io.Discard
		if err := perf.Start(); err != nil {
			return result{}, b.fail(fmt.Errorf("perf: %w", err))
		}
	}

	// At full speed the first chunk is queued before the window opens: the
	// bridge is measured from the moment a batch is available.
	rest := events
	if p.rate == 0 {
		first := min(len(events), prefill)
		st.agent.Emit(events[:first]...)
		rest = events[first:]
	}
	cpu0, err := procCPU(b.pid)
	if err != nil {
		return result{}, b.fail(err)
	}
	nats0, driver0 := cpuOf(w.natsPID), cpuOf(os.Getpid())
	start := time.Now()
	feedCtx, stopFeed := context.WithCancel(ctx)
	var feeding sync.WaitGroup
	defer func() { stopFeed(); feeding.Wait() }()
	var rss []int64
	if p.rate > 0 {
		feeding.Go(func() { feedPaced(feedCtx, st.agent, events, w.o.batch, p.interval(w.o.batch)) })
	} else {
		next := func() [][]byte {
			c := rest[:min(chunk, len(rest))]
			rest = rest[len(c):]
			return c
		}
		sample := func() { rss = append(rss, procStatus(b.pid, "VmRSS")) }
		feeding.Go(func() { topUp(feedCtx, st.agent, feedID, next, sample) })
	}

	select {
	case <-st.done:
	case <-b.exited:
		return result{}, fmt.Errorf("symbridge exited early: %v\n%s", b.waitErr, b.tail())
	case <-ctx.Done():
		return result{}, b.fail(ctx.Err())
	}
	elapsed := time.Duration(st.end.Load() - start.UnixNano())
	cpu1, err := procCPU(b.pid)
	if err != nil {
		return result{}, b.fail(err)
	}
	nats1, driver1 := cpuOf(w.natsPID), cpuOf(os.Getpid())
	hwm := procStatus(b.pid, "VmHWM")
	stopFeed()
	feeding.Wait()
	if perf != nil {
		_ = perf.Process.Signal(os.Interrupt)
		_ = perf.Wait()
	}
	if err := b.stop(); err != nil {
		return result{}, err
	}
	bp50, bp99, logged := bridgeLatency(b.logPath)
	stats := st.agent.Stats()
	st.mu.Lock()
	lat := st.lat
	st.mu.Unlock()
	note := fmt.Sprintf("%d reads with events, %d redeliveries", st.full, stats.Redeliveries)
	switch {
	case !logged:
		note += "; the bridge logged no batch latency"
	case p.rate == 0: // the paced table has columns for it
		note += fmt.Sprintf("; bridge's own view (read returned to batch stored): p50 %s p99 %s", round(bp50), round(bp99))
	}
	if len(rss) > 2 {
		note += fmt.Sprintf("; RSS at 10%%/50%%/end of the run: %.1f/%.1f/%.1f MiB", mib(rss[len(rss)/10]), mib(rss[len(rss)/2]), mib(rss[len(rss)-1]))
	}
	return result{
		Events: len(events), Elapsed: elapsed, CPU: cpu1 - cpu0, NATSCPU: nats1 - nats0, DriverCPU: driver1 - driver0,
		PeakRSS: hwm, P50: percentile(lat, 0.50), P99: percentile(lat, 0.99), BridgeP50: bp50, BridgeP99: bp99,
		Batches: len(lat), Note: note,
	}, nil
}

// topUp keeps at least lowWater events queued on the feed, emitting the
// chunks next returns (empty: no more), and calls sample every second,
// until ctx ends.
func topUp(ctx context.Context, a *symphonytest.Agent, feedID string, next func() [][]byte, sample func()) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastSample := time.Now()
	more := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			sample()
		}
		if more && queued(a, feedID) < lowWater {
			c := next()
			more = len(c) > 0
			a.Emit(c...)
		}
	}
}

// feedPaced emits one batch every interval until all events are out: an
// offered rate that does not depend on the bridge, as on a real Agent. A
// waiting read gets the whole batch at once (Emit queues it under one lock
// and wakes the read). The ticker drops the ticks of a stalled Emit
// instead of bursting them.
func feedPaced(ctx context.Context, a *symphonytest.Agent, events [][]byte, batch int, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < len(events); i += batch {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		a.Emit(events[i:min(i+batch, len(events))]...)
	}
}

// bridgeProc is a running `symbridge run` and its log.
type bridgeProc struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startBridge starts `symbridge run` with the config file; its output goes
// to a log of its own in the temporary directory.
func (w *workload) startBridge(bin, cfgPath, stream string) (*bridgeProc, error) {
	logPath := filepath.Join(w.tmp, "symbridge-"+stream+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if w.o.bridgeEnv != "" {
		cmd.Env = append(cmd.Env, strings.Split(w.o.bridgeEnv, ",")...)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	b := &bridgeProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, exited: make(chan struct{})}
	go func() {
		b.waitErr = cmd.Wait()
		logFile.Close()
		close(b.exited)
	}()
	return b, nil
}

// stop sends SIGTERM (and kills the bridge if it has not exited 15 s
// later); an unclean exit is an error carrying the log's tail.
func (b *bridgeProc) stop() error {
	stopProcess(b.cmd.Process, syscall.SIGTERM, b.exited, 15*time.Second)
	if b.waitErr != nil {
		return fmt.Errorf("symbridge: %w\n%s", b.waitErr, b.tail())
	}
	return nil
}

// fail stops the bridge and returns err with the log's tail.
func (b *bridgeProc) fail(err error) error {
	_ = b.stop()
	return fmt.Errorf("%w\nsymbridge log:\n%s", err, b.tail())
}

func (b *bridgeProc) tail() string {
	t, _ := os.ReadFile(b.logPath)
	return lastLines(t, 20)
}

// bridgeLatency reads the batch latency quantiles symbridge logs when it
// stops (from its symbridge_batch_latency_seconds histogram); logged is
// false when they are missing.
func bridgeLatency(logPath string) (p50, p99 time.Duration, logged bool) {
	b, _ := os.ReadFile(logPath)
	field := func(name string) (time.Duration, bool) {
		i := bytes.LastIndex(b, []byte(name+"="))
		if i < 0 {
			return 0, false
		}
		v := b[i+len(name)+1:]
		if j := bytes.IndexAny(v, " \n"); j >= 0 {
			v = v[:j]
		}
		d, err := time.ParseDuration(string(v))
		return d, err == nil
	}
	p50, ok50 := field("batch_p50")
	p99, ok99 := field("batch_p99")
	return p50, p99, ok50 && ok99
}

// cpuNote gives the CPU time the other processes spent in r's window, per
// event: nats-server (known when this program started it) and the driver,
// which hosts the simulator (in raw and naive runs it only waits).
func (w *workload) cpuNote(r result) string {
	nats := "nats-server CPU unknown (-nats-url)"
	if w.natsPID != 0 {
		nats = fmt.Sprintf("nats-server %.1f µs/event", perEvent(r.NATSCPU, r.Events))
	}
	driver := "driver (idle)"
	if strings.HasPrefix(r.Name, "symbridge") {
		driver = "simulator (driver)"
	}
	return fmt.Sprintf("%s, %s %.1f µs/event", nats, driver, perEvent(r.DriverCPU, r.Events))
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

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

const (
	soakBegin = "<!-- soak:begin -->"
	soakEnd   = "<!-- soak:end -->"
	// soakMaxBytes bounds the soak's stream on disk (old messages are
	// discarded); sequence numbers go on counting.
	soakMaxBytes = 2 << 30
)

// soakResult is one soak run.
type soakResult struct {
	events               int
	meanSize             int
	elapsed              time.Duration
	cpu, nats, driver    time.Duration
	others               time.Duration // the machine's busy time not spent by the three
	peakRSS, natsRSS     int64         // natsRSS: VmRSS of nats-server at the end, 0 if unknown
	samples              []rssSample
	lastSeq, msgs        uint64
	bytes                uint64
	acked, redelivered   int64
	bridgeP50, bridgeP99 time.Duration
	logged               bool
	loadStart, loadEnd   string
}

// rssSample is the bridge's VmRSS once the simulator had acked events.
type rssSample struct {
	at    time.Duration
	acked int64
	rss   int64
}

// runSoak measures symbridge alone over o.soak events generated during the
// run (nothing holds them all: the simulator's queue is topped up from a
// generator a few chunks ahead), sampling the bridge's RSS every second,
// into a fresh stream bounded to soakMaxBytes. The check: the stream's
// last sequence is N (JetStream gives a duplicate no sequence, and the
// run is shorter than the duplicate window) and the simulator had N
// events acknowledged.
func runSoak(ctx context.Context, w *workload, bin string, args []string, srv *natsServer) error {
	n := w.o.soak
	stream := w.streamName("soak")
	cfgPath, err := w.configFile(w.agentHost, w.agentPort, stream)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := w.resetStream(ctx, stream); err != nil {
		return err
	}
	if err := w.createSoakStream(ctx, cfg, stream); err != nil {
		return err
	}
	r := soakResult{events: n, loadStart: loadAvg()}
	logf("soak: %d events into %s (load average %s)", n, stream, r.loadStart)

	st := w.agent
	st.reset(int64(n))
	b, err := w.startBridge(bin, cfgPath, stream)
	if err != nil {
		return err
	}
	feedID, err := waitFeed(ctx, st.agent, b.exited)
	if err != nil {
		return b.fail(err)
	}
	src := newSoakSource(w.o.size, w.o.seed, n)
	feedCtx, stopFeed := context.WithCancel(ctx)
	var feeding sync.WaitGroup
	defer func() { stopFeed(); feeding.Wait() }()
	feeding.Go(func() { src.run(feedCtx) })
	// Two chunks are queued before the window opens, as the full-speed run
	// queues its first chunk.
	st.agent.Emit(src.next()...)
	st.agent.Emit(src.next()...)

	cpu0, err := procCPU(b.pid)
	if err != nil {
		return b.fail(err)
	}
	nats0, driver0, busy0 := cpuOf(w.natsPID), cpuOf(os.Getpid()), machineBusy()
	start := time.Now()
	sample := func() {
		s := rssSample{at: time.Since(start), acked: st.acked.Load(), rss: procStatus(b.pid, "VmRSS")}
		r.samples = append(r.samples, s)
		if len(r.samples)%10 == 0 {
			logf("soak: %s: %d of %d events acked (%.0f/s), bridge RSS %.1f MiB", s.at.Round(time.Second), s.acked, n,
				float64(s.acked)/s.at.Seconds(), mib(s.rss))
		}
	}
	feeding.Go(func() { topUp(feedCtx, st.agent, feedID, src.next, sample) })

	select {
	case <-st.done:
	case <-b.exited:
		return fmt.Errorf("symbridge exited early: %v\n%s", b.waitErr, b.tail())
	case <-ctx.Done():
		return b.fail(ctx.Err())
	}
	r.elapsed = time.Duration(st.end.Load() - start.UnixNano())
	cpu1, err := procCPU(b.pid)
	if err != nil {
		return b.fail(err)
	}
	r.cpu, r.nats, r.driver = cpu1-cpu0, cpuOf(w.natsPID)-nats0, cpuOf(os.Getpid())-driver0
	r.others = machineBusy() - busy0 - r.cpu - r.nats - r.driver
	r.peakRSS = procStatus(b.pid, "VmHWM")
	if w.natsPID != 0 {
		r.natsRSS = procStatus(w.natsPID, "VmRSS")
	}
	stopFeed()
	feeding.Wait()
	sample() // the end
	if err := b.stop(); err != nil {
		return err
	}
	if src.err != nil {
		return src.err
	}
	r.bridgeP50, r.bridgeP99, r.logged = bridgeLatency(b.logPath)
	r.meanSize = int(src.bytes / int64(n))
	r.loadEnd = loadAvg()

	// The ack of the last batch is applied just after the OnAck hook that
	// ended the window.
	stats := st.agent.Stats()
	for deadline := time.Now().Add(5 * time.Second); stats.EventsAcked < int64(n) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		stats = st.agent.Stats()
	}
	r.acked, r.redelivered = stats.EventsAcked, stats.Redeliveries
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	r.lastSeq, r.msgs, r.bytes = info.State.LastSeq, info.State.Msgs, info.State.Bytes
	if err := w.deleteStream(ctx, stream); err != nil {
		return err
	}

	body := r.markdown(args, srv)
	fmt.Println(body)
	if r.lastSeq != uint64(n) || r.acked != int64(n) {
		return fmt.Errorf("soak: stream's last sequence %d and %d events acknowledged, want %d of each", r.lastSeq, r.acked, n)
	}
	if w.o.out != "-" {
		if err := writeMarked(filepath.Join(mustWD(), w.o.out), soakBegin, soakEnd, body, insertSoakSection); err != nil {
			return err
		}
		logf("wrote %s", w.o.out)
	}
	return nil
}

// createSoakStream creates the stream `symbridge run` would, bounded to
// soakMaxBytes; the bridge then uses it as it is (MaxBytes is not among
// the settings it compares).
func (w *workload) createSoakStream(ctx context.Context, cfg *config.Config, name string) error {
	sc := streamConfig(cfg, name)
	if err := sc.Validate(); err != nil {
		return err
	}
	_, err := w.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: sc.Name, Subjects: sc.Subjects, Storage: sc.Storage, Replicas: sc.Replicas,
		Duplicates: sc.Duplicates, MaxAge: sc.MaxAge, MaxMsgSize: sc.MaxMsgSize,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxBytes: soakMaxBytes,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}

// soakSource generates the soak's events a chunk at a time, a few chunks
// ahead of the feeder, from one benchdata.Source: no event repeats (the
// generator's serial is in every payload), and no two share a Msg-Id. (Under
// the old rule sb1-i, which left the timestamp out, ~900 pairs of the
// generator's six-character ids did over 10 M events; a repeat now is a
// Msg-Id collision, and the check, last sequence = N, fails on it.)
type soakSource struct {
	src  *benchdata.Source
	left int
	ch   chan [][]byte

	// Final once ch is closed.
	bytes int64
	err   error
}

func newSoakSource(size int, seed int64, n int) *soakSource {
	return &soakSource{src: benchdata.NewSource(size, seed), left: n, ch: make(chan [][]byte, 4)}
}

// run generates all chunks into ch, then closes it; it stops early when
// ctx ends or an event does not decode.
func (s *soakSource) run(ctx context.Context) {
	defer close(s.ch)
	for s.left > 0 {
		c := s.src.Next(min(chunk, s.left))
		for _, raw := range c {
			// An undecodable event would become a dead letter, which the
			// last-sequence check cannot tell from a stored event.
			if ev := symphony.ParseEvent(raw); ev.Err != nil {
				s.err = fmt.Errorf("soak: a generated event does not decode: %w", ev.Err)
				return
			}
			s.bytes += int64(len(raw))
		}
		select {
		case s.ch <- c:
		case <-ctx.Done():
			return
		}
		s.left -= len(c)
	}
}

// next is the next chunk, waiting for it; nil when all were handed out.
func (s *soakSource) next() [][]byte { return <-s.ch }

// markdown renders the soak's figures and the command.
func (r soakResult) markdown(args []string, srv *natsServer) string {
	var b strings.Builder
	server := "external nats-server"
	if srv != nil {
		server = srv.version
	}
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s, %s, %s; load average %s at the start, %s at the end); %d events of %d bytes on average, generated during the run.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH,
		server, r.loadStart, r.loadEnd, r.events, r.meanSize)
	fmt.Fprintf(&b, "```\ngo run ./test/bench %s\n```\n\n", strings.Join(args, " "))
	nats := "unknown (-nats-url)"
	if srv != nil {
		nats = fmt.Sprintf("%.1f µs", perEvent(r.nats, r.events))
	}
	b.WriteString("| events/s | bridge CPU per event | nats-server CPU per event | simulator and generator (driver) CPU per event | bridge peak RSS (VmHWM) |\n")
	b.WriteString("|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %.0f | %.2f µs | %s | %.1f µs | %.1f MiB |\n\n", float64(r.events)/r.elapsed.Seconds(),
		perEvent(r.cpu, r.events), nats, perEvent(r.driver, r.events), mib(r.peakRSS))
	b.WriteString("| progress | events acked | time | bridge RSS (VmRSS) |\n")
	b.WriteString("|---|---:|---:|---:|\n")
	for _, q := range []float64{0.01, 0.10, 0.25, 0.50, 0.75, 0.90} {
		if s, ok := r.reached(q); ok {
			fmt.Fprintf(&b, "| %.0f %% | %d | %s | %.1f MiB |\n", 100*q, s.acked, s.at.Round(time.Second), mib(s.rss))
		}
	}
	if len(r.samples) > 0 {
		s := r.samples[len(r.samples)-1]
		fmt.Fprintf(&b, "| end | %d | %s | %.1f MiB |\n", s.acked, s.at.Round(time.Second), mib(s.rss))
	}
	fmt.Fprintf(&b, "\n- stream's last sequence **%d** (fresh stream: JetStream gives a duplicate no sequence), the simulator acknowledged **%d** events, %d redeliveries; the stream keeps the last %d messages (%.2f GiB, MaxBytes 2 GiB, old ones discarded)\n",
		r.lastSeq, r.acked, r.redelivered, r.msgs, float64(r.bytes)/(1<<30))
	if r.logged {
		fmt.Fprintf(&b, "- the bridge's own batch latency (read returned → batch stored): p50 %s, p99 %s\n", round(r.bridgeP50), round(r.bridgeP99))
	}
	// The counters are read a moment apart and in ticks of 10 ms, so an idle
	// rest can come out slightly negative.
	others := max(r.others, 0)
	fmt.Fprintf(&b, "- CPU time of the machine not spent by the bridge, nats-server or the driver during the run (other programs, and kernel work charged to no process): %.1f s, %.1f %% of the %d CPUs\n",
		others.Seconds(), 100*others.Seconds()/r.elapsed.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU())
	if r.natsRSS > 0 {
		fmt.Fprintf(&b, "- nats-server RSS at the end: %.0f MiB (it remembers every Msg-Id of its 35-minute duplicate window)\n", mib(r.natsRSS))
	}
	return b.String()
}

// machineBusy is the time all CPUs spent on anything but idling, from the
// first line of /proc/stat (user, nice, system, irq, softirq, steal).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clkTck
}

// reached is the first sample at which a fraction q of the events was
// acked.
func (r soakResult) reached(q float64) (rssSample, bool) {
	for _, s := range r.samples {
		if float64(s.acked) >= q*float64(r.events) {
			return s, true
		}
	}
	return rssSample{}, false
}

// insertSoakSection places a new "RSS over a long run" section, with the
// marked block, before the section that follows the bench table (or at
// the end).
func insertSoakSection(old []byte, block string) []byte {
	section := "## RSS over a long run\n\n" + block + "\n"
	s := string(old)
	from := strings.Index(s, endMark)
	if from < 0 {
		from = 0
	}
	if i := strings.Index(s[from:], "\n## "); i >= 0 {
		at := from + i + 1
		return []byte(s[:at] + section + s[at:])
	}
	if len(s) > 0 && !strings.HasSuffix(s, "\n\n") {
		s += "\n"
	}
	return []byte(s + section)
}

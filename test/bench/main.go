// Command bench measures symbridge against the raw JetStream ceiling, in one
// run on one machine, and writes the table to BENCHMARKS.md:
//
//  1. raw: nats.go PublishMsgAsync straight to JetStream, in batches of
//     -batch, waiting for every publish-ack of a batch before the next one
//     (the shape of one bridge reader; no HTTP, no decoding);
//  2. naive: one synchronous PublishMsg per event, as a BDK listener would;
//  3. symbridge: the `symbridge run` binary with its default configuration
//     (only nats.url, the simulator's endpoints and credentials and the
//     stream name set) reading a datafeed v2 from the Agent simulator, which
//     serves the pre-generated events over HTTP, acks included.
//
// Each measurement is a process of its own against one external
// nats-server and stores the same N messages, byte for byte (payload,
// subject, headers, Msg-Id), into a fresh stream, which is then checked
// message by message (exactly N, each one the expected message, no
// duplicate) and deleted. The CPU time nats-server and this process (the
// simulator's host) spend in each measurement's window is reported too.
//
// The full-speed runs saturate the machine, so their latency is mostly
// queueing. Then raw and symbridge run once more each at one fixed offered
// rate below saturation (-paced-rate, -paced-events), for the latency the
// bridge adds.
//
// -soak N runs only symbridge, over N events generated on the fly (nothing
// holds them all), and samples its RSS every second.
//
//	go run ./test/bench                      # 200 000 events, writes BENCHMARKS.md
//	go run ./test/bench -events 20000 -out - # CI size, well under a minute
//	go run ./test/bench -soak 10000000       # RSS over 10 M events, ~10-15 min
//
// Without -nats-url it builds nats-server from the module once and runs it
// on a free loopback port with a temporary store.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/symbridge/symbridge/internal/testshared"
)

type options struct {
	events, batch, size int
	natsURL, out        string
	seed                int64
	skipNaive           bool
	symbridge           string  // prebuilt binary; "" builds ./cmd/symbridge
	perf                bool    // record a perf profile of the bridge process
	keep                bool    // keep the temporary directory
	readers             int     // bridge.readers for symbridge; 0 = the default
	bridgeEnv           string  // extra KEY=VALUE for the symbridge process (exploring)
	repeat              int     // raw and symbridge measured this many times, alternately
	pacedRate           float64 // events/s of the paced runs; 0: pacedFractions of the median raw rate; < 0: none
	pacedFractions      string  // comma-separated fractions of the median raw rate, for pacedRate 0
	pacedEvents         int     // events per paced run (at most events)
	soak                int     // > 0: only the soak run, this many events
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Child roles (raw, naive) are this binary re-executed.
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := runChild(ctx, os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.IntVar(&o.events, "events", 200000, "events per measurement")
	fs.IntVar(&o.batch, "batch", 100, "events per read (the simulator's batch) and per raw async batch")
	fs.IntVar(&o.size, "size", 1024, "event size in bytes (shorter generated events are padded)")
	fs.StringVar(&o.natsURL, "nats-url", "", "external nats-server with JetStream (default: build and start one)")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", `file to write the results table into ("-": stdout only)`)
	fs.Int64Var(&o.seed, "seed", 1, "event generator seed")
	fs.IntVar(&o.repeat, "repeat", 1, "measure raw and symbridge this many times, alternately, and report the medians (the machine's load drifts)")
	fs.BoolVar(&o.skipNaive, "skip-naive", false, "skip the synchronous measurement (long runs)")
	fs.StringVar(&o.symbridge, "symbridge", "", "prebuilt symbridge binary (default: go build ./cmd/symbridge)")
	fs.BoolVar(&o.perf, "perf", false, "record `perf` CPU samples of the bridge process during the symbridge run")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, perf data)")
	fs.StringVar(&o.bridgeEnv, "bridge-env", "", "extra KEY=VALUE[,KEY=VALUE] in symbridge's environment, e.g. GOMAXPROCS=2,GOGC=100 (exploring, not for the table)")
	fs.IntVar(&o.readers, "readers", 0, "set bridge.readers (default: symbridge's default; for exploring, not for the table)")
	fs.Float64Var(&o.pacedRate, "paced-rate", 0, "offered rate in events/s of the paced raw and symbridge runs (latency below saturation); 0 = the -paced-fractions of the median raw rate of this run, negative = no paced runs")
	fs.StringVar(&o.pacedFractions, "paced-fractions", "0.25,0.5", "with -paced-rate 0: the offered rates of the paced runs, as fractions of the median raw rate (one raw and one symbridge run each)")
	fs.IntVar(&o.pacedEvents, "paced-events", 50000, "events per paced run (at most -events)")
	fs.IntVar(&o.soak, "soak", 0, "measure only symbridge over this many events generated on the fly, RSS sampled every second, and write the soak table (e.g. 10000000)")
	_ = fs.Parse(os.Args[1:])
	if err := run(ctx, o, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, args []string) error {
	if o.events < o.batch || o.batch < 1 || o.size < 64 {
		return errors.New("need -events >= -batch >= 1 and -size >= 64")
	}
	if o.pacedRate >= 0 && o.pacedEvents < 1 {
		return errors.New("need -paced-events >= 1 (or a negative -paced-rate)")
	}
	fractions, err := parseFractions(o.pacedFractions)
	if err != nil {
		return fmt.Errorf("-paced-fractions: %w", err)
	}
	if o.soak < 0 {
		return errors.New("need -soak >= 0")
	}
	root, err := testshared.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "symbridge-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	logf("building symbridge")
	bin := o.symbridge
	if bin == "" {
		bin = filepath.Join(tmp, "symbridge")
		if err := goBuild(ctx, root, bin, "./cmd/symbridge"); err != nil {
			return err
		}
	}
	natsURL := o.natsURL
	var srv *natsServer
	if natsURL == "" {
		logf("building and starting nats-server")
		if srv, err = startNATS(ctx, root, tmp); err != nil {
			return err
		}
		defer srv.stop()
		natsURL = srv.url
	}

	w, err := newWorkload(o, tmp, natsURL)
	if err != nil {
		return err
	}
	defer w.close()
	if srv != nil {
		w.natsPID = srv.cmd.Process.Pid
	}
	if o.soak > 0 {
		return runSoak(ctx, w, bin, args, srv)
	}
	logf("generating %d events of about %d bytes", o.events, o.size)
	if err := w.generate(); err != nil {
		return err
	}
	load := loadAvg()

	// measure runs one measurement into a fresh stream and verifies that
	// the first n events, and only they, are stored.
	measure := func(name string, n int, fn func(stream string) (result, error)) (result, error) {
		stream := w.streamName(name)
		if err := w.resetStream(ctx, stream); err != nil {
			return result{}, err
		}
		logf("measuring %s", name)
		r, err := fn(stream)
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", name, err)
		}
		if err := w.verify(ctx, stream, n); err != nil {
			return result{}, fmt.Errorf("%s: %w", name, err)
		}
		if err := w.deleteStream(ctx, stream); err != nil {
			return result{}, err
		}
		r.Name = name
		r.Note = joinNotes(w.cpuNote(r), r.Note)
		logf("%s: %.0f events/s, batch p50 %s p99 %s, CPU %.2f us/event, peak RSS %.1f MiB; %s",
			name, r.Rate(), r.P50, r.P99, r.CPUPerEvent(), mib(r.PeakRSS), w.cpuNote(r))
		return r, nil
	}
	byName := map[string][]result{}
	fullSpeed := func(name string, fn func(stream string) (result, error)) error {
		r, err := measure(name, o.events, fn)
		if err != nil {
			return err
		}
		byName[name] = append(byName[name], r)
		return nil
	}
	for k := range max(o.repeat, 1) {
		if err := fullSpeed("raw", func(s string) (result, error) { return w.runChildRole(ctx, "raw", s, pace{}) }); err != nil {
			return err
		}
		if !o.skipNaive && k == 0 {
			if err := fullSpeed("naive", func(s string) (result, error) { return w.runChildRole(ctx, "naive", s, pace{}) }); err != nil {
				return err
			}
		}
		if err := fullSpeed("symbridge", func(s string) (result, error) { return w.runBridge(ctx, bin, s, pace{}) }); err != nil {
			return err
		}
	}

	var paced []pacedPair
	if o.pacedRate >= 0 {
		rates := []float64{o.pacedRate}
		if o.pacedRate == 0 {
			rates = nil
			for _, f := range fractions {
				rates = append(rates, math.Round(median(byName["raw"]).Rate()*f))
			}
		}
		for _, rate := range rates {
			p := pace{events: min(o.pacedEvents, o.events), rate: rate}
			logf("paced runs: %d events offered at %.0f events/s (a batch of %d every %s)", p.events, p.rate, o.batch, p.interval(o.batch))
			pair := pacedPair{Pace: p}
			var err error
			if pair.Raw, err = measure("raw-paced", p.events, func(s string) (result, error) { return w.runChildRole(ctx, "raw", s, p) }); err != nil {
				return err
			}
			if pair.Symbridge, err = measure("symbridge-paced", p.events, func(s string) (result, error) { return w.runBridge(ctx, bin, s, p) }); err != nil {
				return err
			}
			paced = append(paced, pair)
		}
	}
	var results []result
	var pairs []float64 // symbridge / raw of each repetition
	for i := range byName["symbridge"] {
		pairs = append(pairs, byName["symbridge"][i].Rate()/byName["raw"][i].Rate())
	}
	for _, name := range []string{"raw", "naive", "symbridge"} {
		if rs := byName[name]; len(rs) > 0 {
			results = append(results, median(rs))
		}
	}

	rep := report{Opts: o, Args: args, Results: results, Pairs: pairs, Paced: paced,
		MeanSize: w.meanSize, Load: load, When: time.Now().UTC()}
	if srv != nil {
		rep.Server = srv.version
	}
	table := rep.markdown()
	fmt.Println(table)
	if o.out != "-" {
		if err := rep.writeFile(filepath.Join(mustWD(), o.out)); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// median returns the run with the median rate; with several runs its note
// gives the range.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.Rate(), b.Rate()) })
	m := s[len(s)/2]
	if len(s) > 1 {
		r := fmt.Sprintf("median of %d runs (%.0f to %.0f events/s)", len(s), s[0].Rate(), s[len(s)-1].Rate())
		if m.Note != "" {
			r += "; " + m.Note
		}
		m.Note = r
	}
	return m
}

// pace is a paced run: its first events offered at rate events/s, one
// batch at a time. The zero pace is a full-speed run of all events.
type pace struct {
	events int
	rate   float64
}

// pacedPair is the raw and the symbridge run at one offered rate.
type pacedPair struct {
	Pace           pace
	Raw, Symbridge result
}

// parseFractions parses "0.25,0.5": each in (0, 1].
func parseFractions(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		if v <= 0 || v > 1 {
			return nil, fmt.Errorf("%v is not in (0, 1]", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// interval is the time between two batches.
func (p pace) interval(batch int) time.Duration {
	return time.Duration(float64(batch) / p.rate * float64(time.Second))
}

func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute load averages: how busy the
// shared machine was (other programs take CPU from the measured ones).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func mustWD() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// result is one measurement. Children print it as JSON.
type result struct {
	Name      string        `json:"name"`
	Events    int           `json:"events"`
	Elapsed   time.Duration `json:"elapsed"`
	CPU       time.Duration `json:"cpu"`        // user+system of the measured process over the window
	NATSCPU   time.Duration `json:"nats_cpu"`   // nats-server's over the same window (0 if unknown)
	DriverCPU time.Duration `json:"driver_cpu"` // the driver's (the simulator's host) over the same window
	PeakRSS   int64         `json:"peak_rss"`   // VmHWM, bytes
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	// The bridge's own view of batch latency (symbridge only, 0 if not
	// logged): read returned → batch stored.
	BridgeP50 time.Duration `json:"bridge_p50,omitempty"`
	BridgeP99 time.Duration `json:"bridge_p99,omitempty"`
	Batches   int           `json:"batches"`
	Note      string        `json:"note,omitempty"`
}

func (r result) Rate() float64        { return float64(r.Events) / r.Elapsed.Seconds() }
func (r result) CPUPerEvent() float64 { return perEvent(r.CPU, r.Events) }

// perEvent is d / n in µs.
func perEvent(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(n)
}

func decodeResult(rd io.Reader) (result, error) {
	var r result
	b, err := io.ReadAll(rd)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b))), &r); err != nil {
		return r, fmt.Errorf("child result %q: %w", b, err)
	}
	return r, nil
}

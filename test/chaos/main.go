// Command chaos proves symbridge's delivery guarantee with numbers.
//
//	go run ./test/chaos -events 100000     # CI
//	go run ./test/chaos -events 1000000    # by hand
//
// The driver hosts the Agent simulator (real HTTP on loopback) and a
// JetStream server, builds the symbridge binary once and runs it as a
// separate child process against them. While it emits a long feed from the
// simulator's generator (events sharing an id, events without one, each
// carrying a serial in its payload), it repeatedly SIGKILLs the bridge
// (aimed at the moment a batch was handed out and not yet acknowledged) and
// restarts it, restarts NATS, and makes the Agent misbehave: 5xx, 429,
// connection resets, truncated bodies, a stall longer than the bridge's read
// timeout, feed expiry (400) and session expiry (401). At the end it reads the
// whole stream and compares it with what was emitted, by serial, never by the
// bridge's Msg-Id: a Msg-Id collision shows up as a loss, an unstable Msg-Id
// as a duplicate. The last line is
//
//	chaos: emitted E, stored S, lost L, duplicates D, dropped by Symphony X
//
// where X counts the events Symphony itself dropped with a feed the run
// expired on purpose (and that were not stored anyway); every other missing
// event is lost. The line before it says how many events the Agent handed
// out for those emitted, how many feeds were created and which tagged feeds
// remain.
//
// With -instances N (issue 12) N bridges run with the same configuration:
// their start-ups overlap for certain (the Agent holds their tagged lists
// until all N wait), the kills take turns, and with several instances the
// emitter may run past -events by up to half of it when the others have
// read everything while an action waits for a hand-out. More than one tagged
// feed at the end fails the run.
//
// It exits 1 when L or D is not 0, or when the run could not do what it set
// out to (too few kills while a batch was in flight, a bridge that exited by
// itself, corrupted or unexpected messages, a timeout, several feeds left by
// several instances), and 2 on bad usage.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/symbridge/symbridge/internal/backoff"
	"github.com/symbridge/symbridge/internal/testshared"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	events     int
	timeout    time.Duration
	seed       int64
	kills      int // kills that must land while a batch is in flight
	minKills   int // fewer than this fails the run
	cycles     int // rounds of every other fault
	stalls     int
	stall      time.Duration
	visibility time.Duration
	maxBatch   int
	backlog    int // most events waiting in the Agent at once
	faultRate  float64
	progress   time.Duration
	keep       bool
	bin        string
	dupWindow  time.Duration // 0: the bridge's default
	instances  int           // bridge processes sharing the configuration
	alone      bool          // datafeed.coordination.enabled: false (the control)
	longPoll   time.Duration // the Agent's long poll (0: Symphony's 30 s); no flag
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 100000, "events to emit")
	fs.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run, verification included (0: 10m plus 1s per 2000 events)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generator and of the chaos schedule")
	fs.IntVar(&o.kills, "kills", 0, "SIGKILLs to land while a batch is delivered but not yet acked (0: max(12, events/8000))")
	fs.IntVar(&o.minKills, "min-inflight-kills", 10, "fail when fewer kills landed while a batch was in flight")
	fs.IntVar(&o.cycles, "cycles", 0, "rounds of the other faults (5xx, 429, reset, truncated x2, NATS restart, 401, 400) (0: max(2, events/100000))")
	fs.IntVar(&o.stalls, "stalls", 0, "Agent stalls longer than the bridge's read timeout (0: 1, plus 1 per 500000 events)")
	fs.DurationVar(&o.stall, "stall", 45*time.Second, "length of a stall; the bridge's read timeout is 31 s plus a 2 s connect timeout")
	fs.DurationVar(&o.visibility, "visibility", 2*time.Second, "the Agent's visibility timeout (redelivery of un-acked batches)")
	fs.IntVar(&o.maxBatch, "batch", 100, "most events per read")
	fs.IntVar(&o.backlog, "backlog", 1000, "most events waiting in the Agent's feed at once")
	fs.Float64Var(&o.faultRate, "fault-rate", 0.01, "share of reads that also get a random fault (5xx, 429, reset, truncated)")
	fs.DurationVar(&o.progress, "progress", 10*time.Second, "interval of progress lines")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (bridge log, config, JetStream store)")
	fs.StringVar(&o.bin, "bin", "", "use this symbridge binary instead of building ./cmd/symbridge")
	fs.DurationVar(&o.dupWindow, "duplicate-window", 0, "nats.stream.duplicates for the bridge (0: its default, 35m); a window shorter than the\nvisibility timeout is a negative control: the run must then report duplicates")
	fs.BoolVar(&o.alone, "no-coordination", false, "run the bridges with datafeed.coordination.enabled: false, as symbridge was before issue 12:\nthe control of -instances (expect several feeds, and a failed run)")
	fs.IntVar(&o.instances, "instances", 1, "symbridge processes with the same configuration (datafeed.tag, NATS) sharing one feed;\nwith more than 1 their start-ups overlap for certain, kills take turns, and more than one tagged feed at the end fails the run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case o.events < 1000:
		return o, errors.New("-events: at least 1000")
	case o.kills < 0 || o.cycles < 0 || o.stalls < 0 || o.minKills < 0:
		return o, errors.New("-kills, -cycles, -stalls, -min-inflight-kills: must not be negative")
	case o.visibility <= 0 || o.maxBatch <= 0 || o.backlog < o.maxBatch:
		return o, errors.New("-visibility, -batch: must be positive; -backlog: at least -batch")
	case o.faultRate < 0 || o.faultRate > 0.5:
		return o, errors.New("-fault-rate: within [0, 0.5]")
	case o.progress <= 0:
		return o, errors.New("-progress: must be positive")
	case o.instances < 1 || o.instances > 10:
		return o, errors.New("-instances: within [1, 10]")
	}
	if o.kills == 0 {
		o.kills = max(12, o.events/8000)
	}
	if o.cycles == 0 {
		o.cycles = max(2, o.events/100000)
	}
	if o.stalls == 0 {
		o.stalls = 1 + o.events/500000
	}
	if o.timeout == 0 {
		o.timeout = 10*time.Minute + time.Duration(o.events/2000)*time.Second
	}
	if least := verifyReserve(o.events) + time.Minute; o.timeout < least {
		return o, fmt.Errorf("-timeout: at least %s for %d events", least, o.events)
	}
	return o, nil
}

// verifyReserve is the part of -timeout kept for reading the stream at the
// end (about 15k messages/s on a 2-core machine, with a wide margin).
func verifyReserve(events int) time.Duration {
	return time.Minute + time.Duration(events/10000)*time.Second
}

const (
	botUser    = "chaos-bot"
	feedTag    = "symbridge-chaos"
	streamName = "CHAOS"
)

// runner is one chaos run.
type runner struct {
	o     options
	out   io.Writer
	t0    time.Time
	outMu sync.Mutex

	agent *symphonytest.Agent
	gen   *symphonytest.Generator
	led   *ledger
	ho    *handouts
	nats  *natsNode
	obs   *observer
	br    fleet
	hold  *symphonytest.ListHold // the start-up barrier (-instances > 1)
	undo  []func()               // what tearDown undoes, in reverse
	rng   *mrand.Rand            // chaos timing; used by the chaos goroutine only

	emitMu sync.Mutex   // emission vs deliberate feed expiry
	done   atomic.Int64 // plan actions completed
	extra  atomic.Int64 // events the emitter may run further ahead (awaitHandout)
	plan   []action
	seg    int // events between two actions

	st chaosStats
}

type chaosStats struct {
	mu              sync.Mutex
	kills           int // SIGKILLs, all aimed at a hand-out
	inFlightKills   int // of which landed while the batch was not yet acked
	natsRestarts    int
	feedExpiries    int
	sessionExpiries int
	faults          map[symphonytest.FaultKind]int
	stalls          []time.Duration // how long each stalled read was held
	problems        []string        // actions that did not see the bridge recover in time
}

func (s *chaosStats) add(fn func(s *chaosStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (r *runner) logf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, "chaos: [%6.1fs] %s\n", time.Since(r.t0).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "chaos:", err)
		}
		return 2
	}
	r := &runner{o: o, out: stdout, t0: time.Now(), rng: mrand.New(mrand.NewPCG(uint64(o.seed), 0xc4a05))}
	code, err := r.run(ctx)
	if err != nil {
		r.logf("error: %v", err)
		return 1
	}
	return code
}

func (r *runner) run(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	// The feed phase leaves time for the verification: reading the stream.
	feedCtx, feedCancel := context.WithTimeout(ctx, r.o.timeout-verifyReserve(r.o.events))
	defer feedCancel()

	dir, err := os.MkdirTemp("", "symbridge-chaos-")
	if err != nil {
		return 0, err
	}
	keepDir := r.o.keep
	defer func() {
		if !keepDir {
			os.RemoveAll(dir)
		}
	}()

	agentURLs, err := r.setUp(ctx, dir)
	defer r.tearDown()
	if err != nil {
		return 0, err
	}
	r.plan = buildPlan(r.o)
	r.seg = r.o.events / (len(r.plan) + 1)
	r.logf("%d events, seed %d, batches of %d, visibility timeout %s, backlog %d, random read faults %.1f%%; plan: %s",
		r.o.events, r.o.seed, r.o.maxBatch, r.o.visibility, r.o.backlog, 100*r.o.faultRate, describePlan(r.plan))
	r.logf("agent %s, nats %s, bridge log %s", strings.Join(agentURLs, " "), r.nats.url(), r.br.logs())
	if r.o.instances > 1 {
		// Every instance's start-up list is answered before any creates a feed.
		r.hold = r.agent.HoldLists(r.o.instances)
		r.logf("%d instances; their tagged start-up lists are held until all %d wait", r.o.instances, r.o.instances)
	}
	if err := r.br.start(); err != nil {
		return 0, err
	}

	// 5. The feed and the chaos, side by side.
	superCtx, superCancel := context.WithCancel(feedCtx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.br.supervise(superCtx, r.logf) }()
	go func() { defer wg.Done(); r.progressLoop(superCtx) }()
	feedErr := r.feed(feedCtx)
	superCancel()
	wg.Wait()
	timedOut := feedErr != nil && errors.Is(feedCtx.Err(), context.DeadlineExceeded)
	if feedErr != nil {
		r.logf("feed phase ended early: %v", feedErr)
	}

	// 6. Stop the bridge and read the stream.
	if err := r.br.stop(15 * time.Second); err != nil {
		r.logf("bridge stop: %v", err)
	}
	r.logf("reading the stream %s with an ordered consumer", streamName)
	readStart := time.Now()
	t := r.led.newTally()
	n, readErr := r.obs.readAll(ctx, func(subject string, data []byte) { t.add(data, isDeadLetter(subject)) })
	v := t.verdict()
	r.logf("read %d messages in %s", n, time.Since(readStart).Round(time.Millisecond))

	share := r.sharing()
	failures := r.report(v, timedOut, feedErr, readErr)
	if r.o.instances > 1 && len(share.feeds) > 1 {
		failures = append(failures, fmt.Sprintf("%d tagged datafeed v2 feeds at the end, want 1 shared by the %d instances: %s",
			len(share.feeds), r.o.instances, strings.Join(share.feeds, ", ")))
	}
	if len(failures) > 0 {
		keepDir = true
		for _, f := range failures {
			r.logf("FAIL: %s", f)
		}
		r.outMu.Lock()
		for _, b := range r.br {
			fmt.Fprintf(r.out, "---- last lines of the %s log (%s) ----\n%s\n---- end of %s log ----\n",
				b.name, b.logPath, tail(b.logPath, 60), b.name)
		}
		r.outMu.Unlock()
	}
	if keepDir {
		r.logf("work directory kept: %s", dir)
	}
	r.outMu.Lock()
	fmt.Fprintln(r.out, share.line())
	fmt.Fprintln(r.out, v.line())
	r.outMu.Unlock()
	if len(failures) > 0 {
		return 1, nil
	}
	return 0, nil
}

// setUp does steps 1 to 4 of a run in dir: the binary (built once), the
// bot's key, NATS and the observer, the Agent (one listener per instance,
// so that a hand-out names its instance) and the bridges' configurations. It
// starts no bridge. It returns each instance's Agent URL. tearDown undoes
// what it did, in reverse order, even after an error.
func (r *runner) setUp(ctx context.Context, dir string) ([]string, error) {
	bin := r.o.bin
	if bin == "" {
		bin = filepath.Join(dir, "symbridge")
		if err := buildBridge(ctx, bin); err != nil {
			return nil, err
		}
	}
	keyPath := filepath.Join(dir, "bot.pem")
	key, err := writeKey(keyPath)
	if err != nil {
		return nil, err
	}

	r.nats = &natsNode{dir: filepath.Join(dir, "nats"), maxStore: 1<<30 + int64(r.o.events)*4096}
	if err := r.nats.start(ctx); err != nil {
		return nil, err
	}
	r.undo = append(r.undo, r.nats.stop)
	if r.obs, err = newObserver(r.nats.url(), streamName); err != nil {
		return nil, err
	}
	r.undo = append(r.undo, r.obs.close)

	r.agent = symphonytest.New(symphonytest.Config{
		Username: botUser, PublicKey: &key.PublicKey,
		VisibilityTimeout: r.o.visibility, FeedIdleTTL: time.Hour, MaxBatch: r.o.maxBatch, LongPoll: r.o.longPoll,
	})
	r.led = newLedger(r.o.events+r.slack(), 0)
	r.agent.OnAck(func(_ string, events [][]byte) { r.led.markAcked(events) })
	background := []symphonytest.FaultKind{symphonytest.FaultServerError, symphonytest.FaultTooManyRequests,
		symphonytest.FaultReset, symphonytest.FaultTruncated, symphonytest.FaultTruncatedChunked}
	if err := r.agent.SetFaults(symphonytest.Faults{Rate: r.o.faultRate, Kinds: background, Seed: r.o.seed,
		RetryAfter: time.Second, Status: 503}); err != nil {
		return nil, err
	}
	r.ho = newHandouts(r.o.stall, r.o.instances)
	r.agent.Use(r.ho.middleware)
	agentURLs, hosts := make([]string, r.o.instances), make([]string, r.o.instances)
	for i := range agentURLs {
		agentURLs[i] = r.agent.Start()
		hosts[i] = strings.TrimPrefix(agentURLs[i], "http://")
	}
	r.ho.setHosts(hosts)
	r.undo = append(r.undo, r.agent.Close)
	r.gen = symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: r.o.seed,
		NoIDRate: 0.05, SharedIDRate: 0.05, StdBase64Rate: 0.1, UnknownTypeRate: 0.02})

	r.br = newFleet(dir, bin, r.o.instances)
	r.undo = append(r.undo, func() { _ = r.br.stop(5 * time.Second) }) // a no-op after the real stop
	for i, b := range r.br {
		if err := writeConfig(b.config, agentURLs[i], keyPath, r.nats.url(), r.o.dupWindow, !r.o.alone); err != nil {
			return nil, err
		}
	}
	return agentURLs, nil
}

// tearDown undoes setUp.
func (r *runner) tearDown() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.undo = nil
}

// feed runs the emitter and the chaos plan, then waits until every emitted
// event was acknowledged by the bridge or dropped by Symphony, and until the
// Agent holds nothing more for the bridge.
func (r *runner) feed(ctx context.Context) error {
	if err := r.waitFeed(ctx, time.Minute); err != nil {
		return fmt.Errorf("the bridge never opened its feed: %w", err)
	}
	if r.hold != nil {
		select {
		case <-r.hold.Released():
			r.logf("start-up: %d tagged lists answered together, with %v feeds", len(r.hold.Listed()), r.hold.Listed())
		default:
			r.logf("start-up: a feed exists but only %d of %d tagged lists reached the barrier", r.hold.Waiting(), r.o.instances)
		}
	}
	// Either side failing stops the other: the chaos waits for the emitter
	// and the emitter for the chaos.
	both, cancel := context.WithCancel(ctx)
	errc := make(chan error, 2)
	go func() { errc <- r.emit(both) }()
	go func() { errc <- r.chaos(both) }()
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	cancel()
	if first != nil {
		return first
	}
	r.logf("all %d events emitted and the plan done; waiting for the bridge to catch up", r.led.counts().emitted)
	if err := poll(ctx, 100*time.Millisecond, func() bool {
		c := r.led.counts()
		return c.resolved >= c.emitted
	}); err != nil {
		c := r.led.counts()
		return fmt.Errorf("%d events neither acknowledged nor dropped: %w", c.emitted-c.resolved, err)
	}
	// Let redeliveries of batches already stored drain too, so that the
	// stream read sees everything the bridge will ever write.
	qctx, cancel := context.WithTimeout(ctx, 3*r.o.visibility+5*time.Second)
	defer cancel()
	if err := poll(qctx, 100*time.Millisecond, func() bool {
		held, _ := r.backlog()
		return held == 0
	}); err != nil {
		held, _ := r.backlog()
		r.logf("the Agent still holds %d events for the bridge (already acknowledged once); reading anyway", held)
	}
	return nil
}

// chaosFeeds lists the bridge's datafeeds.
func (r *runner) chaosFeeds() []symphonytest.FeedInfo {
	var out []symphonytest.FeedInfo
	for _, f := range r.agent.Feeds() {
		if f.Kind == symphonytest.KindDatafeed && f.Tag == feedTag {
			out = append(out, f)
		}
	}
	return out
}

// backlog is what the Agent holds for the bridge (queued and in flight), and
// whether the bridge has a feed at all. With several feeds (instances that
// each made their own) it is the least any of them holds: every feed gets a
// copy of each event, and a feed nobody reads any more (an instance that
// restarts may pick another instance's feed and leave its own) must not stop
// the run.
func (r *runner) backlog() (int, bool) {
	feeds := r.chaosFeeds()
	n := -1
	for _, f := range feeds {
		if h := f.Queued + f.InFlight; n < 0 || h < n {
			n = h
		}
	}
	return max(n, 0), len(feeds) > 0
}

func (r *runner) waitFeed(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return poll(ctx, 20*time.Millisecond, func() bool { _, ok := r.backlog(); return ok })
}

// emit gives the generator's events to the Agent, keeping at most backlog
// events waiting, never running far ahead of the chaos plan (so that every
// action happens while the feed flows), and never while the bridge has no feed (an event emitted then
// would reach no feed: that would be the run's doing, not Symphony's).
func (r *runner) emit(ctx context.Context) error {
	for {
		c := r.led.counts().emitted
		total := r.o.events + int(r.extra.Load())
		if c >= total && r.done.Load() == int64(len(r.plan)) {
			return nil
		}
		// Up to one segment ahead of the action in progress, so that the
		// feed never runs dry while an action waits for a hand-out.
		limit := min(total, int(r.done.Load()+2)*r.seg+r.o.backlog+int(r.extra.Load()))
		emitted := false
		if c < limit {
			var err error
			if emitted, err = r.emitOnce(c, limit); err != nil {
				return err
			}
		}
		if !emitted {
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return fmt.Errorf("emitting: %d of %d events emitted: %w", c, total, err)
			}
		}
	}
}

// slack is how many events beyond -events the emitter may emit: with
// several instances, awaitHandout lets it run a batch further when the
// others have read everything while an action waits for a hand-out.
func (r *runner) slack() int {
	if r.o.instances == 1 {
		return 0
	}
	return r.o.events / 2
}

func (r *runner) emitOnce(emitted, limit int) (bool, error) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	held, ok := r.backlog()
	if !ok || held >= r.o.backlog {
		return false, nil
	}
	evs := r.gen.Mix(min(r.o.backlog-held, limit-emitted, 500))
	if err := r.led.recordEmitted(evs); err != nil {
		return false, err
	}
	r.agent.Emit(evs...)
	return true, nil
}

func (r *runner) progressLoop(ctx context.Context) {
	t := time.NewTicker(r.o.progress)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c := r.led.counts()
		msgs := "?"
		if n := r.obs.messages(ctx); n >= 0 {
			msgs = fmt.Sprint(n)
		}
		held, _ := r.backlog()
		starts, _, _ := r.br.counts()
		r.st.mu.Lock()
		faults := 0
		for _, n := range r.st.faults {
			faults += n
		}
		line := fmt.Sprintf("progress: emitted %d/%d, acked %d, dropped %d, agent holds %d, stream %s msgs | actions %d/%d, kills %d (%d in flight), nats restarts %d, feed expiries %d, session expiries %d, faults %d, stalls %d | bridge starts %d",
			c.emitted, r.o.events, c.acked, c.dropped, held, msgs, r.done.Load(), len(r.plan),
			r.st.kills, r.st.inFlightKills, r.st.natsRestarts, r.st.feedExpiries, r.st.sessionExpiries, faults, len(r.st.stalls), starts)
		r.st.mu.Unlock()
		r.logf("%s", line)
	}
}

// sharing is what the instances cost the Agent: how many events it handed
// out for the events emitted, and which feeds they made.
type sharing struct {
	instances          int
	emitted, delivered int64
	created            int64
	feeds              []string // tagged datafeed v2 feeds at the end
}

func (r *runner) sharing() sharing {
	st := r.agent.Stats()
	s := sharing{instances: r.o.instances, emitted: int64(r.led.counts().emitted),
		delivered: st.EventsDelivered, created: st.FeedsCreated, feeds: []string{}}
	for _, f := range r.chaosFeeds() {
		s.feeds = append(s.feeds, f.ID)
	}
	return s
}

// line is printed just before the verdict's line. Several instances sharing
// one feed read each event about once (redeliveries add a little); with a
// feed each they read it once per feed.
func (s sharing) line() string {
	ratio := 0.0
	if s.emitted > 0 {
		ratio = float64(s.delivered) / float64(s.emitted)
	}
	return fmt.Sprintf("chaos: instances %d, events read %d for %d emitted (%.2fx, redeliveries included), feeds created %d, tagged feeds at the end %d [%s]",
		s.instances, s.delivered, s.emitted, ratio, s.created, len(s.feeds), strings.Join(s.feeds, " "))
}

// report prints the summary and returns the reasons the run fails.
func (r *runner) report(v verdict, timedOut bool, feedErr, readErr error) []string {
	st := r.agent.Stats()
	starts, kills, unexpected := r.br.counts()
	c := r.led.counts()
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	var fk []string
	for k, n := range st.Faults {
		fk = append(fk, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(fk)
	var stalls []string
	for _, d := range r.st.stalls {
		stalls = append(stalls, d.Round(100*time.Millisecond).String())
	}
	r.logf("agent: reads %d (%d empty), acks %d (%d repeated), redeliveries %d, logins %d, 401s %d, feeds created %d, expired %d, events dropped %d; faults: %s",
		st.Reads, st.EmptyReads, st.Acks, st.RepeatAcks, st.Redeliveries, st.Auths, st.Unauthorized,
		st.FeedsCreated, st.FeedsExpired, st.EventsDropped, strings.Join(fk, ", "))
	r.logf("chaos: SIGKILLs %d, %d of them while a batch was delivered but not yet acked; bridge starts %d, NATS restarts %d, feed expiries %d (%d events dropped by Symphony), session expiries %d, stalls %d (the bridge gave the stalled read up after %s)",
		kills, r.st.inFlightKills, starts, r.st.natsRestarts, r.st.feedExpiries, c.dropped,
		r.st.sessionExpiries, len(r.st.stalls), strings.Join(stalls, ", "))
	r.logf("stream: %d messages: %d distinct events, %d duplicates, %d dead letters, %d unexpected, %d corrupted; bridge acked %d distinct events (%d acks of events in all)",
		v.Messages, v.Stored, v.Duplicates, v.DeadLetter, v.Unexpected, v.Corrupted, c.acked, c.ackCalls)
	r.logf("duration %s", time.Since(r.t0).Round(100*time.Millisecond))

	var fail []string
	if v.Lost > 0 {
		fail = append(fail, fmt.Sprintf("%d events lost (%d of them acknowledged by the bridge); first serials %v", v.Lost, v.LostAcked, v.FirstLost))
	}
	if v.Duplicates > 0 {
		fail = append(fail, fmt.Sprintf("%d duplicates in the stream", v.Duplicates))
	}
	if v.Unexpected > 0 || v.Corrupted > 0 || v.DeadLetter > 0 {
		fail = append(fail, fmt.Sprintf("%d unexpected, %d corrupted, %d dead-lettered messages", v.Unexpected, v.Corrupted, v.DeadLetter))
	}
	if v.Emitted < r.o.events {
		fail = append(fail, fmt.Sprintf("only %d of %d events emitted", v.Emitted, r.o.events))
	}
	if r.st.inFlightKills < r.o.minKills {
		fail = append(fail, fmt.Sprintf("only %d kills landed while a batch was in flight (want at least %d)", r.st.inFlightKills, r.o.minKills))
	}
	fail = append(fail, unexpected...)
	fail = append(fail, r.st.problems...)
	if timedOut {
		fail = append(fail, fmt.Sprintf("timed out (-timeout %s)", r.o.timeout))
	} else if feedErr != nil {
		fail = append(fail, feedErr.Error())
	}
	if readErr != nil {
		fail = append(fail, readErr.Error())
	}
	if c.foreign > 0 {
		fail = append(fail, fmt.Sprintf("%d acknowledged or dropped events were never emitted", c.foreign))
	}
	return fail
}

// buildBridge builds ./cmd/symbridge of the module the driver runs in.
func buildBridge(ctx context.Context, bin string) error {
	root, err := testshared.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/symbridge")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/symbridge: %w\n%s", err, out)
	}
	return nil
}

// writeKey makes the bot's RSA key; the Agent verifies login JWTs with its
// public half.
func writeKey(path string) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("bot key: %w", err)
	}
	return key, nil
}

// writeConfig writes the bridge's configuration: a BDK-style file pointing
// at the simulator over plain HTTP on loopback. The read timeout is the
// smallest the client accepts (it must exceed the Agent's 30 s long poll), so
// a stall costs about 33 s; the read retry is capped at 5 s so that one
// unlucky run of faults cannot push the backoff to the BDK's 5 minutes.
func writeConfig(path, agentURL, keyPath, natsURL string, dupWindow time.Duration, coordinate bool) error {
	u, err := url.Parse(agentURL)
	if err != nil {
		return fmt.Errorf("agent URL: %w", err)
	}
	cfg := fmt.Sprintf(`# written by test/chaos
scheme: http
host: %s
port: %s
connectionTimeout: 2000
readTimeout: 31000
bot:
  username: %s
  privateKey:
    path: %q
datafeed:
  tag: %s
  retry:
    initialIntervalMillis: 200
    maxIntervalMillis: 5000
bridge:
  pod: chaos
nats:
  url: %q
  stream:
    name: %s
http:
  listen: ""
log:
  level: info
`, u.Hostname(), u.Port(), botUser, keyPath, feedTag, natsURL, streamName)
	if !coordinate {
		cfg = strings.Replace(cfg, "  tag: "+feedTag+"\n", "  tag: "+feedTag+"\n  coordination:\n    enabled: false\n", 1)
	}
	if dupWindow > 0 {
		cfg = strings.Replace(cfg, "    name: "+streamName+"\n", "    name: "+streamName+"\n    duplicates: "+dupWindow.String()+"\n", 1)
	}
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// poll checks cond every interval until it holds or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	for !cond() {
		if err := sleep(ctx, interval); err != nil {
			return err
		}
	}
	return nil
}

// sleep is the bridge's own context-aware wait.
var sleep = backoff.Sleep

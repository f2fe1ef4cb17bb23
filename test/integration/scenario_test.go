//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
)

// Load and timing of every scenario.
const (
	feedRate      = 300 // events per second
	feedMaxBatch  = 100 // events per read at most, as the Agent's datafeed v2
	feedRedeliver = 10  // every 10th batch is delivered again after its ack
	warmUpEvents  = 200 // stored before the fault

	// recoveryLimit bounds "recovers by itself within seconds": from the
	// fault (quorum kept) or from the repair (quorum lost) to a ready bridge
	// storing events emitted after that moment.
	recoveryLimit = 30 * time.Second
	// readyWindow is how long readiness must hold (ready with one node of
	// three lost; unready without quorum) to count as holding.
	readyWindow = 3 * time.Second
)

// natsEnv says how the bridge reaches the servers under test.
type natsEnv struct {
	urls     string        // every server, comma-separated
	opts     []nats.Option // credentials, TLS
	replicas int
	nodes    []*natsNode
}

// scenario is one fault under load.
type scenario struct {
	name string // e.g. "kill/stream-leader"
	pod  string // the bridge's pod; each scenario has its own stream
	// prepare arranges the roles before the fault (optional).
	prepare func(t *testing.T, r *bridgeRun)
	// inject breaks something and returns what it hit (for the figures) and
	// how to repair it.
	inject func(t *testing.T, r *bridgeRun) (target string, repair func())
	// quorumKept: the bridge must recover while the fault lasts and stay
	// ready; otherwise it must turn unready, stay so, and recover after the
	// repair.
	quorumKept bool
	// verify checks, once recovered with the fault still on, that the fault
	// hit what it was meant to (optional).
	verify func(t *testing.T, r *bridgeRun, target string)
	// healthy waits until the servers are healthy again after the repair.
	healthy func(t *testing.T)
}

// bridgeRun is a real bridge.Bridge on its own connection and stream, fed
// by a serialFeed, plus a separate connection to look at the stream.
type bridgeRun struct {
	env     *natsEnv
	pod     string
	stream  string
	nc      *nats.Conn // the bridge's
	b       *bridge.Bridge
	feed    *serialFeed
	checkNC *nats.Conn
	check   jetstream.JetStream
	ready   *readyMonitor
	stop    func() error
}

// figures are what the tests print for every fault.
type figures struct {
	scenario, target                 string
	sent, stored, lost, dups, others int
	recovery, unready                time.Duration
	retries                          int64
	redeliveries                     int
}

func (f figures) String() string {
	return fmt.Sprintf("FIGURES %-26s sent=%d stored=%d lost=%d duplicates=%d other=%d recovered_in=%.1fs unready=%.1fs publish_retries=%d redelivered=%d target=%s",
		f.scenario, f.sent, f.stored, f.lost, f.dups, f.others, f.recovery.Seconds(), f.unready.Seconds(), f.retries, f.redeliveries, f.target)
}

// runScenario runs the bridge under load, injects the fault, checks
// recovery and readiness, repairs, drains, then counts the stream: every
// emitted serial must be stored exactly once.
func runScenario(t *testing.T, env *natsEnv, sc scenario) {
	t.Helper()
	r := startBridgeRun(t, env, sc.pod)
	fig := figures{scenario: sc.name}
	defer func() { // printed even when an assertion below fails
		msg := fig.String()
		t.Log(msg)
		fmt.Println(msg)
	}()

	r.waitProgress(t, warmUpEvents, 60*time.Second, "warm-up")
	if sc.prepare != nil {
		sc.prepare(t, r)
		r.waitProgress(t, r.feed.emitted()+1, 30*time.Second, "after preparing the roles")
	}

	r.ready.count(true)
	faultAt := time.Now()
	target, repair := sc.inject(t, r)
	// Progress counts from events emitted once the fault is in place: those
	// stored while inject ran (finding the leader, asking Docker) prove
	// nothing. The recovery time counts from the start of the fault.
	emittedAtFault := r.feed.emitted()
	fig.target = target
	repaired := false
	defer func() {
		if !repaired { // leave the servers usable for the next scenario
			repair()
		}
	}()

	if sc.quorumKept {
		r.waitProgress(t, emittedAtFault+1, recoveryLimit, "recovery with the fault on")
		fig.recovery = time.Since(faultAt)
		if sc.verify != nil {
			sc.verify(t, r, target)
		}
		r.staysReady(t, readyWindow)
		repair()
		repaired = true
	} else {
		if err := poll(t.Context(), recoveryLimit, 20*time.Millisecond, func() error {
			if r.b.Ready() == nil {
				return errors.New("still ready")
			}
			return nil
		}); err != nil {
			t.Fatalf("the bridge did not turn unready after losing the quorum: %v", err)
		}
		r.staysUnready(t, readyWindow)
		repairAt := time.Now()
		emittedAtRepair := r.feed.emitted()
		repair()
		repaired = true
		r.waitProgress(t, emittedAtRepair+1, recoveryLimit, "recovery after the repair")
		fig.recovery = time.Since(repairAt)
	}
	if sc.healthy != nil {
		sc.healthy(t)
	}
	r.waitProgress(t, r.feed.emitted()+1, 60*time.Second, "after the servers are healthy again")

	fig.sent = r.feed.stopEmitting()
	r.waitProgress(t, fig.sent, 60*time.Second, "drain")
	if err := poll(t.Context(), 30*time.Second, 20*time.Millisecond, r.feed.drained); err != nil {
		t.Fatalf("drain: %v", err)
	}
	r.ready.count(false)
	if err := r.stop(); err != nil {
		t.Errorf("bridge Run: %v", err)
	}
	st := r.b.Stats()
	fig.retries, fig.redeliveries, fig.unready = st.PublishRetries, r.feed.redeliveredEvents(), r.ready.unready()

	var c streamCount
	if err := poll(t.Context(), 60*time.Second, 500*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var err error
		c, err = countStream(ctx, r.check, r.stream, r.pod)
		return err
	}); err != nil {
		t.Fatalf("counting the stream: %v", err)
	}
	fig.stored, fig.others = c.msgs, c.foreign
	fig.lost, fig.dups = c.lostAndDuplicates(fig.sent)
	if fig.lost != 0 || fig.dups != 0 || fig.others != 0 {
		t.Errorf("%s: %d of %d events lost, %d stored twice, %d other messages (dead letters?)",
			sc.name, fig.lost, fig.sent, fig.dups, fig.others)
	}
	if st.DeadLettered != 0 {
		t.Errorf("%d events dead-lettered", st.DeadLettered)
	}
	// Every redelivered event was published again and refused by JetStream
	// as a duplicate: the guarantee is the server's, not the bridge's memory.
	if st.Duplicates < int64(fig.redeliveries) {
		t.Errorf("%d events were delivered again but JetStream reported only %d duplicates", fig.redeliveries, st.Duplicates)
	}
}

// startBridgeRun connects a bridge to env, creates the pod's stream and runs
// the bridge until the test ends.
func startBridgeRun(t *testing.T, env *natsEnv, pod string) *bridgeRun {
	t.Helper()
	ctx := t.Context()
	r := &bridgeRun{env: env, pod: pod, stream: "IT_" + strings.ReplaceAll(pod, "-", "_"),
		feed: newSerialFeed(pod, feedRate, feedMaxBatch, feedRedeliver)}
	logger := testLogger(t)

	var err error
	// Short pings: a paused server leaves a half-open connection that only
	// unanswered pings reveal (the production default is 10 s).
	r.nc, err = bridge.Connect(ctx, bridge.NATSConfig{
		URL: env.urls, Name: "symbridge-it-" + pod,
		PingInterval: time.Second, MaxPingsOut: 2, ConnectTimeout: 2 * time.Second,
		Options: append([]nats.Option{nats.ReconnectWait(250 * time.Millisecond)}, env.opts...),
	}, logger)
	if err != nil {
		t.Fatalf("bridge connect: %v", err)
	}
	t.Cleanup(r.nc.Close)
	js, err := bridge.NewJetStream(r.nc, bridge.JetStreamConfig{MaxPending: 1024, PublishTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	r.checkNC, err = nats.Connect(env.urls, append([]nats.Option{
		nats.Name("symbridge-it-check"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2), nats.Timeout(2 * time.Second),
	}, env.opts...)...)
	if err != nil {
		t.Fatalf("check connect: %v", err)
	}
	t.Cleanup(r.checkNC.Close)
	if r.check, err = jetstream.New(r.checkNC); err != nil {
		t.Fatal(err)
	}

	// The pod is literal in the templates so that each scenario's stream
	// covers its bridge's subjects and only those.
	subj, err := subjects.Compile("symphony." + pod + ".{eventType}.{streamType}")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := subjects.Compile("symphony." + pod + "._invalid")
	if err != nil {
		t.Fatal(err)
	}
	streamCfg := bridge.StreamConfig{Name: r.stream, Subjects: []string{"symphony." + pod + ".>"}, Replicas: env.replicas}
	// A cluster may still be electing its meta leader.
	if err := poll(ctx, 60*time.Second, 250*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := bridge.EnsureStream(cctx, js, streamCfg, []string{subj.Filter(), dead.Filter()}, logger)
		return err
	}); err != nil {
		t.Fatalf("stream %s: %v", r.stream, err)
	}

	r.b, err = bridge.New(bridge.Config{
		Pod: pod, Source: bridge.SourceDatafeed, Subject: subj, DeadLetter: dead,
		PublishTimeout: 2 * time.Second, MaxPending: 1024, PublishRetryMax: 500 * time.Millisecond,
		Logger: logger,
	}, r.feed, js)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.b.Run(runCtx) }()
	var once sync.Once
	var result error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				result = errors.New("Run did not return within 15s of its context's end")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = r.stop() })
	r.ready = startReadyMonitor(t, r.b)
	return r
}

// waitProgress waits until every serial up to serial is acknowledged (hence
// stored) and the bridge reports ready.
func (r *bridgeRun) waitProgress(t *testing.T, serial int, timeout time.Duration, what string) {
	t.Helper()
	err := poll(t.Context(), timeout, 20*time.Millisecond, func() error {
		if got := r.feed.ackedUpTo(); got < serial {
			return fmt.Errorf("acknowledged up to serial %d, waiting for %d (ready: %v)", got, serial, r.b.Ready())
		}
		return r.b.Ready()
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// staysReady checks that the bridge stays ready, and keeps storing, for d.
func (r *bridgeRun) staysReady(t *testing.T, d time.Duration) {
	t.Helper()
	from := r.feed.ackedUpTo()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := r.b.Ready(); err != nil {
			t.Fatalf("the bridge turned unready with one server of three lost: %v", err)
		}
		waitTick(t, 20*time.Millisecond)
	}
	if got := r.feed.ackedUpTo(); got <= from {
		t.Fatalf("the bridge stored nothing for %s while reporting ready", d)
	}
}

// staysUnready checks that the bridge stays unready for d.
func (r *bridgeRun) staysUnready(t *testing.T, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if r.b.Ready() == nil {
			t.Fatalf("the bridge reported ready without a quorum")
		}
		waitTick(t, 20*time.Millisecond)
	}
}

func waitTick(t *testing.T, d time.Duration) {
	select {
	case <-t.Context().Done():
	case <-time.After(d):
	}
}

// readyMonitor samples Ready every 20 ms and adds up the time it reported
// not ready while counting.
type readyMonitor struct {
	mu       sync.Mutex
	counting bool
	total    time.Duration
}

func startReadyMonitor(t *testing.T, b *bridge.Bridge) *readyMonitor {
	m := &readyMonitor{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		const every = 20 * time.Millisecond
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if b.Ready() != nil {
					m.mu.Lock()
					if m.counting {
						m.total += every
					}
					m.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func (m *readyMonitor) count(on bool) {
	m.mu.Lock()
	m.counting = on
	m.mu.Unlock()
}

func (m *readyMonitor) unready() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// --- stream roles ---------------------------------------------------------------

// streamLeader is the server leading the stream's replicas.
func (r *bridgeRun) streamLeader(ctx context.Context) (string, error) {
	s, err := r.check.Stream(ctx, r.stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("the stream has no leader")
	}
	return info.Cluster.Leader, nil
}

// leaderAwayFrom makes sure the stream leader is not the server the bridge
// is connected to, so that a fault hits exactly one of the two roles: it
// asks the leader to step down in favour of another server when needed.
func (r *bridgeRun) leaderAwayFrom(t *testing.T) {
	t.Helper()
	connected := r.nc.ConnectedServerName()
	err := poll(t.Context(), 30*time.Second, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		leader, err := r.streamLeader(ctx)
		if err != nil {
			return err
		}
		if leader != connected {
			return nil
		}
		preferred := ""
		for _, n := range r.env.nodes {
			if n.name != connected {
				preferred = n.name
				break
			}
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": preferred}})
		resp, err := r.checkNC.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+r.stream, req)
		if err != nil {
			return fmt.Errorf("stepdown: %w", err)
		}
		var res struct {
			Success bool `json:"success"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &res); err != nil {
			return fmt.Errorf("stepdown response: %w", err)
		}
		if res.Error != nil {
			return fmt.Errorf("stepdown: %s", res.Error.Description)
		}
		return fmt.Errorf("leader %s stepped down in favour of %s", leader, preferred)
	})
	if err != nil {
		t.Fatalf("moving the stream leader away from %s: %v", connected, err)
	}
}

func (env *natsEnv) node(t *testing.T, name string) *natsNode {
	t.Helper()
	for _, n := range env.nodes {
		if n.name == name {
			return n
		}
	}
	t.Fatalf("no server named %q", name)
	return nil
}

// testLogger sends log lines to t.Log (seen with -v or on failure) until
// the test's last cleanup: NATS connection handlers may still log from their
// own goroutine after Close, and t.Log after the test panics.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { // registered first, so it runs last
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

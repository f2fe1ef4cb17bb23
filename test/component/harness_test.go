package component_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/testlog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/bridgetest"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

const (
	pod         = "acme"
	botUser     = "bridge-bot"
	streamName  = "SYMPHONY"
	deadSubject = "symphony.acme._invalid"

	// Short simulator timings keep the package fast: a held read returns
	// after longPoll, an un-acked batch comes back after visibility.
	longPoll   = 200 * time.Millisecond
	visibility = time.Second

	// waitLong bounds every poll of the tests; a healthy run needs a
	// fraction of it.
	waitLong = 30 * time.Second
)

// key returns the bot's RSA key and its PKCS#1 PEM, generated once per test
// binary.
func key(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, pemKey, err := symphonytest.BotKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, pemKey
}

// serialOf is the serial the generator wrote into raw; an event without one
// fails the test (a check keyed on serial 0 would pass vacuously).
func serialOf(t testing.TB, raw []byte) int64 {
	t.Helper()
	s, ok := symphonytest.SerialOf(raw)
	if !ok {
		t.Fatalf("event without a serial: %s", raw)
	}
	return s
}

// harness is one simulated Agent (behind the OpenAPI validator when
// ../shared holds the spec files, see spec.ForTest), one embedded
// JetStream, the stream, and the bookkeeping that proves the guarantees.
type harness struct {
	t     *testing.T
	agent *symphonytest.Agent
	val   *spec.Validator
	url   string
	srv   *natstest.Server // replaced by restart; only the test goroutine touches it
	col   *collector
	gen   *symphonytest.Generator
	logs  *testlog.Buffer

	mu         sync.Mutex
	emitted    map[int64]bool // serials given to the Agent
	violations []string       // ack-before-store and similar, reported at cleanup
	acked      [][]int64      // serials of each non-empty acknowledged batch (repeats included)
}

// newHarness starts everything but the bridge. cfg's zero fields get the
// harness defaults (the bot's account and key, short long poll and
// visibility timeout).
func newHarness(t *testing.T, cfg symphonytest.Config) *harness {
	t.Helper()
	k, _ := key(t)
	if cfg.Username == "" {
		cfg.Username = botUser
	}
	if cfg.PublicKey == nil {
		cfg.PublicKey = &k.PublicKey
	}
	if cfg.LongPoll == 0 {
		cfg.LongPoll = longPoll
	}
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = visibility
	}

	h := &harness{
		t:       t,
		srv:     natstest.RunServer(t),
		logs:    &testlog.Buffer{},
		emitted: map[int64]bool{},
		gen: symphonytest.NewGenerator(symphonytest.GeneratorConfig{
			Seed: 1, NoIDRate: 0.1, StdBase64Rate: 0.2, SharedIDRate: 0.2, UnknownTypeRate: 0.05,
		}),
	}
	js := natstest.JetStream(t, h.srv)
	stream, err := bridge.EnsureStream(t.Context(), js, bridge.StreamConfig{Name: streamName}, []string{"symphony.>"}, nil)
	if err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	h.col = &collector{stream: stream, next: 1, byData: map[string][]int{}, bySerial: map[int64][]int{}}

	v := spec.ForTest(t)
	h.val = v
	h.agent = symphonytest.New(cfg)
	h.agent.Use(func(next http.Handler) http.Handler { return v.Middleware(next, nil) })
	h.agent.OnAck(h.onAck)
	h.url = h.agent.Start()
	t.Cleanup(func() {
		h.agent.Close()
		for _, f := range v.Failures() {
			t.Errorf("OpenAPI validation: %v", f)
		}
		if vs := v.Stats(); v != nil && (vs.Requests == 0 || vs.Responses == 0) {
			t.Errorf("the OpenAPI validator checked nothing: %+v", vs)
		}
		for _, s := range h.violationsSnapshot() {
			t.Errorf("guarantee violated: %s", s)
		}
		if t.Failed() {
			t.Logf("bridge logs:\n%s", tail(h.logs.String(), 60))
		}
	})
	return h
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func (h *harness) violate(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
}

func (h *harness) violationsSnapshot() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.violations)
}

// takeViolations returns the violations recorded so far and forgets them
// (for the test that proves the harness catches them).
func (h *harness) takeViolations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.violations
	h.violations = nil
	return v
}

// onAck runs inside the simulator each time a read carries an ackId, before
// the ack is applied: every event of the acknowledged batch must already be
// in the stream. The stream is read up to its last sequence at this instant,
// so a message stored before the ack cannot be missed.
func (h *harness) onAck(feedID string, events [][]byte) {
	if len(events) == 0 {
		return
	}
	serials := make([]int64, 0, len(events))
	for _, raw := range events {
		s, _ := symphonytest.SerialOf(raw)
		serials = append(serials, s)
	}
	h.mu.Lock()
	h.acked = append(h.acked, serials)
	h.mu.Unlock()

	// One attempt, generous for a loaded machine: retrying later would
	// look at the stream as it is after the ack, not at the ack.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.col.sync(ctx); err != nil {
		h.violate("feed %s acked a batch of %d events while the stream could not be read: %v", feedID, len(events), err)
		return
	}
	for i, raw := range events {
		if !h.col.holds(raw) {
			h.violate("feed %s acked event serial %d before it was stored: %.120s", feedID, serials[i], raw)
		}
	}
}

// ackedBatches returns the serials of every non-empty batch acknowledged so
// far, in order.
func (h *harness) ackedBatches() [][]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.acked)
}

// ackedEvents counts the events of acknowledged batches (repeats included).
func (h *harness) ackedEvents() int {
	n := 0
	for _, b := range h.ackedBatches() {
		n += len(b)
	}
	return n
}

// emit gives events to the Agent (into every live feed) and remembers their
// serials.
func (h *harness) emit(events ...[]byte) {
	h.t.Helper()
	h.record(events)
	h.agent.Emit(events...)
}

// emitMalformed is emit for events the strict schema refuses on purpose.
func (h *harness) emitMalformed(events ...[]byte) {
	h.t.Helper()
	h.record(events)
	h.agent.EmitMalformed(events...)
}

func (h *harness) record(events [][]byte) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, raw := range events {
		s, ok := symphonytest.SerialOf(raw)
		if !ok {
			h.t.Fatalf("event without serial: %s", raw)
		}
		h.emitted[s] = true
	}
}

func (h *harness) emittedSerials() map[int64]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[int64]bool, len(h.emitted))
	for s := range h.emitted {
		out[s] = true
	}
	return out
}

// count compares emitted serials with stored ones.
func (h *harness) count(ctx context.Context) (lost []int64, dups map[int64]int, err error) {
	if err := h.col.sync(ctx); err != nil {
		return nil, nil, err
	}
	stored := h.col.serials()
	dups = map[int64]int{}
	for s, n := range stored {
		if n > 1 {
			dups[s] = n
		}
	}
	for s := range h.emittedSerials() {
		if stored[s] == 0 {
			lost = append(lost, s)
		}
	}
	slices.Sort(lost)
	return lost, dups, nil
}

// waitStored polls until every emitted event is in the stream.
func (h *harness) waitStored() {
	h.t.Helper()
	natstest.WaitFor(h.t, waitLong, func() error {
		lost, _, err := h.count(h.t.Context())
		if err != nil {
			return err
		}
		if len(lost) > 0 {
			return fmt.Errorf("%d of %d emitted events not stored yet (first serials %v)", len(lost), len(h.emittedSerials()), lost[:min(5, len(lost))])
		}
		return nil
	})
}

// waitDrained polls until the Agent holds nothing for any feed: every event
// was handed out and acknowledged (datafeed v1: read).
func (h *harness) waitDrained() {
	h.t.Helper()
	natstest.WaitFor(h.t, waitLong, func() error {
		for _, f := range h.agent.Feeds() {
			if f.Queued > 0 || f.InFlight > 0 {
				return fmt.Errorf("feed %s: %d queued, %d in flight", f.ID, f.Queued, f.InFlight)
			}
		}
		return nil
	})
}

// checkExactlyOnce waits until the Agent is drained and asserts that every
// emitted event is stored exactly once.
func (h *harness) checkExactlyOnce() {
	h.t.Helper()
	h.waitStored()
	h.waitDrained()
	var lost []int64
	var dups map[int64]int
	natstest.WaitFor(h.t, waitLong, func() (err error) {
		lost, dups, err = h.count(h.t.Context())
		return err
	})
	if len(lost) > 0 {
		h.t.Errorf("lost %d events: serials %v", len(lost), lost)
	}
	if len(dups) > 0 {
		h.t.Errorf("%d events stored more than once: serial -> count %v", len(dups), dups)
	}
}

// waitFeed polls until the Agent has a live feed of kind and returns it.
func (h *harness) waitFeed(kind symphonytest.FeedKind) symphonytest.FeedInfo {
	h.t.Helper()
	var out symphonytest.FeedInfo
	natstest.WaitFor(h.t, waitLong, func() error {
		for _, f := range h.agent.Feeds() {
			if f.Kind == kind {
				out = f
				return nil
			}
		}
		return fmt.Errorf("no %s feed yet", kind)
	})
	return out
}

// newClient is a fresh Symphony client of the bot (RSA authentication).
func (h *harness) newClient() *symphony.Client {
	h.t.Helper()
	_, pemKey := key(h.t)
	c, err := symphony.NewClient(symphony.ClientConfig{
		PodURL: h.url, AgentURL: h.url, KeyManagerURL: h.url,
		Username: botUser, PrivateKeyPEM: pemKey,
	})
	if err != nil {
		h.t.Fatalf("NewClient: %v", err)
	}
	return c
}

// openDatafeed creates (or reuses, by tag) the bot's datafeed v2, so that
// events emitted next are queued for it.
func (h *harness) openDatafeed(c *symphony.Client) *symphony.DatafeedV2 {
	h.t.Helper()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	if _, err := f.Open(h.t.Context()); err != nil {
		h.t.Fatalf("open datafeed: %v", err)
	}
	return f
}

// bridgeConfig is the bridge configuration of the tests (bridgetest's),
// logging at debug level into the harness's buffer.
func (h *harness) bridgeConfig(source string) bridge.Config {
	h.t.Helper()
	return bridgetest.Config(h.t, pod, source, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// startBridge runs a new Bridge on src with its own NATS connection and
// JetStream context, as `symbridge run` does. It is stopped at cleanup.
func (h *harness) startBridge(src bridge.Source, source string) *bridgetest.Running {
	h.t.Helper()
	return h.startBridgeCtx(context.Background(), src, source)
}

// startBridgeCtx is startBridge with Run's context derived from parent.
func (h *harness) startBridgeCtx(parent context.Context, src bridge.Source, source string) *bridgetest.Running {
	h.t.Helper()
	return bridgetest.Start(h.t, parent, h.bridgeConfig(source), src, h.srv.URL())
}

// --- the stream, as a consumer sees it ---------------------------------------

// storedMsg is one message read back from the stream.
type storedMsg struct {
	seq     uint64
	subject string
	header  nats.Header
	data    []byte
}

// collector reads the stream in sequence order by direct gets (no consumer
// state to lose across a server restart) and indexes what it read.
type collector struct {
	stream jetstream.Stream

	mu       sync.Mutex
	next     uint64 // next sequence to read
	msgs     []storedMsg
	byData   map[string][]int // payload -> indices into msgs
	bySerial map[int64][]int  // generator serial -> indices into msgs
}

// sync reads every message stored so far. It is safe to call concurrently.
func (c *collector) sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	info, err := c.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	for ; c.next <= info.State.LastSeq; c.next++ {
		m, err := c.stream.GetMsg(ctx, c.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get message %d: %w", c.next, err)
		}
		c.byData[string(m.Data)] = append(c.byData[string(m.Data)], len(c.msgs))
		if s, ok := symphonytest.SerialOf(m.Data); ok {
			c.bySerial[s] = append(c.bySerial[s], len(c.msgs))
		}
		c.msgs = append(c.msgs, storedMsg{seq: m.Sequence, subject: m.Subject, header: m.Header, data: m.Data})
	}
	return nil
}

// holds reports whether the event raw is stored: a message with raw as its
// payload and the event's Msg-Id, or raw as a dead letter.
func (c *collector) holds(raw []byte) bool {
	ev := symphony.ParseEvent(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, i := range c.byData[string(raw)] {
		m := c.msgs[i]
		if m.subject == deadSubject {
			return true
		}
		if ev.Err == nil && m.header.Get(jetstream.MsgIDHeader) == symphony.MsgID(&ev) {
			return true
		}
	}
	return false
}

// serials counts stored messages by generator serial.
func (c *collector) serials() map[int64]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]int, len(c.bySerial))
	for s, idx := range c.bySerial {
		out[s] = len(idx)
	}
	return out
}

// all returns the messages read so far.
func (c *collector) all() []storedMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// withSerial returns the stored messages of one generator serial.
func (c *collector) withSerial(serial int64) []storedMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []storedMsg
	for _, i := range c.bySerial[serial] {
		out = append(out, c.msgs[i])
	}
	return out
}

// ackEarly is a broken Source: it acknowledges each batch to the Agent as
// soon as it receives it, before the bridge has stored it (the bug the
// whole design exists to avoid).
type ackEarly struct {
	src bridge.Source
}

func (a *ackEarly) Name() string { return a.src.Name() }

func (a *ackEarly) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	b, err := a.src.Read(ctx, ackID)
	if err != nil || len(b.Events) == 0 {
		return b, err
	}
	next, err := a.src.Read(ctx, b.AckID) // the ack reaches the Agent now
	if err != nil {
		return symphony.Batch{}, err
	}
	b.AckID = next.AckID // next is empty: everything was queued before
	return b, nil
}

// TestHarnessCatchesAckBeforeStore proves the harness's check can fail: a
// source that acknowledges batches before they are stored is caught.
func TestHarnessCatchesAckBeforeStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	f := h.openDatafeed(h.newClient())
	h.emit(h.gen.Mix(5)...)
	h.startBridge(&ackEarly{src: f}, bridge.SourceDatafeed)
	h.waitStored()
	v := h.takeViolations()
	if len(v) != 5 {
		t.Fatalf("harness recorded %d violations for 5 events acked before being stored: %q", len(v), v)
	}
	if !strings.Contains(v[0], "before it was stored") {
		t.Errorf("violation %q does not say what went wrong", v[0])
	}
}

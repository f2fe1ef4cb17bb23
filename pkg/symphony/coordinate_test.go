package symphony_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

const coordBot = "coord-bot"

// sim is a simulated Agent for the coordination tests; url is its base URL.
type sim struct {
	agent *symphonytest.Agent
	url   string
	pem   []byte
}

func newSim(t *testing.T, cfg symphonytest.Config) *sim {
	t.Helper()
	k, pem, err := symphonytest.BotKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Username, cfg.PublicKey = coordBot, &k.PublicKey
	a := symphonytest.New(cfg)
	url := a.Start()
	t.Cleanup(a.Close)
	return &sim{agent: a, url: url, pem: pem}
}

// instance is one symbridge instance's feed reader: its own client, as a
// separate process has.
func (s *sim) instance(t *testing.T, opts symphony.DatafeedOptions) *symphony.DatafeedV2 {
	t.Helper()
	c, err := symphony.NewClient(symphony.ClientConfig{PodURL: s.url, AgentURL: s.url, KeyManagerURL: s.url,
		Username: coordBot, PrivateKeyPEM: s.pem})
	if err != nil {
		t.Fatal(err)
	}
	return symphony.NewDatafeedV2(c, opts)
}

func (s *sim) key(tag string) string { return symphony.FeedKey(s.url, coordBot, tag) }

// taggedFeeds are the simulator's datafeed v2 feeds with tag.
func (s *sim) taggedFeeds(tag string) []string {
	var ids []string
	for _, f := range s.agent.Feeds() {
		if f.Kind == symphonytest.KindDatafeed && f.Tag == tag {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

func TestFeedKey(t *testing.T) {
	a := symphony.FeedKey("https://acme.symphony.com", "bot", "symbridge")
	for _, same := range []string{"https://acme.symphony.com/", "https://ACME.symphony.com:443", "acme.symphony.com"} {
		if len(a) != 32 || a != symphony.FeedKey(same, "bot", "") {
			t.Fatalf("FeedKey = %q: want 32 hex digits, the same for the pod URL %q and the default tag", a, same)
		}
	}
	for _, other := range [][3]string{
		{"https://acme.symphony.com", "bot", "symbridgE"},
		{"https://acme.symphony.com", "bots", "ymbridge"},
		{"https://other.symphony.com", "bot", "symbridge"},
	} {
		if symphony.FeedKey(other[0], other[1], other[2]) == a {
			t.Errorf("FeedKey%v = FeedKey of another account", other)
		}
	}
}

// TestCoordinated_StartRace: three instances whose lists are all answered
// before any create settle on one feed with coordination, and create three
// without (the control shows that the race is real).
func TestCoordinated_StartRace(t *testing.T) {
	for _, coordinated := range []bool{true, false} {
		t.Run(map[bool]string{true: "coordinated", false: "alone"}[coordinated], func(t *testing.T) {
			s := newSim(t, symphonytest.Config{})
			hold := s.agent.HoldLists(3) // each instance learns "no feed" before any creates one
			coord := symphonytest.NewCoordinator()
			ids := make([]string, 3)
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for i := range ids {
				opts := symphony.DatafeedOptions{Tag: "race"}
				if coordinated {
					opts.Coordinator = coord
				}
				df := s.instance(t, opts)
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := df.Open(t.Context())
					ids[i] = res.FeedID
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if listed := hold.Listed(); !slices.Equal(listed, []int{0, 0, 0}) {
				t.Fatalf("the held lists were answered with %v feeds, want none: the start-ups did not overlap", listed)
			}
			feeds := s.taggedFeeds("race")
			if !coordinated {
				if len(feeds) != 3 {
					t.Fatalf("without coordination: %d feeds %v; the held lists should have made each instance create one", len(feeds), feeds)
				}
				return
			}
			if len(feeds) != 1 || ids[0] != feeds[0] || ids[1] != feeds[0] || ids[2] != feeds[0] {
				t.Fatalf("instances opened %v; the Agent has tagged feeds %v: want all on one", ids, feeds)
			}
			if rec := coord.Records()[s.key("race")]; rec.ID != feeds[0] || rec.Created.IsZero() {
				t.Errorf("record = %+v, want %s with its creation time", rec, feeds[0])
			}
		})
	}
}

// TestCoordinated_RestartReusesRecordWithoutClaim: a restarted instance
// finds the recorded feed listed and reads it, taking no claim.
func TestCoordinated_RestartReusesRecordWithoutClaim(t *testing.T) {
	s := newSim(t, symphonytest.Config{})
	coord := symphonytest.NewCoordinator()
	first, err := s.instance(t, symphony.DatafeedOptions{Coordinator: coord}).Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	claims := coord.Claims()
	again, err := s.instance(t, symphony.DatafeedOptions{Coordinator: coord}).Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again.FeedID != first.FeedID || again.Created || coord.Claims() != claims {
		t.Errorf("restart opened %+v with %d claims; want %s reused without a claim", again, coord.Claims()-claims, first.FeedID)
	}
}

// TestCoordinated_StaleRecord: a recorded feed the Agent no longer knows is
// replaced like a feed lost with a 400.
func TestCoordinated_StaleRecord(t *testing.T) {
	s := newSim(t, symphonytest.Config{})
	coord := symphonytest.NewCoordinator()
	if err := coord.Record(t.Context(), s.key(symphony.DefaultDatafeedTag), symphony.FeedRecord{ID: "0123456789abcdef0123456789abcdef_f", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	res, err := s.instance(t, symphony.DatafeedOptions{Coordinator: coord}).Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || coord.Records()[s.key(symphony.DefaultDatafeedTag)].ID != res.FeedID {
		t.Errorf("opened %+v, record %+v: want a new feed, recorded", res, coord.Records())
	}
}

// reader reads a feed on one ackId chain until ctx ends, handing each batch
// to got; the first error other than ctx's is reported at the end.
type reader struct {
	done chan struct{}
	err  error
	// recreated counts the batches that reported a recreation.
	recreated int
}

// feedSource is what startReader reads: a DatafeedV2 or a Datahose.
type feedSource interface {
	Read(ctx context.Context, ackID string) (symphony.Batch, error)
}

func startReader(ctx context.Context, src feedSource, got func(symphony.Batch)) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		ack := ""
		for ctx.Err() == nil {
			b, err := src.Read(ctx, ack)
			if err != nil {
				if ctx.Err() == nil && r.err == nil {
					r.err = err
				}
				continue
			}
			if b.FeedRecreated {
				r.recreated++
			}
			got(b)
			ack = b.AckID
		}
	}()
	return r
}

// serials collects the serials of the events read, by serial.
type serials struct {
	mu  sync.Mutex
	got map[int64]int
}

func (s *serials) add(b symphony.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[int64]int{}
	}
	for _, ev := range b.Events {
		if n, ok := symphonytest.SerialOf(ev.Raw); ok {
			s.got[n]++
		}
	}
}

func (s *serials) missing(want []int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var miss []int64
	for _, n := range want {
		if s.got[n] == 0 {
			miss = append(miss, n)
		}
	}
	return miss
}

// emit emits n generated events and returns their serials.
func emit(a *symphonytest.Agent, g *symphonytest.Generator, n int) []int64 {
	var out []int64
	for range n {
		raw := g.Next()
		a.Emit(raw)
		s, _ := symphonytest.SerialOf(raw)
		out = append(out, s)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCoordinated_400: three instances on one feed lose it; one replaces it
// and the two others join the replacement, which they find recorded.
func TestCoordinated_400(t *testing.T) {
	s := newSim(t, symphonytest.Config{LongPoll: 100 * time.Millisecond, VisibilityTimeout: 500 * time.Millisecond})
	coord := symphonytest.NewCoordinator()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got serials
	var dfs []*symphony.DatafeedV2
	var readers []*reader
	for range 3 {
		df := s.instance(t, symphony.DatafeedOptions{Coordinator: coord})
		if _, err := df.Open(ctx); err != nil {
			t.Fatal(err)
		}
		dfs = append(dfs, df)
		readers = append(readers, startReader(ctx, df, got.add))
	}
	old := s.taggedFeeds(symphony.DefaultDatafeedTag)
	if len(old) != 1 {
		t.Fatalf("feeds before the 400: %v", old)
	}
	if _, ok := s.agent.ExpireFeedDropping(old[0]); !ok {
		t.Fatal("no feed to expire")
	}
	waitFor(t, "every instance on a new feed", func() bool {
		for _, df := range dfs {
			if df.Name() == "datafeed v2 "+old[0] || df.Name() != dfs[0].Name() {
				return false
			}
		}
		return true
	})
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 4})
	want := emit(s.agent, g, 300)
	waitFor(t, "every event read", func() bool { return len(got.missing(want)) == 0 })
	cancel()
	recreated := 0
	for _, r := range readers {
		<-r.done
		if r.err != nil {
			t.Errorf("reader: %v", r.err)
		}
		recreated += r.recreated
	}
	if feeds := s.taggedFeeds(symphony.DefaultDatafeedTag); len(feeds) != 1 || s.agent.Stats().FeedsCreated != 2 {
		t.Errorf("after the 400: feeds %v, %d created; want one replacement", feeds, s.agent.Stats().FeedsCreated)
	}
	if recreated != 1 {
		t.Errorf("%d batches reported the recreation, want 1 (the instance that replaced the feed)", recreated)
	}
}

// TestCoordinated_Unreachable: with the coordinator failing, an instance
// opens and recovers alone, as without coordination, and says so.
func TestCoordinated_Unreachable(t *testing.T) {
	s := newSim(t, symphonytest.Config{LongPoll: 100 * time.Millisecond})
	coord := symphonytest.NewCoordinator()
	coord.SetErr(errors.New("nats: no responders available for request"))
	var logs bytes.Buffer
	df := s.instance(t, symphony.DatafeedOptions{Coordinator: coord, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	res, err := df.Open(t.Context())
	if err != nil || !res.Created {
		t.Fatalf("Open = %+v, %v: want a feed created alone", res, err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("feed coordination failed; choosing the feed alone")) ||
		!bytes.Contains(logs.Bytes(), []byte("no responders")) {
		t.Errorf("no warning naming the cause: %s", logs.String())
	}
	s.agent.ExpireFeed(res.FeedID)
	b, err := df.Read(t.Context(), "")
	if err != nil || !b.FeedRecreated {
		t.Fatalf("Read after a 400 = %+v, %v: want the feed recreated alone", b, err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("replacing the lost feed alone")) {
		t.Errorf("no warning for the recovery: %s", logs.String())
	}
	if st := df.CoordinationStats(); st.Alone != 2 {
		t.Errorf("CoordinationStats = %+v, want Alone 2 (open, recovery)", st)
	}
}

// TestCoordinated_MoveLosesNothing: two feeds of one tag, created 200 ms
// apart, as an instance that decided alone leaves behind; events are
// emitted between the creations (so one feed only has them) and during the
// move. The instance on the unrecorded feed drains it into the recorded one
// and deletes it; every event is read. The recorded feed is either the older
// one (leaving the newer loses nothing by construction) or the newer one
// (only the drain saves the events emitted between the creations).
func TestCoordinated_MoveLosesNothing(t *testing.T) {
	for _, recordedFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "recorded feed older", false: "recorded feed newer"}[recordedFirst], func(t *testing.T) {
			t.Parallel()
			s := newSim(t, symphonytest.Config{LongPoll: 100 * time.Millisecond, VisibilityTimeout: 300 * time.Millisecond, MaxBatch: 5})
			coord := symphonytest.NewCoordinator()
			g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 7, Now: time.Now})
			opts := symphony.DatafeedOptions{Tag: "move", Coordinator: coord, Recheck: 20 * time.Millisecond, Visibility: 300 * time.Millisecond}
			stayer, mover := s.instance(t, opts), s.instance(t, opts)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			first, second := stayer, mover
			if !recordedFirst {
				first, second = mover, stayer
			}
			a, err := symphony.CreateFeedForTest(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			want := emit(s.agent, g, 50) // only in the older feed
			time.Sleep(200 * time.Millisecond)
			b, err := symphony.CreateFeedForTest(ctx, second)
			if err != nil {
				t.Fatal(err)
			}
			recorded, left := a, b
			if !recordedFirst {
				recorded, left = b, a
			}
			if err := coord.Record(ctx, s.key("move"), symphony.FeedRecord{ID: recorded, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			want = append(want, emit(s.agent, g, 50)...) // in both
			var got serials
			rs := []*reader{startReader(ctx, stayer, got.add), startReader(ctx, mover, got.add)}
			// Events keep coming during the move, which ends once the left
			// feed handed out events stamped past the recorded creation.
			deadline := time.Now().Add(time.Minute)
			for !slices.Equal(s.taggedFeeds("move"), []string{recorded}) {
				if time.Now().After(deadline) {
					t.Fatalf("the feed %s was not left for %s: feeds %v, mover on %s", left, recorded, s.taggedFeeds("move"), mover.Name())
				}
				want = append(want, emit(s.agent, g, 5)...)
				time.Sleep(20 * time.Millisecond) // the pace of emission, not a wait for a result
			}
			want = append(want, emit(s.agent, g, 50)...)
			waitFor(t, "every event read", func() bool { return len(got.missing(want)) == 0 })
			cancel()
			for _, r := range rs {
				<-r.done
				if r.err != nil {
					t.Errorf("reader: %v", r.err)
				}
			}
			if st := mover.CoordinationStats(); st.Moves != 1 || st.Alone != 0 {
				t.Errorf("mover's CoordinationStats = %+v, want one move", st)
			}
			if mover.Name() != "datafeed v2 "+recorded {
				t.Errorf("mover reads %s, want the recorded %s (left %s)", mover.Name(), recorded, left)
			}
		})
	}
}

// TestDatahose_InstancesShareOneFeed: datahose needs no coordination: three
// instances with the same tag and event types read one feed, which spreads
// its events over them, and every event is read.
func TestDatahose_InstancesShareOneFeed(t *testing.T) {
	s := newSim(t, symphonytest.Config{LongPoll: 100 * time.Millisecond, VisibilityTimeout: 500 * time.Millisecond, MaxBatch: 20})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got serials
	var rs []*reader
	perInstance := make([]serials, 3)
	for i := range 3 {
		c, err := symphony.NewClient(symphony.ClientConfig{PodURL: s.url, AgentURL: s.url, KeyManagerURL: s.url,
			Username: coordBot, PrivateKeyPEM: s.pem})
		if err != nil {
			t.Fatal(err)
		}
		d, err := symphony.NewDatahose(c, symphony.DatahoseOptions{Tag: "hose", EventTypes: []string{symphony.TypeMessageSent}})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, startReader(ctx, d, func(b symphony.Batch) { got.add(b); perInstance[i].add(b) }))
	}
	waitFor(t, "three datahose readers", func() bool {
		fs := s.agent.Feeds()
		return len(fs) == 1 && fs[0].Readers == 3
	})
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 9, Weights: map[string]int{symphony.TypeMessageSent: 1}})
	want := emit(s.agent, g, 600)
	waitFor(t, "every event read", func() bool { return len(got.missing(want)) == 0 })
	cancel()
	for _, r := range rs {
		<-r.done
		if r.err != nil {
			t.Errorf("reader: %v", r.err)
		}
	}
	var hose []string
	for _, f := range s.agent.Feeds() {
		hose = append(hose, f.ID)
	}
	if len(hose) != 1 || s.agent.Stats().DatahoseFeedsCreated != 1 {
		t.Errorf("datahose feeds %v, %d created: want one shared feed", hose, s.agent.Stats().DatahoseFeedsCreated)
	}
	if st := s.agent.Stats(); st.EventsDelivered > st.EventsEmitted+st.Redeliveries {
		t.Errorf("delivered %d events for %d emitted and %d redelivered: each instance got a copy", st.EventsDelivered, st.EventsEmitted, st.Redeliveries)
	}
	for i := range perInstance {
		if len(perInstance[i].missing(want)) == len(want) {
			t.Errorf("instance %d read nothing: the feed did not spread its events", i)
		}
	}
}

// flaky is a coordinator that fails while fail is set.
type flaky struct {
	*symphonytest.Coordinator
	fail atomic.Bool
}

var errUnreachable = errors.New("nats: timeout")

func (f *flaky) Claim(ctx context.Context, key string) (func(), error) {
	if f.fail.Load() {
		return nil, errUnreachable
	}
	return f.Coordinator.Claim(ctx, key)
}

func (f *flaky) Recorded(ctx context.Context, key string) (symphony.FeedRecord, error) {
	if f.fail.Load() {
		return symphony.FeedRecord{}, errUnreachable
	}
	return f.Coordinator.Recorded(ctx, key)
}

// TestCoordinated_RecordsItsFeedOnceCoordinationAnswers: an instance that
// created its feed alone (the buckets did not answer) records it at its
// next recheck once they do, so that the others find it.
func TestCoordinated_RecordsItsFeedOnceCoordinationAnswers(t *testing.T) {
	s := newSim(t, symphonytest.Config{LongPoll: 50 * time.Millisecond})
	coord := &flaky{Coordinator: symphonytest.NewCoordinator()}
	coord.fail.Store(true)
	df := s.instance(t, symphony.DatafeedOptions{Coordinator: coord, Recheck: 10 * time.Millisecond})
	res, err := df.Open(t.Context())
	if err != nil || !res.Created {
		t.Fatalf("Open = %+v, %v", res, err)
	}
	ack := ""
	for range 3 { // rechecks that fail: nothing recorded
		b, err := df.Read(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		ack = b.AckID
	}
	if recs := coord.Records(); len(recs) != 0 {
		t.Fatalf("records while the coordinator fails: %v", recs)
	}
	coord.fail.Store(false)
	waitFor(t, "the feed recorded", func() bool {
		b, err := df.Read(t.Context(), ack)
		if err != nil {
			t.Fatal(err)
		}
		ack = b.AckID
		return coord.Records()[s.key(symphony.DefaultDatafeedTag)].ID == res.FeedID
	})
	other, err := s.instance(t, symphony.DatafeedOptions{Coordinator: coord}).Open(t.Context())
	if err != nil || other.FeedID != res.FeedID || other.Created {
		t.Errorf("another instance opened %+v, %v; want the recorded %s", other, err, res.FeedID)
	}
}

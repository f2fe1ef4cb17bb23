package symphony_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
)

type readCall struct{ ID, AckID string }

// feedStub is a small datafeed v2 endpoint set on top of stubSymphony.
type feedStub struct {
	mu           sync.Mutex
	tagged       []string // ids the ?tag= list returns
	untagged     []string // further ids only the list without tag returns
	tagQueries   []string // "" for a list without tag
	creates      []map[string]any
	createStatus []int // answers to the next creates; 0 = success
	deletes      []string
	deleteStatus int
	reads        []readCall
	nextID       int
	// read answers a read; default: 200 with one event and ackId "<id>-ack".
	read func(id, ackID string) (int, string)
	// hold, when set, is called before a read is answered, without f.mu
	// held: it may block that one read.
	hold func(id, ackID string)
}

func newFeedStub(t *testing.T, s *stubSymphony) *feedStub {
	f := &feedStub{}
	s.Mux.HandleFunc("GET /agent/v5/datafeeds", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		var ids []string
		if r.URL.Query().Has("tag") {
			f.tagQueries = append(f.tagQueries, r.URL.Query().Get("tag"))
			ids = f.tagged
		} else {
			f.tagQueries = append(f.tagQueries, "")
			ids = append(slices.Clone(f.untagged), f.tagged...)
		}
		feeds := []map[string]string{}
		for _, id := range ids {
			typ := "fanout"
			if strings.Contains(id, "_p_") {
				typ = "datahose"
			}
			feeds = append(feeds, map[string]string{"id": id, "type": typ})
		}
		writeJSON(w, 200, feeds)
	})
	s.Mux.HandleFunc("POST /agent/v5/datafeeds", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		var body map[string]any
		readJSON(t, r, &body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.creates = append(f.creates, body)
		if len(f.createStatus) > 0 {
			st := f.createStatus[0]
			f.createStatus = f.createStatus[1:]
			if st != 0 {
				writeJSON(w, st, map[string]any{"code": st, "message": "cannot create"})
				return
			}
		}
		f.nextID++
		id := fmt.Sprintf("%032x_f", f.nextID)
		f.tagged = append(f.tagged, id)
		writeJSON(w, 201, map[string]string{"id": id, "type": "fanout"})
	})
	s.Mux.HandleFunc("DELETE /agent/v5/datafeeds/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		id := r.PathValue("id")
		f.deletes = append(f.deletes, id)
		f.tagged = slices.DeleteFunc(f.tagged, func(s string) bool { return s == id })
		if f.deleteStatus != 0 {
			writeJSON(w, f.deleteStatus, map[string]any{"code": f.deleteStatus, "message": "no such feed"})
			return
		}
		w.WriteHeader(204)
	})
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AckID          *string `json:"ackId"`
			UpdatePresence *bool   `json:"updatePresence"`
		}
		readJSON(t, r, &body)
		if body.AckID == nil || body.UpdatePresence == nil || !*body.UpdatePresence {
			t.Errorf("read body lacks ackId or updatePresence=true")
			writeJSON(w, 500, nil)
			return
		}
		id := r.PathValue("id")
		f.mu.Lock()
		hold := f.hold
		f.mu.Unlock()
		if hold != nil {
			hold(id, *body.AckID)
		}
		f.mu.Lock()
		f.reads = append(f.reads, readCall{id, *body.AckID})
		st, b := 200, eventList(id+"-ack", oneEvent)
		if f.read != nil {
			st, b = f.read(id, *body.AckID) // under f.mu: tests change state with f.with
		}
		f.mu.Unlock()
		writeRaw(w, st, b)
	})
	return f
}

func (f *feedStub) with(fn func(f *feedStub)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *feedStub) snapshot() feedStub {
	f.mu.Lock()
	defer f.mu.Unlock()
	return feedStub{
		tagQueries: slices.Clone(f.tagQueries), creates: slices.Clone(f.creates),
		deletes: slices.Clone(f.deletes), reads: slices.Clone(f.reads),
	}
}

const err400 = `{"code":400,"message":"Could not find a datafeed with the provided id"}`

func TestIsDatafeedV2ID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc_f":     true,
		"abc_f_def": true,
		"e766c498eece0d113f035270ad6c3c63_f_f8001": true,
		"371f465fb97b5d1027d20a5e7085863a_f":       true,
		"abc":                                      false,
		"abc_def":                                  false,
		"abc_p_def":                                false,
		"d25098517ec62f1fc65cd111667a8386_p_be940": false,
		"abc_f_":    false,
		"_f":        false,
		"a b_f":     false,
		"abc_f_x_y": false,
		"":          false,
	} {
		if got := symphony.IsDatafeedV2ID(id); got != want {
			t.Errorf("IsDatafeedV2ID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestDatafeedV2_OpenReusesTaggedFeed(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	fs.with(func(f *feedStub) {
		f.tagged = []string{"abc", "x_p_y", "abc_f_", "mine_f_1", "mine2_f"}
		f.untagged = []string{"team_f", "d25098517ec62f1fc65cd111667a8386_p_be940", "old_f_2"}
	})
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{Tag: "bridge-a"})
	res, err := df.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := symphony.OpenResult{FeedID: "mine_f_1", OtherFeeds: []string{"team_f", "old_f_2", "mine2_f"}}
	if got := res; !reflect.DeepEqual(want, got) {
		t.Errorf("OpenResult = %+v, want %+v", got, want)
	}
	got := fs.snapshot()
	if want, got := []string{"", "bridge-a"}, got.tagQueries; !reflect.DeepEqual(want, got) {
		t.Errorf("list calls' tag = %+v, want %+v", got, want)
	}
	if len(got.creates) != 0 {
		t.Errorf("created %d feeds, want none", len(got.creates))
	}
	if df.Name() != "datafeed v2 mine_f_1" {
		t.Errorf("Name() = %q", df.Name())
	}
}

func TestDatafeedV2_OpenCreates(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts symphony.DatafeedOptions
		want map[string]any
	}{
		{"default tag", symphony.DatafeedOptions{}, map[string]any{"tag": "symbridge"}},
		{"tag and includeInvisible", symphony.DatafeedOptions{Tag: "team-a", IncludeInvisible: true},
			map[string]any{"tag": "team-a", "includeInvisible": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			fs := newFeedStub(t, s)
			fs.with(func(f *feedStub) { f.tagged = []string{"d_p_1", "plain"}; f.untagged = []string{"team_f"} })
			df := symphony.NewDatafeedV2(s.client(), tc.opts)
			res, err := df.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			newID := fmt.Sprintf("%032x_f", 1)
			if !res.Created || res.FeedID != newID || !slices.Equal(res.OtherFeeds, []string{"team_f"}) {
				t.Errorf("OpenResult = %+v", res)
			}
			got := fs.snapshot()
			if len(got.creates) != 1 {
				t.Fatalf("creates = %d, want 1", len(got.creates))
			}
			if want, got := tc.want, got.creates[0]; !reflect.DeepEqual(want, got) {
				t.Errorf("create body = %+v, want %+v", got, want)
			}
			b, err := df.Read(context.Background(), "")
			if err != nil || b.FeedID != newID {
				t.Errorf("Read after create: feed %q, %v", b.FeedID, err)
			}
		})
	}
}

// TestDatafeedV2_Plan: Plan names the feed Open would reuse, by Open's
// rule, or none; it never creates, reads or deletes a feed.
func TestDatafeedV2_Plan(t *testing.T) {
	for _, tc := range []struct {
		name             string
		tagged, untagged []string
		want             symphony.FeedPlan
	}{
		{"reuse", []string{"abc", "x_p_y", "mine_f_1", "mine2_f"}, []string{"team_f", "d_p_1"},
			symphony.FeedPlan{Reuse: "mine_f_1", OtherFeeds: []string{"team_f", "mine2_f"}}},
		{"would create", []string{"d_p_1", "plain"}, []string{"team_f"},
			symphony.FeedPlan{OtherFeeds: []string{"team_f"}}},
		{"no feeds at all", nil, nil, symphony.FeedPlan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			fs := newFeedStub(t, s)
			fs.with(func(f *feedStub) { f.tagged, f.untagged = tc.tagged, tc.untagged })
			plan, err := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{Tag: "bridge-a"}).Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan, tc.want) {
				t.Errorf("Plan = %+v, want %+v", plan, tc.want)
			}
			got := fs.snapshot()
			if want := []string{"", "bridge-a"}; !reflect.DeepEqual(got.tagQueries, want) {
				t.Errorf("list calls' tag = %+v, want %+v", got.tagQueries, want)
			}
			if len(got.creates)+len(got.reads)+len(got.deletes) != 0 {
				t.Errorf("Plan created %d, read %d, deleted %d feeds; want none", len(got.creates), len(got.reads), len(got.deletes))
			}
		})
	}
}

func TestDatafeedV2_TagTooLong(t *testing.T) {
	s := newStub(t)
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{Tag: strings.Repeat("t", 101)})
	if _, err := df.Open(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "DatafeedOptions.Tag:") {
		t.Errorf("Open = %v, want a datafeed.tag error", err)
	}
	if s.PodAuths.Load() != 0 {
		t.Error("contacted the pod despite invalid options")
	}
}

// TestDatafeedV2_Read reads an event list written here; its "samples"
// subtest, a conformance test, reads the BDK's real one from ../shared.
func TestDatafeedV2_Read(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		checkDatafeedV2Read(t, []byte(eventList("ack_id_string", oneEvent)), 344147139494862)
	})
	t.Run("samples", func(t *testing.T) {
		sample := readShared(t, "symphony-samples", "bdk-java-legacy", "read_datafeedv5.json")
		checkDatafeedV2Read(t, sample, 1456852)
	})
}

// checkDatafeedV2Read serves sample, an event list with the ackId
// "ack_id_string" and one MESSAGESENT by initiator, to every read.
func checkDatafeedV2Read(t *testing.T, sample []byte, initiator int64) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	fs.with(func(f *feedStub) {
		f.tagged = []string{"feed_f"}
		f.read = func(id, ackID string) (int, string) { return 200, string(sample) }
	})
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	b, err := df.Read(context.Background(), "prev-ack")
	if err != nil {
		t.Fatal(err)
	}
	if b.FeedID != "feed_f" || b.AckID != "ack_id_string" || len(b.Events) != 1 || b.FeedRecreated {
		t.Fatalf("batch = %+v", b)
	}
	if ev := b.Events[0]; ev.Err != nil || ev.Type != symphony.TypeMessageSent || ev.InitiatorUserID != initiator || !strings.Contains(string(sample), string(ev.Raw)) {
		t.Errorf("event = %+v", ev)
	}
	// Read opened the feed itself; it was not open yet, so the ackId of
	// "another" feed was not sent.
	if want, got := []readCall{{"feed_f", ""}}, fs.snapshot().reads; !reflect.DeepEqual(want, got) {
		t.Errorf("reads = %+v, want %+v", got, want)
	}
	if _, err := df.Read(context.Background(), "ack_id_string"); err != nil {
		t.Fatal(err)
	}
	if got := fs.snapshot().reads; got[len(got)-1] != (readCall{"feed_f", "ack_id_string"}) {
		t.Errorf("second read = %+v, want the ackId sent", got[len(got)-1])
	}
}

func TestDatafeedV2_400_StillListedRereadsWithoutAckID(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	fs.with(func(f *feedStub) {
		f.tagged = []string{"feed_f"}
		f.read = func(id, ackID string) (int, string) {
			if ackID == "bad" {
				return 400, err400
			}
			return 200, eventList("fresh", oneEvent)
		}
	})
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	ctx := context.Background()
	if _, err := df.Open(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := df.Read(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if b.FeedRecreated || b.FeedID != "feed_f" || b.AckID != "fresh" {
		t.Errorf("batch = %+v", b)
	}
	got := fs.snapshot()
	if want, got := []readCall{{"feed_f", "bad"}, {"feed_f", ""}}, got.reads; !reflect.DeepEqual(want, got) {
		t.Errorf("reads = %+v, want %+v", got, want)
	}
	if len(got.deletes)+len(got.creates) != 0 {
		t.Errorf("deleted %v, created %d: the listed feed must be kept", got.deletes, len(got.creates))
	}
}

func TestDatafeedV2_400_Recreates(t *testing.T) {
	newID := fmt.Sprintf("%032x_f", 1)
	for _, tc := range []struct {
		name         string
		listed       bool // the old feed is still listed (but refuses "" too)
		deleteStatus int
	}{
		{"gone, delete 404", false, 404},
		{"gone, delete 400", false, 400},
		{"listed but reread fails", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			fs := newFeedStub(t, s)
			fs.with(func(f *feedStub) {
				f.tagged = []string{"old_f"}
				f.deleteStatus = tc.deleteStatus
				f.read = func(id, ackID string) (int, string) {
					if id == "old_f" {
						return 400, err400
					}
					return 200, eventList("new-ack", oneEvent)
				}
			})
			df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{Tag: "t1", IncludeInvisible: true})
			ctx := context.Background()
			if _, err := df.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if !tc.listed {
				fs.with(func(f *feedStub) { f.tagged = nil })
			}
			b, err := df.Read(ctx, "ack-9")
			if err != nil {
				t.Fatal(err)
			}
			if !b.FeedRecreated || b.FeedID != newID || b.AckID != "new-ack" || len(b.Events) != 1 {
				t.Errorf("batch = %+v", b)
			}
			got := fs.snapshot()
			wantReads := []readCall{{"old_f", "ack-9"}, {newID, ""}}
			if tc.listed {
				wantReads = []readCall{{"old_f", "ack-9"}, {"old_f", ""}, {newID, ""}}
			}
			if want, got := wantReads, got.reads; !reflect.DeepEqual(want, got) {
				t.Errorf("reads = %+v, want %+v", got, want)
			}
			if want, got := []string{"old_f"}, got.deletes; !reflect.DeepEqual(want, got) {
				t.Errorf("deletes = %+v, want %+v", got, want)
			}
			if want, got := []map[string]any{{"tag": "t1", "includeInvisible": true}}, got.creates; !reflect.DeepEqual(want, got) {
				t.Errorf("creates = %+v, want %+v", got, want)
			}
			if df.Name() != "datafeed v2 "+newID {
				t.Errorf("Name() = %q", df.Name())
			}
			// The next batch is an ordinary one.
			b, err = df.Read(ctx, b.AckID)
			if err != nil || b.FeedRecreated {
				t.Errorf("next read: %+v, %v", b, err)
			}
		})
	}
}

// openGoneFeed opens a datafeed v2 on the stub's feed old_f, then unlists
// old_f, as the Agent does once a feed is gone.
func openGoneFeed(t *testing.T, s *stubSymphony, fs *feedStub) *symphony.DatafeedV2 {
	t.Helper()
	fs.with(func(f *feedStub) { f.tagged = []string{"old_f"} })
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	if _, err := df.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.with(func(f *feedStub) { f.tagged = nil })
	return df
}

// goneFeedRead answers the reads of a feed stub whose feed old_f is gone:
// 400 for old_f, a 503 for the next read of a new feed while *failNext is
// set (it is then cleared), 400 for an ackId the new feed never issued, and
// otherwise one event with ackId "n1". Set it with f.with.
func goneFeedRead(failNext *bool) func(id, ackID string) (int, string) {
	return func(id, ackID string) (int, string) {
		switch {
		case id == "old_f":
			return 400, err400
		case *failNext:
			*failNext = false
			return 503, `{"code":503,"message":"later"}`
		case ackID != "":
			return 400, err400 // the new feed never saw an ackId
		}
		return 200, eventList("n1", oneEvent)
	}
}

func TestDatafeedV2_RecreationFailures(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	var newFeedFails bool
	fs.with(func(f *feedStub) {
		f.createStatus = []int{500} // first recreation attempt fails
		f.read = goneFeedRead(&newFeedFails)
	})
	df := openGoneFeed(t, s, fs)
	ctx := context.Background()

	// 1: the create fails: ErrFeedGone, transient, naming the feed.
	_, err := df.Read(ctx, "a1")
	if !errors.Is(err, symphony.ErrFeedGone) || symphony.Classify(err) != symphony.ClassRetry || !strings.Contains(err.Error(), "old_f") {
		t.Fatalf("err = %v (class %s), want ErrFeedGone, retry, naming old_f", err, symphony.Classify(err))
	}
	// 2: the create works but the new feed's first read fails.
	fs.with(func(*feedStub) { newFeedFails = true })
	if _, err := df.Read(ctx, "a1"); symphony.Classify(err) != symphony.ClassRetry || err == nil {
		t.Fatalf("err = %v, want a transient error", err)
	}
	// 3: the caller retries with its old ackId; the recreation is still
	// reported, and the stale ackId is not sent to the new feed.
	b, err := df.Read(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	newID := fmt.Sprintf("%032x_f", 1)
	if !b.FeedRecreated || b.FeedID != newID {
		t.Errorf("batch = %+v, want FeedRecreated on %s", b, newID)
	}
	for _, r := range fs.snapshot().reads {
		if r.ID == newID && r.AckID != "" {
			t.Errorf("read %+v: an ackId of the old feed was sent to the new one", r)
		}
	}
}

// Reader X's read recreates the feed and long-polls the new one; meanwhile
// a fresh reader N (no ackId yet) reads the new feed and finishes, and
// reader Y, whose ackId belongs to the old feed, reads too. The recreation is
// reported once, by X's batch (a flag shared by the readers was reported by
// N as well as by X).
func TestDatafeedV2_RecreationReportedOnce(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	newID := fmt.Sprintf("%032x_f", 1)
	xPolling := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	fs.with(func(f *feedStub) {
		f.read = func(id, ackID string) (int, string) {
			if id == "old_f" || ackID != "" {
				return 400, err400 // the new feed never saw an ackId
			}
			return 200, eventList(id+"-ack", oneEvent)
		}
		f.hold = func(id, _ string) {
			if id != newID {
				return
			}
			first := false
			once.Do(func() { first = true })
			if first { // X's first read of the new feed: a long poll
				close(xPolling)
				<-release
			}
		}
	})
	df := openGoneFeed(t, s, fs)
	ctx := context.Background()

	type result struct {
		b   symphony.Batch
		err error
	}
	x, y, n := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go func() { b, err := df.Read(ctx, "x1"); x <- result{b, err} }()
	<-xPolling
	// Y's ackId earns a 400: its recovery waits for X's to end.
	go func() { b, err := df.Read(ctx, "y1"); y <- result{b, err} }()
	// N needs no recovery: it finishes while X still polls.
	go func() { b, err := df.Read(ctx, ""); n <- result{b, err} }()
	var rn result
	select {
	case rn = <-n:
	case <-time.After(10 * time.Second):
		t.Fatal("a fresh reader's read of the new feed waited for X's long poll")
	}
	close(release)
	rx, ry := <-x, <-y
	if rx.err != nil || ry.err != nil || rn.err != nil {
		t.Fatalf("reads: %v, %v, %v", rx.err, ry.err, rn.err)
	}
	if !rx.b.FeedRecreated || ry.b.FeedRecreated || rn.b.FeedRecreated {
		t.Errorf("FeedRecreated: reader X %t, reader Y %t, reader N %t; want true, false, false (one recreation, reported once)",
			rx.b.FeedRecreated, ry.b.FeedRecreated, rn.b.FeedRecreated)
	}
	if rx.b.FeedID != newID || ry.b.FeedID != newID || rn.b.FeedID != newID {
		t.Errorf("feeds read: %s, %s, %s; want %s", rx.b.FeedID, ry.b.FeedID, rn.b.FeedID, newID)
	}
}

// A read with no ackId yet recreates the feed, and the new feed's first read
// fails: the recreation is owed to the chain "", which every fresh reader
// shares. Two such reads at once both see the debt; only one reports it.
func TestDatafeedV2_OwedRecreationReportedOnce(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	newID := fmt.Sprintf("%032x_f", 1)
	newFeedFails := true
	fs.with(func(f *feedStub) { f.read = goneFeedRead(&newFeedFails) })
	df := openGoneFeed(t, s, fs)
	ctx := context.Background()
	if _, err := df.Read(ctx, ""); symphony.Classify(err) != symphony.ClassRetry || err == nil {
		t.Fatalf("err = %v, want a transient error (the new feed's first read)", err)
	}

	// Both reads reach the Agent before either is answered. If they cannot
	// (Reads serialised), neither read sees the other's debt and the count
	// below would pass: that is a failure of its own.
	var arrived atomic.Int32
	var apart atomic.Bool
	both := make(chan struct{})
	fs.with(func(f *feedStub) {
		f.hold = func(id, _ string) {
			if id != newID {
				return
			}
			if arrived.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-time.After(10 * time.Second):
				apart.Store(true)
			}
		}
	})
	type result struct {
		b   symphony.Batch
		err error
	}
	res := make(chan result, 2)
	for range 2 {
		go func() { b, err := df.Read(ctx, ""); res <- result{b, err} }()
	}
	reported := 0
	for range 2 {
		r := <-res
		if r.err != nil || r.b.FeedID != newID {
			t.Fatalf("read: feed %s, %v; want a batch of %s", r.b.FeedID, r.err, newID)
		}
		if r.b.FeedRecreated {
			reported++
		}
	}
	if apart.Load() {
		t.Error("the two reads did not reach the Agent together")
	}
	if reported != 1 {
		t.Errorf("the recreation was reported by %d batches, want 1", reported)
	}
}

func TestDatafeedV2_Delete(t *testing.T) {
	s := newStub(t)
	fs := newFeedStub(t, s)
	fs.with(func(f *feedStub) { f.tagged = []string{"feed_f"} })
	df := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	ctx := context.Background()
	if err := df.Delete(ctx); err == nil {
		t.Error("Delete before Open: no error")
	}
	if _, err := df.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := df.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fs.snapshot().deletes; !slices.Equal(got, []string{"feed_f"}) {
		t.Errorf("deletes = %v", got)
	}
	if strings.Contains(df.Name(), "feed_f") {
		t.Errorf("Name() after Delete = %q", df.Name())
	}
	fs.with(func(f *feedStub) { f.deleteStatus = 500 })
	if _, err := df.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := df.Delete(ctx); err == nil {
		t.Error("Delete answered 500: no error")
	}
}

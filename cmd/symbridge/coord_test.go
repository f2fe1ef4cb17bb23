package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// newTestCoordinator opens a coordinator on its own connection to s, as
// another instance would.
func newTestCoordinator(t *testing.T, s *natstest.Server, cfg kvCoordConfig) *kvCoordinator {
	t.Helper()
	c, err := newKVCoordinator(t.Context(), natstest.JetStream(t, s), cfg)
	if err != nil {
		t.Fatalf("newKVCoordinator: %v", err)
	}
	return c
}

// claimResult is the outcome of a Claim run in a goroutine.
type claimResult struct {
	release func()
	err     error
}

func claimAsync(ctx context.Context, c *kvCoordinator, key string) <-chan claimResult {
	ch := make(chan claimResult, 1)
	go func() {
		r, err := c.Claim(ctx, key)
		ch <- claimResult{r, err}
	}()
	return ch
}

// heldByOther checks that a Claim on key does not succeed within a short
// deadline: the claim is held by someone else.
func heldByOther(t *testing.T, c *kvCoordinator, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	release, err := c.Claim(ctx, key)
	if err == nil {
		release()
		t.Fatal("Claim succeeded while another instance holds the claim")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Claim = %v, want it to wait until its context ends", err)
	}
}

func TestFeedCoordinatorClaimIsExclusive(t *testing.T) {
	s := natstest.RunServer(t)
	cfg := kvCoordConfig{Bucket: "feeds"}
	a, b := newTestCoordinator(t, s, cfg), newTestCoordinator(t, s, cfg)
	key := symphony.FeedKey("acme", "bot", "symbridge")

	releaseA, err := a.Claim(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	heldByOther(t, b, key)
	// Another key is independent.
	other, err := b.Claim(t.Context(), symphony.FeedKey("acme", "bot", "other"))
	if err != nil {
		t.Fatalf("a claim on another key: %v", err)
	}
	other()

	waiting := claimAsync(t.Context(), b, key)
	select {
	case r := <-waiting:
		t.Fatalf("second Claim returned while the first holds it: %v", r.err)
	default:
	}
	releaseA()
	releaseA() // a second release is harmless
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatalf("second Claim after the release: %v", r.err)
		}
		heldByOther(t, a, key)
		r.release()
	case <-time.After(10 * time.Second):
		t.Fatal("second Claim still waiting 10s after the release")
	}
	// Released: the key is gone, the next Claim is immediate.
	if _, err := a.claims.Get(t.Context(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("claim after release: %v, want ErrKeyNotFound", err)
	}
}

// TestFeedCoordinatorClaimMutualExclusion: instances taking and giving back
// the claim on one key in a loop are never two inside at once.
func TestFeedCoordinatorClaimMutualExclusion(t *testing.T) {
	s := natstest.RunServer(t)
	key := symphony.FeedKey("acme", "bot", "symbridge")
	var inside, entered atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		c := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				release, err := c.Claim(t.Context(), key)
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- errors.New("two holders of one claim")
				}
				entered.Add(1)
				_, err = c.claims.Get(t.Context(), key) // a round trip inside
				inside.Add(-1)
				release()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := entered.Load(); n != 20 {
		t.Errorf("%d claims taken, want 20", n)
	}
}

func TestFeedCoordinatorClaimOfDeadHolderLapses(t *testing.T) {
	s := natstest.RunServer(t)
	c := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", ClaimTTL: time.Second})
	key := symphony.FeedKey("acme", "bot", "symbridge")
	// A holder that died right after taking the claim: an entry nobody
	// refreshes.
	if _, err := c.claims.Create(t.Context(), key, []byte(`{"host":"dead","pid":1}`)); err != nil {
		t.Fatal(err)
	}
	heldByOther(t, c, key)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	release, err := c.Claim(ctx, key)
	if err != nil {
		t.Fatalf("the dead holder's claim did not lapse: %v", err)
	}
	defer release()
	e, err := c.claims.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	var h claimHolder
	if err := json.Unmarshal(e.Value(), &h); err != nil || h.PID == 0 || h.Since.IsZero() {
		t.Errorf("holder value %s: %+v, %v", e.Value(), h, err)
	}
}

func TestFeedCoordinatorRefreshKeepsClaim(t *testing.T) {
	s := natstest.RunServer(t)
	const ttl = time.Second
	a := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", ClaimTTL: ttl})
	b := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", ClaimTTL: ttl})
	key := symphony.FeedKey("acme", "bot", "symbridge")
	release, err := a.Claim(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// Only refreshes keep the claim there for three TTLs.
	waitHeld(t, a, key, 3*ttl)
	heldByOther(t, b, key)
	release()
	if _, err := b.claims.Get(t.Context(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("claim after release: %v, want ErrKeyNotFound", err)
	}
}

// waitHeld waits until c's claim on key has been held for d, on the
// server's clock (the time of its last refresh since the time it was taken),
// failing the test at once if the claim disappears meanwhile.
func waitHeld(t *testing.T, c *kvCoordinator, key string, d time.Duration) {
	t.Helper()
	first, err := c.claims.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, d+10*time.Second, func() error {
		e, err := c.claims.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("the claim was lost while held: %v", err)
		}
		if held := e.Created().Sub(first.Created()); held < d {
			return errors.New("held for " + held.String())
		}
		return nil
	})
}

// TestFeedCoordinatorLostClaim: a claim that lapsed while its holder
// stalled, and that another instance took, stays the other's: the stale
// holder's refresh and release do not touch it.
func TestFeedCoordinatorLostClaim(t *testing.T) {
	s := natstest.RunServer(t)
	a := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", ClaimTTL: time.Second})
	b := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", ClaimTTL: time.Second})
	key := symphony.FeedKey("acme", "bot", "symbridge")
	releaseA, err := a.Claim(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// The claim lapses under a's feet (as if a had stalled past the TTL).
	if err := b.claims.Purge(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	releaseB, err := b.Claim(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	// a's refresh runs every TTL/3 and must fail on b's claim.
	waitHeld(t, b, key, time.Second)
	releaseA()
	heldByOther(t, a, key)
}

func TestFeedCoordinatorRecords(t *testing.T) {
	s := natstest.RunServer(t)
	a := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds"})
	b := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds"})
	key := symphony.FeedKey("acme", "bot", "symbridge")

	rec, err := a.Recorded(t.Context(), key)
	if err != nil || rec != (symphony.FeedRecord{}) {
		t.Fatalf("Recorded of a missing key = %+v, %v; want a zero record and nil", rec, err)
	}
	want := symphony.FeedRecord{ID: "abc_f", Created: time.Date(2026, 5, 1, 12, 0, 0, 123, time.UTC)}
	if err := a.Record(t.Context(), key, want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Recorded(t.Context(), key)
	if err != nil || got.ID != want.ID || !got.Created.Equal(want.Created) {
		t.Fatalf("Recorded = %+v, %v; want %+v", got, err, want)
	}
	next := symphony.FeedRecord{ID: "def_f", Created: want.Created.Add(time.Hour)}
	if err := b.Record(t.Context(), key, next); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Recorded(t.Context(), key); err != nil || got.ID != "def_f" {
		t.Errorf("Recorded after a second Record = %+v, %v", got, err)
	}
	if h, err := a.records.History(t.Context(), key); err != nil || len(h) != 2 {
		t.Errorf("history: %d entries, %v; want both records kept", len(h), err)
	}

	// A value that is not a record is an error, not a zero record.
	if _, err := a.records.Put(t.Context(), key, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Recorded(t.Context(), key); err == nil || !strings.HasPrefix(err.Error(), "feed coordination: record ") {
		t.Errorf("Recorded of a corrupt value = %v", err)
	}
}

func TestFeedCoordinatorBuckets(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, s)
	c := newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds", Replicas: 1})
	for _, tc := range []struct {
		kv      jetstream.KeyValue
		name    string
		history int64
		ttl     time.Duration
	}{{c.records, "feeds", recordHistory, 0}, {c.claims, "feeds-claims", 1, defaultClaimTTL}} {
		st, err := tc.kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
		if st.Bucket() != tc.name || st.History() != tc.history || st.TTL() != tc.ttl ||
			info.Config.Storage != jetstream.FileStorage || info.Config.Replicas != 1 {
			t.Errorf("bucket %s: history %d, ttl %s, storage %s, replicas %d", st.Bucket(), st.History(), st.TTL(), info.Config.Storage, info.Config.Replicas)
		}
	}
	// A second instance opens them as they are.
	newTestCoordinator(t, s, kvCoordConfig{Bucket: "feeds"})

	// A claims bucket created by someone else with another max age is used
	// with it; one without a max age is refused: its claims would never lapse.
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "own-claims", TTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if c := newTestCoordinator(t, s, kvCoordConfig{Bucket: "own"}); c.ttl != 3*time.Second {
		t.Errorf("ttl %s, want the existing bucket's 3s", c.ttl)
	}
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "forever-claims"}); err != nil {
		t.Fatal(err)
	}
	_, err := newKVCoordinator(t.Context(), js, kvCoordConfig{Bucket: "forever"})
	if err == nil || !strings.Contains(err.Error(), "feed coordination: bucket forever-claims has no max age") {
		t.Errorf("claims bucket without max age: %v", err)
	}
}

// TestFeedCoordinatorLongestBucket: the longest bucket name config accepts
// makes a valid claims bucket.
func TestFeedCoordinatorLongestBucket(t *testing.T) {
	s := natstest.RunServer(t)
	for n := 245; ; n++ {
		bucket := strings.Repeat("b", n)
		_, err := newKVCoordinator(t.Context(), natstest.JetStream(t, s), kvCoordConfig{Bucket: bucket})
		valid := validBucket(t, bucket)
		if n == 245 && (err != nil || !valid) {
			t.Fatalf("%d characters: %v (config valid: %v)", n, err, valid)
		}
		if n > 245 {
			if valid {
				t.Errorf("config accepts %d characters", n)
			}
			return
		}
	}
}

func validBucket(t *testing.T, bucket string) bool {
	t.Helper()
	cfg, err := config.Load("", []string{"SYMBRIDGE_DATAFEED__COORDINATION__BUCKET=" + bucket}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate() // invalid anyway (no bot): only the bucket's problem counts
	return err == nil || !strings.Contains(err.Error(), "datafeed.coordination.bucket")
}

// TestFeedCoordinatorFallback: run's set-up of the coordinator. Buckets
// that cannot be created (permission denied) give one warning naming the
// cause and no coordinator, and run goes on; a stop during the set-up is
// run's stop.
func TestFeedCoordinatorFallback(t *testing.T) {
	cfg, err := config.Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.RunServer(t, denyKVCreate)
	nc := natstest.Connect(t, s, nats.UserInfo("bridge", "pw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))

	coord, err := feedCoordinatorWithin(t.Context(), cfg, js, logger, time.Second)
	if err != nil || coord != nil {
		t.Fatalf("feedCoordinator = %v, %v; want no coordinator and no error", coord, err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one warning, got %d lines:\n%s", len(lines), logs.String())
	}
	var rec struct{ Level, Msg, Bucket, Err string }
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Level != "WARN" || !strings.HasPrefix(rec.Msg, "datafeed.coordination: ") || rec.Bucket != "symbridge-feeds" ||
		!strings.Contains(rec.Err, `Permissions Violation for Publish to "$JS.API.STREAM.CREATE.KV_symbridge-feeds"`) {
		t.Errorf("warning %+v", rec)
	}

	// The same user, with buckets an operator created: coordination works
	// without the permission to create them.
	admin, err := jetstream.New(natstest.Connect(t, s, nats.UserInfo("admin", "pw")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newKVCoordinator(t.Context(), admin, kvCoordConfig{Bucket: "symbridge-feeds"}); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	coord, err = feedCoordinatorWithin(t.Context(), cfg, js, logger, time.Second)
	if err != nil || coord == nil || logs.Len() != 0 {
		t.Fatalf("with the buckets created: %v, %v, logs %s", coord, err, logs.String())
	}
	release, err := coord.Claim(t.Context(), symphony.FeedKey("acme", "bot", "symbridge"))
	if err != nil {
		t.Fatal(err)
	}
	release()
}

// denyKVCreate is a server whose user "bridge" may not create the default
// buckets (a wildcard matches whole tokens only, never the "KV_" prefix of
// one); "admin" may do anything.
func denyKVCreate(o *server.Options) {
	o.Users = []*server.User{
		{Username: "bridge", Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{
				"$JS.API.STREAM.CREATE.KV_symbridge-feeds", "$JS.API.STREAM.CREATE.KV_symbridge-feeds-claims"}},
		}},
		{Username: "admin", Password: "pw"},
	}
}

func TestFeedCoordinatorStopDuringSetUp(t *testing.T) {
	cfg, err := config.Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.RunServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var logs bytes.Buffer
	coord, err := feedCoordinator(ctx, cfg, natstest.JetStream(t, s), slog.New(slog.NewTextHandler(&logs, nil)))
	if coord != nil || !errors.Is(err, context.Canceled) || logs.Len() != 0 {
		t.Errorf("feedCoordinator = %v, %v, logs %q; want ctx's error and no warning", coord, err, logs.String())
	}
}

func TestCoordinates(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, true},
		{[]string{"SYMBRIDGE_DATAFEED__COORDINATION__ENABLED=false"}, false},
		{[]string{"SYMBRIDGE_DATAFEED__VERSION=v1"}, false},
		{[]string{"SYMBRIDGE_BRIDGE__SOURCE=datahose"}, false},
	} {
		cfg, err := config.Load("", tc.env, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := coordinates(cfg); got != tc.want {
			t.Errorf("%v: coordinates = %v, want %v", tc.env, got, tc.want)
		}
	}
}

// coordPermissions are the publish permissions docs/security.md lists for
// the buckets of datafeed.coordination.bucket b.
func coordPermissions(b string) []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.KV_" + b, "$JS.API.STREAM.INFO.KV_" + b + "-claims",
		"$JS.API.STREAM.CREATE.KV_" + b, "$JS.API.STREAM.CREATE.KV_" + b + "-claims",
		"$JS.API.DIRECT.GET.KV_" + b + ".>", "$JS.API.DIRECT.GET.KV_" + b + "-claims.>",
		"$KV." + b + ".>", "$KV." + b + "-claims.>",
	}
}

// TestFeedCoordinatorDocumentedPermissions: a user with only the documented
// permissions creates the buckets and coordinates, and the server reports
// no violation.
func TestFeedCoordinatorDocumentedPermissions(t *testing.T) {
	s := natstest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "bridge", Password: "pw", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: coordPermissions("feeds")},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}}}
	})
	violations := make(chan error, 10)
	var coords []*kvCoordinator
	for range 2 {
		nc := natstest.Connect(t, s, nats.UserInfo("bridge", "pw"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case violations <- err:
			default:
			}
		}))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		c, err := newKVCoordinator(ctx, js, kvCoordConfig{Bucket: "feeds", ClaimTTL: time.Second})
		cancel()
		if err != nil {
			t.Fatalf("newKVCoordinator: %v (%v)", err, nc.LastError())
		}
		coords = append(coords, c)
	}
	a, b := coords[0], coords[1]
	key := symphony.FeedKey("acme", "bot", "symbridge")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	release, err := a.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	waiting := claimAsync(ctx, b, key) // Create fails, then reads the claim
	waitHeld(t, a, key, time.Second)   // refreshed
	if err := a.Record(ctx, key, symphony.FeedRecord{ID: "abc_f", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if rec, err := b.Recorded(ctx, key); err != nil || rec.ID != "abc_f" {
		t.Fatalf("Recorded = %+v, %v", rec, err)
	}
	release()
	r := <-waiting
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.release()
	select {
	case err := <-violations:
		t.Errorf("the server reported: %v", err)
	default:
	}
}

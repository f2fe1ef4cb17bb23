package symphonytest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/symbridge/symbridge/pkg/symphony"
)

var (
	fanoutID   = regexp.MustCompile(`^[0-9a-f]{32}_f(_[0-9a-f]{5})?$`)
	datahoseID = regexp.MustCompile(`^[0-9a-f]{32}_p_[0-9a-f]{5}$`)
	v1ID       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	bdkPattern = regexp.MustCompile(`^[^\s_]+_f(_[^\s_]+)?$`)
)

// TestEveryEndpointValidates drives every endpoint over real HTTP behind the
// OpenAPI validator; newSim fails the test on any validation failure.
func TestEveryEndpointValidates(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)

	var info agentInfo
	decode(t, c.must(200, "GET", "/agent/v1/info", nil).body, &info)
	if info.Version != DefaultAgentVersion {
		t.Errorf("version %q", info.Version)
	}
	c.login()
	var me struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	decode(t, c.must(200, "GET", "/pod/v2/sessioninfo", nil).body, &me)
	if me.Username != testUser || me.ID == 0 {
		t.Errorf("sessioninfo = %+v", me)
	}

	if r := c.must(200, "GET", "/agent/v5/datafeeds", nil); string(r.body) != "[]" {
		t.Errorf("empty list = %s", r.body)
	}
	first := c.createFeed(nil)
	second := c.createFeed(map[string]any{"tag": "symbridge", "includeInvisible": true})
	for _, id := range []string{first, second} {
		if !fanoutID.MatchString(id) || !bdkPattern.MatchString(id) {
			t.Errorf("feed id %q has not Symphony's format", id)
		}
	}
	if strings.Contains(first, "_f_") || !strings.Contains(second, "_f_") {
		t.Errorf("ids %q, %q: want the first bare _f, then suffixed", first, second)
	}
	var listed []v5Datafeed
	decode(t, c.must(200, "GET", "/agent/v5/datafeeds?tag=symbridge", nil).body, &listed)
	if len(listed) != 1 || listed[0].ID != second || listed[0].Type != "fanout" {
		t.Errorf("list ?tag=symbridge = %+v", listed)
	}

	// An empty long poll, then events of every shape.
	l := c.read(second, "")
	if len(l.Events) != 0 || l.AckID == "" {
		t.Fatalf("idle read = %+v", l)
	}
	g := NewGenerator(GeneratorConfig{Seed: 1})
	var sent [][]byte
	sent = append(sent, g.All()...)
	sent = append(sent, g.Action(symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom)...)
	sent = append(sent, g.Event(symphony.TypeUserJoinedRoom, WithoutID()),
		g.Event(symphony.TypeMessageSent, WithStdBase64StreamID()), g.Event("MESSAGEREACTIONADDED"))
	s.Emit(sent...)
	l = c.read(second, l.AckID)
	if len(l.Events) != len(sent) {
		t.Fatalf("read %d events, want %d", len(l.Events), len(sent))
	}
	for i := range sent {
		if string(l.Events[i]) != string(sent[i]) {
			t.Errorf("event %d changed on the way:\n got %s\nwant %s", i, l.Events[i], sent[i])
		}
	}
	c.read(second, l.AckID) // ack, empty poll

	// Datahose: created by the first read, listed with its own type.
	var dh readBody
	decode(t, c.must(200, "POST", "/agent/v5/events/read", map[string]any{
		"type": "datahose", "tag": "datahose-" + testUser, "eventTypes": []string{"MESSAGESENT"}, "ackId": "", "updatePresence": false,
	}).body, &dh)
	decode(t, c.must(200, "GET", "/agent/v5/datafeeds", nil).body, &listed)
	if len(listed) != 3 || listed[2].Type != "datahose" || !datahoseID.MatchString(listed[2].ID) {
		t.Errorf("list with datahose = %+v", listed)
	}

	// Errors the spec documents.
	c.must(400, "POST", "/agent/v5/datafeeds/"+second+"/read", map[string]any{"ackId": "not-an-ack-id"})
	c.must(204, "DELETE", "/agent/v5/datafeeds/"+first, nil)
	c.must(400, "POST", "/agent/v5/datafeeds/"+first+"/read", map[string]any{"ackId": ""})
	c.must(400, "DELETE", "/agent/v5/datafeeds/"+first, nil)
	bad := *c
	bad.session = "expired"
	bad.must(401, "GET", "/agent/v5/datafeeds", nil)
	k, _ := keys(t)
	c.must(401, "POST", "/login/pubkey/authenticate", map[string]string{"token": loginJWT(t, k, "someone-else", time.Minute)})

	// Datafeed v1.
	var v1 struct{ ID string }
	decode(t, c.must(200, "POST", "/agent/v4/datafeed/create", nil).body, &v1)
	if !v1ID.MatchString(v1.ID) {
		t.Errorf("v1 id %q", v1.ID)
	}
	if r := c.must(204, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil); r.header.Get("X-Warning") == "" {
		t.Error("v1 response without X-Warning")
	}
	s.Emit(g.Event(symphony.TypeRoomCreated), g.Event(symphony.TypeMessageSent))
	var arr []json.RawMessage
	decode(t, c.must(200, "GET", "/agent/v4/datafeed/"+v1.ID+"/read?limit=1", nil).body, &arr)
	if len(arr) != 1 {
		t.Errorf("v1 read with limit=1 gave %d events", len(arr))
	}
	decode(t, c.must(200, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil).body, &arr)
	c.must(400, "GET", "/agent/v4/datafeed/unknown/read", nil)

	st := s.v.Stats()
	if s.v != nil && (st.Requests < 20 || st.Responses < 20 || st.Events < int64(len(sent)) || st.Unspecified != 1) {
		t.Errorf("validator saw too little: %+v", st)
	}
}

func TestLogin(t *testing.T) {
	bot, other := keys(t)
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": testUser, "exp": time.Now().Add(time.Minute).Unix()}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"other key":      loginJWT(t, other, testUser, time.Minute),
		"other user":     loginJWT(t, bot, "intruder", time.Minute),
		"expired":        loginJWT(t, bot, testUser, -time.Second),
		"exp too far":    loginJWT(t, bot, testUser, 10*time.Minute),
		"not RS512":      hs,
		"not a JWT":      "garbage",
		"empty":          "",
		"tampered claim": tamper(loginJWT(t, bot, testUser, time.Minute)),
	} {
		for _, path := range []string{"/login/pubkey/authenticate", "/relay/pubkey/authenticate"} {
			r := c.call("POST", path, map[string]string{"token": tok})
			if r.status != 401 {
				t.Errorf("%s on %s: status %d, want 401", name, path, r.status)
			}
			if tok != "" && strings.Contains(string(r.body), tok) {
				t.Errorf("%s: the error echoes the token", name)
			}
		}
	}
	var tok struct{ Name, Token string }
	decode(t, c.must(200, "POST", "/login/pubkey/authenticate", map[string]string{"token": loginJWT(t, bot, testUser, 240*time.Second)}).body, &tok)
	if tok.Name != "sessionToken" {
		t.Errorf("name %q", tok.Name)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.Token, claims); err != nil {
		t.Fatalf("session token is not a JWT: %v", err)
	}
	if claims["sub"] != testUser || claims["canUseSimplifiedKeyDelivery"] != false || claims["userId"] == nil {
		t.Errorf("session claims = %v", claims)
	}
	decode(t, c.must(200, "POST", "/relay/pubkey/authenticate", map[string]string{"token": loginJWT(t, bot, testUser, 240*time.Second)}).body, &tok)
	if tok.Name != "keyManagerToken" {
		t.Errorf("name %q", tok.Name)
	}
	if st := s.Stats(); st.Auths != 1 || st.KMAuths != 1 || st.AuthFailures != 16 {
		t.Errorf("stats %+v", st)
	}
}

// tamper changes the payload of a JWT without re-signing it.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = strings.TrimRight(parts[1], "=") + "x"
	return strings.Join(parts, ".")
}

func TestKeyManagerTokenAndSKD(t *testing.T) {
	for _, skd := range []bool{false, true} {
		t.Run(fmt.Sprint("SKD=", skd), func(t *testing.T) {
			s := newSim(t, Config{SKD: skd})
			c := newClient(t, s.url)
			c.login()
			c.km = ""
			r := c.call("GET", "/agent/v5/datafeeds", nil)
			if want := map[bool]int{false: 401, true: 200}[skd]; r.status != want {
				t.Errorf("without keyManagerToken: %d, want %d", r.status, want)
			}
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(c.session, claims); err != nil || claims["canUseSimplifiedKeyDelivery"] != skd {
				t.Errorf("claims %v (%v)", claims, err)
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	s := newSim(t, Config{SessionTTL: time.Second})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	eventually(t, 5*time.Second, "the session to expire", func() bool {
		return c.call("GET", "/agent/v5/datafeeds", nil).status == 401
	})
	c.must(401, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
	c.login()
	c.read(id, "") // the feed survived the session

	s.ExpireSessions()
	c.must(401, "GET", "/agent/v5/datafeeds", nil)
	c.login()
	c.must(200, "GET", "/agent/v5/datafeeds", nil)
	if st := s.Stats(); st.Unauthorized != 3 {
		t.Errorf("Unauthorized = %d, want 3", st.Unauthorized)
	}
}

func TestRedeliveryAfterVisibilityTimeout(t *testing.T) {
	s := newSim(t, Config{VisibilityTimeout: 300 * time.Millisecond, MaxBatch: 3})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	g := NewGenerator(GeneratorConfig{Seed: 2})
	s.Emit(g.Mix(3)...)
	first := c.read(id, "")
	if got := serials(t, first.Events); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("first batch %v", got)
	}
	// Not acked. Newer events flow meanwhile; the old ones come back
	// behind them once the visibility timeout passed.
	s.Emit(g.Mix(2)...)
	var got []int64
	ack := ""
	eventually(t, 5*time.Second, "the redelivery", func() bool {
		l := c.read(id, ack)
		ack = l.AckID
		got = append(got, serials(t, l.Events)...)
		return len(got) >= 5
	})
	if !slices.Equal(got, []int64{4, 5, 1, 2, 3}) {
		t.Errorf("deliveries %v, want the newer events then the redelivered ones", got)
	}
	// The late ack of the first batch is accepted and changes nothing.
	c.read(id, first.AckID)
	c.read(id, ack)
	st := s.Stats()
	if st.Redeliveries != 3 || st.EventsDelivered != 8 || st.RepeatAcks != 1 || st.EventsAcked != 5 {
		t.Errorf("stats %+v", st)
	}
	if fi := s.Feeds(); len(fi) != 1 || fi[0].Queued != 0 || fi[0].InFlight != 0 {
		t.Errorf("feeds %+v", fi)
	}
}

func TestOnAckRunsBeforeTheReadProceeds(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	g := NewGenerator(GeneratorConfig{Seed: 3})
	sent := g.Mix(4)
	s.Emit(sent...)
	l := c.read(id, "")

	entered, release := make(chan [][]byte, 1), make(chan struct{})
	s.OnAck(func(feedID string, events [][]byte) {
		if feedID != id {
			t.Errorf("feed %q", feedID)
		}
		entered <- events
		<-release
	})
	done := make(chan readBody, 1)
	go func() {
		var out readBody
		r := c.call("POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": l.AckID})
		if r.status == 200 {
			_ = json.Unmarshal(r.body, &out)
		}
		done <- out
	}()
	acked := <-entered
	if len(acked) != len(sent) {
		t.Fatalf("OnAck got %d events, want %d", len(acked), len(sent))
	}
	for i := range sent {
		if string(acked[i]) != string(sent[i]) {
			t.Errorf("OnAck event %d differs", i)
		}
	}
	select {
	case <-done:
		t.Fatal("the read answered before OnAck returned")
	default:
	}
	if st := s.Stats(); st.Acks != 0 {
		t.Errorf("the ack was applied before OnAck returned: %+v", st)
	}
	close(release)
	<-done
	if st := s.Stats(); st.Acks != 1 || st.EventsAcked != 4 {
		t.Errorf("stats after the ack: %+v", st)
	}
}

func TestConcurrentReadersGetDisjointEvents(t *testing.T) {
	s := newSim(t, Config{MaxBatch: 7})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	g := NewGenerator(GeneratorConfig{Seed: 4})
	const total = 300
	s.Emit(g.Mix(total)...)

	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := *c // own ackId chain, same credentials
			ack := ""
			for {
				var l readBody
				r := rc.call("POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ack})
				if r.status != 200 {
					t.Errorf("read: %d %s", r.status, r.body)
					return
				}
				if err := json.Unmarshal(r.body, &l); err != nil {
					t.Error(err)
					return
				}
				ack = l.AckID
				if len(l.Events) == 0 {
					return
				}
				mu.Lock()
				for _, n := range serials(t, l.Events) {
					seen[n]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("readers saw %d distinct events, want %d", len(seen), total)
	}
	for n, k := range seen {
		if k != 1 {
			t.Errorf("event %d delivered %d times", n, k)
		}
	}
	if st := s.Stats(); st.Redeliveries != 0 || st.EventsDelivered != total {
		t.Errorf("stats %+v", st)
	}
}

func TestBadAndRepeatedAckIDs(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	other := c.createFeed(nil)
	s.Emit(NewGenerator(GeneratorConfig{}).Mix(2)...)
	l := c.read(id, "")
	c.must(400, "POST", "/agent/v5/datafeeds/"+other+"/read", map[string]any{"ackId": l.AckID}) // another feed's ackId
	c.read(id, l.AckID)
	c.read(id, l.AckID) // a client retrying after a lost answer
	st := s.Stats()
	if st.BadAckIDs != 1 || st.Acks != 1 || st.RepeatAcks != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTagFilter(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	a := c.createFeed(map[string]any{"tag": "a"})
	b := c.createFeed(map[string]any{"tag": "b"})
	none := c.createFeed(map[string]any{})
	for q, want := range map[string][]string{"?tag=a": {a}, "?tag=b": {b}, "?tag=zzz": {}, "": {a, b, none}} {
		var l []v5Datafeed
		decode(t, c.must(200, "GET", "/agent/v5/datafeeds"+q, nil).body, &l)
		var ids []string
		for _, f := range l {
			ids = append(ids, f.ID)
		}
		if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
			t.Errorf("list%s = %v, want %v", q, ids, want)
		}
	}
	if fi := s.Feeds(); fi[0].Tag != "a" || fi[2].Tag != "" {
		t.Errorf("feeds %+v", fi)
	}
}

func TestFeedLimits(t *testing.T) {
	s := newSim(t, Config{MaxFeeds: 2, MaxDatahoseFeeds: 1, MaxV1Feeds: 1})
	c := newClient(t, s.url)
	c.login()
	f1, _, f3 := c.createFeed(nil), c.createFeed(nil), c.createFeed(nil)
	c.must(403, "POST", "/agent/v5/datafeeds/"+f3+"/read", map[string]any{"ackId": ""})
	c.must(204, "DELETE", "/agent/v5/datafeeds/"+f1, nil)
	c.read(f3, "") // within the limit again

	dh := func(tag string) map[string]any {
		return map[string]any{"type": "datahose", "tag": tag, "eventTypes": []string{"MESSAGESENT"}}
	}
	c.must(200, "POST", "/agent/v5/events/read", dh("one"))
	c.must(403, "POST", "/agent/v5/events/read", dh("two"))
	c.must(200, "POST", "/agent/v4/datafeed/create", nil)
	c.must(503, "POST", "/agent/v4/datafeed/create", nil)
	if st := s.Stats(); st.FeedLimitRefusals != 3 {
		t.Errorf("FeedLimitRefusals = %d", st.FeedLimitRefusals)
	}
}

func TestIdleExpiryAndDroppedEvents(t *testing.T) {
	s := newSim(t, Config{FeedIdleTTL: 200 * time.Millisecond})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	s.Emit(NewGenerator(GeneratorConfig{}).Mix(5)...)
	eventually(t, 5*time.Second, "the idle feed to expire", func() bool {
		return string(c.must(200, "GET", "/agent/v5/datafeeds", nil).body) == "[]"
	})
	c.must(400, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
	st := s.Stats()
	if st.FeedsExpired != 1 || st.EventsDropped != 5 {
		t.Errorf("stats %+v", st)
	}

	// A recreated feed only sees what comes after it.
	id2 := c.createFeed(nil)
	if id2 == id {
		t.Fatal("feed id reused")
	}
	s.Emit(NewGenerator(GeneratorConfig{SerialBase: 100}).Mix(1)...)
	if got := serials(t, c.read(id2, "").Events); !slices.Equal(got, []int64{101}) {
		t.Errorf("new feed read %v", got)
	}
	if !s.ExpireFeed(id2) || s.ExpireFeed(id2) {
		t.Error("ExpireFeed of a live feed must report true once")
	}
	c.must(400, "POST", "/agent/v5/datafeeds/"+id2+"/read", map[string]any{"ackId": ""})
	if st := s.Stats(); st.EventsDropped != 6 || st.FeedsExpired != 2 {
		t.Errorf("stats %+v", st) // the un-acked event died with its feed
	}
}

func TestDatahoseKeyedByTagAndEventTypes(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	read := func(tag string, types []string, ack string) readBody {
		t.Helper()
		var l readBody
		decode(t, c.must(200, "POST", "/agent/v5/events/read", map[string]any{
			"type": "datahose", "tag": tag, "eventTypes": types, "ackId": ack}).body, &l)
		return l
	}
	a := read("hose", []string{"MESSAGESENT", "ROOMCREATED"}, "")
	if len(s.Feeds()) != 1 {
		t.Fatal("the first read did not create the feed")
	}
	// Same account, tag and types in another order: the same feed, so the
	// first ackId is valid on it.
	read("hose", []string{"ROOMCREATED", "MESSAGESENT", "MESSAGESENT"}, a.AckID)
	read("hose", []string{"MESSAGESENT"}, "")
	read("other", []string{"MESSAGESENT"}, "")
	fi := s.Feeds()
	if len(fi) != 3 {
		t.Fatalf("feeds %+v", fi)
	}
	if !slices.Equal(fi[0].EventTypes, []string{"MESSAGESENT", "ROOMCREATED"}) || fi[0].Tag != "hose" {
		t.Errorf("first feed %+v", fi[0])
	}
	g := NewGenerator(GeneratorConfig{})
	s.Emit(g.Event(symphony.TypeMessageSent), g.Event(symphony.TypeRoomCreated), g.Event(symphony.TypeUserLeftRoom))
	if got := serials(t, read("hose", []string{"MESSAGESENT"}, "").Events); !slices.Equal(got, []int64{1}) {
		t.Errorf("MESSAGESENT feed read %v", got)
	}
	if got := serials(t, read("hose", []string{"ROOMCREATED", "MESSAGESENT"}, "").Events); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("two-type feed read %v", got)
	}
	if st := s.Stats(); st.DatahoseFeedsCreated != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestRejectsMalformedRequests sends what a client must never send, so it
// runs without the validator (which would flag those requests).
func TestRejectsMalformedRequests(t *testing.T) {
	k, _ := keys(t)
	a := New(Config{Username: testUser, PublicKey: &k.PublicKey, LongPoll: 50 * time.Millisecond})
	t.Cleanup(a.Close)
	c := newClient(t, a.Start())
	c.login()
	long := strings.Repeat("x", 101)
	for name, body := range map[string]map[string]any{
		"wrong type":     {"type": "fanout", "tag": "t", "eventTypes": []string{"MESSAGESENT"}},
		"empty tag":      {"type": "datahose", "tag": "", "eventTypes": []string{"MESSAGESENT"}},
		"tag too long":   {"type": "datahose", "tag": strings.Repeat("t", 81), "eventTypes": []string{"MESSAGESENT"}},
		"no event types": {"type": "datahose", "tag": "t", "eventTypes": []string{}},
		"bad event type": {"type": "datahose", "tag": "t", "eventTypes": []string{"MESSAGE_SENT"}},
		"bad scope":      {"type": "datahose", "tag": "t", "eventTypes": []string{"MESSAGESENT"}, "scopes": []string{"ALL"}},
		"missing body":   nil,
		"unknown ackId":  {"type": "datahose", "tag": "t", "eventTypes": []string{"MESSAGESENT"}, "ackId": "nope"},
	} {
		var b any
		if body != nil {
			b = body
		}
		if r := c.call("POST", "/agent/v5/events/read", b); r.status != 400 {
			t.Errorf("%s: status %d, want 400", name, r.status)
		}
	}
	c.must(200, "POST", "/agent/v5/events/read", map[string]any{"type": "datahose", "tag": strings.Repeat("t", 80), "eventTypes": []string{"GENERICSYSTEMEVENT"}})
	c.must(400, "POST", "/agent/v5/datafeeds", map[string]any{"tag": long})
	c.must(400, "GET", "/agent/v5/datafeeds?tag="+long, nil)
	c.must(400, "GET", "/agent/v4/datafeed/x/read?limit=many", nil)
	c.must(404, "GET", "/agent/v9/nothing", nil)
	c.session = ""
	c.must(401, "GET", "/agent/v5/datafeeds", nil)
	c.must(401, "GET", "/pod/v2/sessioninfo", nil)
}

func TestLongPoll(t *testing.T) {
	t.Run("wakes when events arrive", func(t *testing.T) {
		s := newSim(t, Config{LongPoll: time.Minute})
		c := newClient(t, s.url)
		c.login()
		id := c.createFeed(nil)
		done := make(chan readBody, 1)
		go func() { done <- c.read(id, "") }()
		eventually(t, 5*time.Second, "the read to wait", func() bool { return s.Feeds()[0].Readers == 1 })
		s.Emit(NewGenerator(GeneratorConfig{}).Next())
		select {
		case l := <-done:
			if len(l.Events) != 1 {
				t.Errorf("read %d events", len(l.Events))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the long poll did not wake up")
		}
	})
	t.Run("returns when the client goes away", func(t *testing.T) {
		s := newSim(t, Config{LongPoll: time.Minute})
		c := newClient(t, s.url)
		c.login()
		id := c.createFeed(nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan response, 1)
		go func() { done <- c.do(ctx, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""}) }()
		eventually(t, 5*time.Second, "the read to wait", func() bool { return s.Feeds()[0].Readers == 1 })
		cancel()
		if r := <-done; r.err == nil {
			t.Errorf("canceled read answered %d", r.status)
		}
		eventually(t, 5*time.Second, "the server to drop the read", func() bool { return s.Feeds()[0].Readers == 0 })
		if st := s.Stats(); st.Reads != 0 {
			t.Errorf("a canceled read counted as served: %+v", st)
		}
	})
	t.Run("Close releases held polls", func(t *testing.T) {
		k, _ := keys(t)
		a := New(Config{Username: testUser, PublicKey: &k.PublicKey, LongPoll: time.Minute})
		c := newClient(t, a.Start())
		c.login()
		id := c.createFeed(nil)
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.call("POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
			}()
		}
		eventually(t, 5*time.Second, "the reads to wait", func() bool { return a.Feeds()[0].Readers == 3 })
		closed := make(chan struct{})
		go func() { a.Close(); wg.Wait(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close hung on held long polls")
		}
	})
}

func TestDatafeedV1(t *testing.T) {
	s := newSim(t, Config{V1QueueSize: 3})
	c := newClient(t, s.url)
	c.login()
	var v1 struct{ ID string }
	decode(t, c.must(200, "POST", "/agent/v4/datafeed/create", nil).body, &v1)
	g := NewGenerator(GeneratorConfig{})
	s.Emit(g.Mix(3)...)
	var arr []json.RawMessage
	decode(t, c.must(200, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil).body, &arr)
	if got := serials(t, arr); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("v1 read %v", got)
	}
	c.must(204, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil) // consumed: no ack in v1
	s.Emit(g.Mix(4)...)                                          // over the unread capacity
	c.must(400, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil)
	st := s.Stats()
	if st.EventsConsumed != 3 || st.FeedsExpired != 1 || st.EventsDropped != 4 || st.V1FeedsCreated != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEmit(t *testing.T) {
	a := New(Config{})
	defer a.Close()
	a.Emit([]byte(`{"type":"MESSAGESENT"}`), []byte(`{"trunc`))
	st := a.Stats()
	if st.EventsEmitted != 1 || st.InvalidEmits != 1 || st.EventsUnrouted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMalformedEventsAreExempt(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	s.EmitMalformed([]byte(`{"id":"x","type":5}`))
	if l := c.read(id, ""); len(l.Events) != 1 || string(l.Events[0]) != `{"id":"x","type":5}` {
		t.Errorf("read %+v", l)
	}
	if st := s.v.Stats(); s.v != nil && st.Exempt["deliberately malformed event"] != 1 {
		t.Errorf("validator stats %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"LongPoll":   {LongPoll: -1},
		"MaxFeeds":   {MaxFeeds: -1},
		"Faults":     {Faults: &Faults{Rate: 2}},
		"SessionTTL": {SessionTTL: -time.Second},
	} {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the field", name, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Error(err)
	}
	if got := New(Config{}).Config(); got.LongPoll != DefaultLongPoll || got.MaxFeeds != DefaultMaxFeeds || got.VisibilityTimeout != DefaultVisibilityTimeout {
		t.Errorf("defaults not applied: %+v", got)
	}
}

package symphonytest

import (
	"encoding/json"
	"errors"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestEveryFaultIsObservable injects each fault kind into a read and checks
// what a raw HTTP client sees, behind the validator (faults are exempt).
func TestEveryFaultIsObservable(t *testing.T) {
	s := newSim(t, Config{VisibilityTimeout: 300 * time.Millisecond})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(nil)
	g := NewGenerator(GeneratorConfig{Seed: 9})
	readPath := "/agent/v5/datafeeds/" + id + "/read"
	ackBody := map[string]any{"ackId": ""}

	check := func(kind FaultKind, verify func(r response)) {
		t.Helper()
		s.InjectNext(kind)
		r := c.call("POST", readPath, ackBody)
		verify(r)
		if r.err == nil && r.header.Get(FaultHeader) != string(kind) && kind != FaultLatency {
			t.Errorf("%s: %s header = %q", kind, FaultHeader, r.header.Get(FaultHeader))
		}
	}
	check(FaultServerError, func(r response) {
		if r.status != 500 {
			t.Errorf("server-error: status %d", r.status)
		}
	})
	check(FaultTooManyRequests, func(r response) {
		if r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Errorf("too-many-requests: status %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
	})
	check(FaultReset, func(r response) {
		if r.err == nil {
			t.Errorf("reset: got a response %d", r.status)
		}
	})
	start := time.Now()
	check(FaultLatency, func(r response) {
		if r.status != 200 || time.Since(start) < 500*time.Millisecond {
			t.Errorf("latency: status %d after %v", r.status, time.Since(start))
		}
	})

	// Truncation: the client cannot parse the answer, and the events it
	// carried come back after the visibility timeout.
	for _, kind := range []FaultKind{FaultTruncated, FaultTruncatedChunked} {
		s.Emit(g.Mix(3)...)
		check(kind, func(r response) {
			if r.status != 200 || !errors.Is(r.err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: status %d, body error %v", kind, r.status, r.err)
			}
			if json.Valid(r.body) {
				t.Errorf("%s: the body is complete JSON", kind)
			}
			if kind == FaultTruncated && r.header.Get("Content-Length") == "" {
				t.Errorf("%s: no Content-Length", kind)
			}
		})
		var got []int64
		ack := ""
		eventually(t, 5*time.Second, "the truncated batch to be redelivered", func() bool {
			l := c.read(id, ack)
			ack = l.AckID
			got = append(got, serials(t, l.Events)...)
			return len(got) >= 3
		})
		c.read(id, ack)
		if len(got) != 3 {
			t.Errorf("%s: redelivered %v", kind, got)
		}
	}

	check(FaultSessionExpired, func(r response) {
		if r.status != 401 {
			t.Errorf("session-expired: status %d", r.status)
		}
	})
	c.must(401, "GET", "/agent/v5/datafeeds", nil)
	c.login()
	check(FaultFeedExpired, func(r response) {
		if r.status != 400 {
			t.Errorf("feed-expired: status %d", r.status)
		}
	})
	if string(c.must(200, "GET", "/agent/v5/datafeeds", nil).body) != "[]" {
		t.Error("the expired feed is still listed")
	}

	st := s.Stats()
	for _, k := range AllFaultKinds() {
		if st.Faults[k] != 1 {
			t.Errorf("Stats.Faults[%s] = %d, want 1", k, st.Faults[k])
		}
	}
	if vs := s.v.Stats(); s.v != nil && len(vs.Exempt) != len(AllFaultKinds())-1 {
		t.Errorf("validator exemptions %v", vs.Exempt)
	}
}

func TestFaultSchedules(t *testing.T) {
	s := newSim(t, Config{Faults: &Faults{Rate: 1, Kinds: []FaultKind{FaultServerError}, Status: 503}})
	c := newClient(t, s.url)
	c.login() // logins are not targeted by default
	id := c.createFeed(nil)
	for range 3 {
		c.must(503, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
	}

	// A seeded random schedule is reproducible.
	run := func() []int {
		if err := s.SetFaults(Faults{Rate: 0.5, Seed: 42, Kinds: []FaultKind{FaultServerError, FaultTooManyRequests}}); err != nil {
			t.Fatal(err)
		}
		var statuses []int
		for range 12 {
			statuses = append(statuses, c.call("POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""}).status)
		}
		return statuses
	}
	first, second := run(), run()
	if !equalInts(first, second) {
		t.Errorf("same seed, different schedules: %v vs %v", first, second)
	}
	faults := 0
	for _, st := range first {
		if st != 200 {
			faults++
		}
	}
	if faults == 0 || faults == len(first) {
		t.Errorf("rate 0.5 injected %d faults in %d reads", faults, len(first))
	}

	// Other targets, and stopping injection.
	if err := s.SetFaults(Faults{Next: []FaultKind{FaultServerError, FaultServerError}, Targets: []Target{TargetAuth, TargetAdmin}}); err != nil {
		t.Fatal(err)
	}
	c.must(500, "GET", "/agent/v5/datafeeds", nil)
	k, _ := keys(t)
	c.must(500, "POST", "/login/pubkey/authenticate", map[string]string{"token": loginJWT(t, k, testUser, time.Minute)})
	c.must(200, "GET", "/agent/v5/datafeeds", nil)
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	c.must(200, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
	if err := s.SetFaults(Faults{Kinds: []FaultKind{"meteor"}}); err == nil || !strings.Contains(err.Error(), "Kinds") {
		t.Errorf("SetFaults with an unknown kind: %v", err)
	}
	if len(s.Faults().Next) != 0 {
		t.Error("Next not consumed")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFaultsOnOtherEndpoints covers the datahose and v1 reads and the
// non-read fault paths.
func TestFaultsOnOtherEndpoints(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	dh := map[string]any{"type": "datahose", "tag": "t", "eventTypes": []string{"MESSAGESENT"}}
	c.must(200, "POST", "/agent/v5/events/read", dh)
	s.InjectNext(FaultFeedExpired)
	c.must(400, "POST", "/agent/v5/events/read", dh)
	if len(s.Feeds()) != 0 {
		t.Error("datahose feed not expired")
	}
	var v1 struct{ ID string }
	decode(t, c.must(200, "POST", "/agent/v4/datafeed/create", nil).body, &v1)
	s.InjectNext(FaultFeedExpired)
	c.must(400, "GET", "/agent/v4/datafeed/"+v1.ID+"/read", nil)
	s.Emit(NewGenerator(GeneratorConfig{}).Mix(2)...)

	if err := s.SetFaults(Faults{Next: []FaultKind{FaultFeedExpired, FaultTruncated}, Targets: []Target{TargetAdmin, TargetInfo}}); err != nil {
		t.Fatal(err)
	}
	c.must(400, "GET", "/agent/v5/datafeeds", nil)
	if r := c.call("GET", "/agent/v1/info", nil); r.err == nil {
		t.Error("truncated info parsed fine")
	}
}

// TestValidatorCatchesViolations proves the validator fails on what breaks
// the spec, so that a clean run means something.
func TestValidatorCatchesViolations(t *testing.T) {
	v, err := spec.NewValidator(specDir(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(w http.ResponseWriter){
		"/agent/v5/datafeeds/x_f/read": func(w http.ResponseWriter) { // events not an array
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"events":"nope","ackId":"a"}`))
		},
		"/agent/v5/events/read": func(w http.ResponseWriter) { // an event without payload
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"events":[{"id":"a","type":"MESSAGESENT","timestamp":1,"initiator":{"user":{"userId":1}}}],"ackId":"a"}`))
		},
		"/agent/v5/datafeeds": func(w http.ResponseWriter) { // undocumented status
			w.WriteHeader(http.StatusTeapot)
		},
		"/agent/v1/info": func(w http.ResponseWriter) { // wrong field type
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"version":25}`))
		},
	}
	mux := http.NewServeMux()
	for path, h := range bad {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { h(w) })
	}
	var reported []spec.Failure
	srv := newTestServer(t, v.Middleware(mux, func(f spec.Failure) { reported = append(reported, f) }))
	post := func(path, body string, hdr map[string]string) {
		req, _ := http.NewRequest("POST", srv+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tok := map[string]string{"sessionToken": "s"}
	post("/agent/v5/datafeeds/x_f/read", `{"ackId":""}`, tok)
	post("/agent/v5/events/read", `{"type":"datahose","tag":"t","eventTypes":["MESSAGESENT"]}`, tok)
	post("/agent/v5/datafeeds", `{}`, nil) // no sessionToken, and a 418
	resp, err := http.Get(srv + "/agent/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	post("/agent/v5/events/read", `{"type":"datahose","tag":""}`, tok) // tag too short

	fails := v.Failures()
	if len(fails) != len(reported) {
		t.Errorf("reported %d of %d failures", len(reported), len(fails))
	}
	want := []string{"x_f/read", "event 0", "sessionToken", "418", "/agent/v1/info", "tag"}
	all := ""
	for _, f := range fails {
		all += f.Error() + "\n"
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no failure mentioning %q in:\n%s", w, all)
		}
	}
}

func TestRoundTripperValidates(t *testing.T) {
	v, err := spec.NewValidator(specDir(t))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys(t)
	a := New(Config{Username: testUser, PublicKey: &k.PublicKey, LongPoll: 50 * time.Millisecond})
	t.Cleanup(a.Close)
	c := newClient(t, a.Start())
	c.hc.Transport = v.RoundTripper(nil, nil)
	c.login()
	id := c.createFeed(nil)
	a.Emit(NewGenerator(GeneratorConfig{}).All()...)
	c.read(id, "")
	a.InjectNext(FaultServerError)
	c.must(500, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
	c.must(200, "GET", "/pod/v2/sessioninfo", nil)
	if f := v.Failures(); len(f) != 0 {
		t.Errorf("failures: %v", f)
	}
	st := v.Stats()
	if st.Requests != 5 || st.Responses != 4 || st.Events != 17 || st.Exempt["injected fault: server-error"] != 1 || st.Unspecified != 1 {
		t.Errorf("stats %+v", st)
	}
	// And it does catch a bad request.
	c.session = ""
	c.call("GET", "/agent/v5/datafeeds", nil)
	if len(v.Failures()) != 1 {
		t.Errorf("a request without sessionToken passed: %v", v.Failures())
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

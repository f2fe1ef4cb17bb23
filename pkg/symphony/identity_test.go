package symphony

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func mustParse(t testing.TB, raw string) Event {
	t.Helper()
	ev := ParseEvent([]byte(raw))
	if ev.Err != nil {
		t.Fatalf("ParseEvent(%.60s...): %v", raw, ev.Err)
	}
	return ev
}

func msgIDOf(t testing.TB, raw string) string {
	t.Helper()
	ev := mustParse(t, raw)
	return MsgID(&ev)
}

// checkMsgIDFormat: 49 URL-safe characters behind the rule's prefix.
func checkMsgIDFormat(t testing.TB, id, prefix string) {
	t.Helper()
	if len(id) != 49 || !strings.HasPrefix(id, prefix) {
		t.Errorf("id %q: want %q and 49 characters", id, prefix)
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		t.Errorf("id %q has %q, not URL-safe", id, id[i])
	}
}

// allSampleEvents returns every event of the sample files; none on a plain
// clone without ../shared, where its callers run on syntheticEvents alone.
func allSampleEvents(t testing.TB) []Event {
	t.Helper()
	var evs []Event
	for _, s := range eventSamples {
		body, ok := optionalSample(t, s.file)
		if !ok {
			return nil
		}
		var (
			b   Batch
			err error
		)
		if s.array {
			b, err = DecodeEventArray(body)
		} else {
			b, err = DecodeEventList(body)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		evs = append(evs, b.Events...)
	}
	return evs
}

func TestMsgIDFormat(t *testing.T) {
	evs := allSampleEvents(t)
	for _, raw := range syntheticEvents {
		evs = append(evs, mustParse(t, raw))
	}
	for i := range evs {
		prefix := "sb2-i-"
		if evs[i].ID == "" {
			prefix = "sb1-h-"
		}
		checkMsgIDFormat(t, MsgID(&evs[i]), prefix)
	}
	checkMsgIDFormat(t, RawMsgID([]byte("not json")), "sb1-r-")
	checkMsgIDFormat(t, RawMsgID(nil), "sb1-r-")
}

// TestMsgIDCollisions: events Symphony sends as distinct get distinct ids,
// and one event delivered again (even re-serialised) keeps its id.
func TestMsgIDCollisions(t *testing.T) {
	joined2 := strings.Replace(evUserJoined, `"userId":344147139494863`, `"userId":344147139494864`, 1)
	roomEv := func(id, typ, key, streamID string) string {
		return `{"id":"` + id + `","timestamp":1,"type":"` + typ + `","initiator":{"user":{"userId":1}},` +
			`"payload":{"` + key + `":{"stream":{"streamId":"` + streamID + `","streamType":"ROOM"}}}}`
	}
	msgEv := func(envelopeMsgID string) string {
		return `{"id":"e1","messageId":"` + envelopeMsgID + `","timestamp":1,"type":"MESSAGESENT",` +
			`"payload":{"messageSent":{"message":{"messageId":"n","stream":{"streamId":"s","streamType":"IM"}}}}}`
	}
	noID := func(ts, user, text string) string {
		return `{"timestamp":` + ts + `,"type":"USERJOINEDROOM","initiator":{"user":{"userId":` + user + `}},` +
			`"payload":{"userJoinedRoom":{"stream":{"streamId":"s"},"affectedUser":{"userId":2,"displayName":"` + text + `"}}}}`
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"USERJOINEDROOM of one action, differing only in the affected user", evUserJoined, joined2, false},
		{"same id, different type", roomEv("x", "ROOMCREATED", "roomCreated", "s"), roomEv("x", "ROOMUPDATED", "roomUpdated", "s"), false},
		{"same id and type, different stream", roomEv("x", "ROOMCREATED", "roomCreated", "s1"), roomEv("x", "ROOMCREATED", "roomCreated", "s2"), false},
		{"same id, type and stream, different message id", msgEv("m1"), msgEv("m2"), false},
		{"same id, type, stream and users, different timestamp (an id drawn again by another action)",
			roomEv("x", "ROOMCREATED", "roomCreated", "s"),
			strings.Replace(roomEv("x", "ROOMCREATED", "roomCreated", "s"), `"timestamp":1`, `"timestamp":2`, 1), false},
		{"same id, different affected-user list", evRequestedToJoin,
			strings.Replace(evRequestedToJoin, `{"userId":11}`, `{"userId":12}`, 1), false},
		{"fields are length-prefixed (id AB + type C vs id A + type BC: both ABC joined)", `{"id":"AB","type":"C"}`, `{"id":"A","type":"BC"}`, false},
		{"with id: standard and URL-safe stream id are one stream",
			roomEv("x", "ROOMCREATED", "roomCreated", "ab/c+d=="), roomEv("x", "ROOMCREATED", "roomCreated", "ab_c-d"), true},
		{"with id: non-identity fields do not count (display name)", evUserJoined,
			strings.Replace(evUserJoined, `"displayName":"Joiner"`, `"displayName":"Renamed"`, 1), true},
		{"with id: re-serialised with other key order and whitespace", evUserJoined, reserialise(t, evUserJoined), true},
		{"without id: payloads differ", noID("1", "1", "a"), noID("1", "1", "b"), false},
		{"without id: timestamps differ", noID("1", "1", "a"), noID("2", "1", "a"), false},
		{"without id: initiators differ", noID("1", "1", "a"), noID("1", "3", "a"), false},
		{"without id: types differ", evConnAccepted,
			strings.Replace(strings.Replace(evConnAccepted, "CONNECTIONACCEPTED", "CONNECTIONREQUESTED", 1),
				"connectionAccepted", "connectionRequested", 1), false},
		{"without id: re-serialised with other key order and whitespace", evConnAccepted, reserialise(t, evConnAccepted), true},
		{"without id: hand-written reordering", noID("1", "1", "a"),
			"{\n  \"payload\": {\"userJoinedRoom\": {\"affectedUser\": {\"displayName\": \"a\", \"userId\": 2},\n" +
				"  \"stream\": {\"streamId\": \"s\"}}},\n  \"initiator\": {\"user\": {\"userId\": 1}},\n" +
				"  \"type\": \"USERJOINEDROOM\", \"timestamp\": 1\n}", true},
		{"without id: escaped and literal unicode", noID("1", "1", "é<"), noID("1", "1", `\u00e9\u003c`), true},
		{"without id or payload: re-serialised", `{"type":"BRANDNEW","timestamp":5,"extra":{"b":1,"a":2}}`,
			"{ \"extra\" : { \"a\" : 2, \"b\" : 1 }, \"timestamp\" : 5, \"type\" : \"BRANDNEW\" }", true},
		{"without id or payload: content differs", `{"type":"BRANDNEW","timestamp":5,"extra":1}`,
			`{"type":"BRANDNEW","timestamp":5,"extra":2}`, false},
		{"with and without id", evConnRequested, strings.Replace(evConnRequested, `"id":"HHZFPX",`, "", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := msgIDOf(t, tt.a), msgIDOf(t, tt.b)
			if (a == b) != tt.same {
				t.Errorf("MsgID %s and %s: same=%v, want %v\n a: %s\n b: %s", a, b, a == b, tt.same, tt.a, tt.b)
			}
		})
	}
}

// reserialise decodes raw and encodes it again with sorted keys and
// indentation, as an Agent might on redelivery.
func reserialise(t testing.TB, raw string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) == raw {
		t.Fatal("re-serialisation changed nothing")
	}
	return string(out)
}

// TestMsgIDStable: the id depends only on the event, across parses, copies
// and the way the event arrived (a list, an array or alone).
func TestMsgIDStable(t *testing.T) {
	evs := allSampleEvents(t)
	for _, raw := range syntheticEvents {
		evs = append(evs, mustParse(t, raw))
	}
	for i := range evs {
		want := MsgID(&evs[i])
		again := ParseEvent(bytes.Clone(evs[i].Raw))
		if got := MsgID(&again); got != want {
			t.Errorf("event %d: MsgID %s on a second parse, %s first", i, got, want)
		}
		if got := MsgID(&evs[i]); got != want {
			t.Errorf("event %d: MsgID changed between calls", i)
		}
		list := `{"ackId":"a","events":[` + string(evs[i].Raw) + `]}`
		b, err := DecodeEventList([]byte(list))
		if err != nil {
			t.Fatal(err)
		}
		if got := MsgID(&b.Events[0]); got != want {
			t.Errorf("event %d: MsgID %s inside a list, %s alone", i, got, want)
		}
	}
}

// TestMsgIDGolden pins the rule: changing it changes the ids of events
// already stored, so a redelivery across an upgrade inside the duplicate
// window would be stored twice. Change these values only together with the
// rule's version prefix (each rule has its own: sb2-i, sb1-h, sb1-r). Each
// value is also rebuilt here from the documented rule (length-prefixed
// fields, SHA-256, unpadded base64url).
func TestMsgIDGolden(t *testing.T) {
	rule := func(prefix string, fields ...string) string {
		var b strings.Builder
		for _, f := range fields {
			b.WriteString(strconv.Itoa(len(f)) + ":" + f)
		}
		sum := sha256.Sum256([]byte(b.String()))
		return prefix + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	tests := []struct{ name, got, rule, want string }{
		{"with id", msgIDOf(t, evUserJoined),
			rule("sb2-i-", "9rc1dr", "USERJOINEDROOM", "1700000000000", "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA", "m-join", "344147139494863"),
			"sb2-i-7M4rI0wl-eCDAdny3Be_KO2FOQf42vOnRa6bqDKGUto"},
		{"without id", msgIDOf(t, evConnAccepted),
			rule("sb1-h-", "CONNECTIONACCEPTED", "1700000000003", "2", `{"connectionAccepted":{"fromUser":{"userId":1}}}`),
			"sb1-h-O4JJNils6xbTbnGqcH-OGtrfJQFbLJzvFl1dlaswuJg"},
		{"without id or payload", msgIDOf(t, `{ "type" : "X", "timestamp" : 1 }`),
			rule("sb1-h-", "X", "1", "0", `{"timestamp":1,"type":"X"}`),
			"sb1-h-jl6-07aLrcDKFlokapDlaJA7SJGQTZ-y3M8RSwF6PVA"},
		{"raw", RawMsgID([]byte(`{"type":`)), func() string {
			sum := sha256.Sum256([]byte(`{"type":`))
			return "sb1-r-" + base64.RawURLEncoding.EncodeToString(sum[:])
		}(), "sb1-r-01aqRDlN-55tYtHuAfoOZ2EP9bQtk3keRMJzGQHH32Y"},
	}
	for _, tt := range tests {
		if tt.got != tt.rule || tt.got != tt.want {
			t.Errorf("%s: MsgID = %s, by the documented rule %s, pinned %s", tt.name, tt.got, tt.rule, tt.want)
		}
	}
}

func TestRawMsgID(t *testing.T) {
	raw := []byte(`{"type": 5}`)
	a := RawMsgID(raw)
	if b := RawMsgID(bytes.Clone(raw)); a != b {
		t.Errorf("RawMsgID unstable: %s, %s", a, b)
	}
	if b := RawMsgID([]byte(`{"type":5}`)); a == b {
		t.Error("RawMsgID is over the raw bytes: different bytes must give different ids")
	}
	ev := ParseEvent(raw)
	if MsgID(&ev) == a {
		t.Error("RawMsgID and MsgID share a value")
	}
}

// TestMsgIDInvalidUTF8InID: ids that differ only in invalid UTF-8 bytes
// decode to the same string (U+FFFD) but are different events.
func TestMsgIDInvalidUTF8InID(t *testing.T) {
	mk := func(id string) []byte {
		return []byte(`{"id":"` + id + `","type":"ROOMCREATED","timestamp":1,"payload":{"roomCreated":{"stream":{"streamId":"s1"}}}}`)
	}
	a, b := ParseEvent(mk("ab\xffc")), ParseEvent(mk("ab\xfec"))
	if a.ID != b.ID {
		t.Skipf("the decoder keeps invalid bytes (%q, %q): no collision to guard against", a.ID, b.ID)
	}
	if MsgID(&a) == MsgID(&b) {
		t.Errorf("ids differing only in invalid UTF-8 share Msg-Id %s", MsgID(&a))
	}
	again := ParseEvent(mk("ab\xffc"))
	if MsgID(&a) != MsgID(&again) {
		t.Error("the Msg-Id of a redelivered event with invalid UTF-8 in its id changed")
	}
}

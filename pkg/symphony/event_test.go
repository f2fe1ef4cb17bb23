package symphony

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/testshared"
)

// samplesRoot returns ../shared/symphony-samples beside the repository, for
// the conformance tests (listed in .ci/conformance-tests): the samples are
// reference data kept outside the repository, so a plain clone skips them
// (CI has them: there a missing directory fails the test).
func samplesRoot(t testing.TB) string {
	t.Helper()
	return testshared.Path(t, "symphony-samples")
}

// optionalSample is readSample for the tests that also run on the synthetic
// events alone: false on a plain clone without ../shared (testshared.Dir).
func optionalSample(t testing.TB, name string) ([]byte, bool) {
	t.Helper()
	root, ok := testshared.Dir(t, "symphony-samples")
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesRoot(t), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sample files holding events, and how they are shaped.
var eventSamples = []struct {
	file  string
	array bool // a bare array (datafeed v1) rather than a V5EventList
}{
	{"bdk-java/read_datafeed.json", true},
	{"bdk-java-legacy/read_datafeedv2.json", false},
	{"bdk-java-legacy/read_datafeedv5.json", false},
}

// Sample JSON files that are not event feeds (feed list/create responses,
// session and agent info): DecodeEventList must refuse them.
var nonEventSamples = []string{
	"bdk-java-legacy/create_datafeedv2.json",
	"bdk-java-legacy/list_datafeedv2.json",
	"bdk-java/bot_info.json",
	"bdk-python/agent_info.json",
}

// routing is the part of an Event the tests compare (not Raw, not Err).
type routing struct {
	ID, Type, MessageID, StreamID, StreamType string
	Timestamp, InitiatorUserID                int64
	HasStream                                 bool
	AffectedUserIDs                           []int64
}

func routingOf(ev *Event) routing {
	return routing{ID: ev.ID, Type: ev.Type, MessageID: ev.MessageID, StreamID: ev.StreamID,
		StreamType: ev.StreamType, Timestamp: ev.Timestamp, InitiatorUserID: ev.InitiatorUserID,
		HasStream: ev.HasStream, AffectedUserIDs: ev.AffectedUserIDs}
}

// arrayElements returns the exact bytes of each element of the JSON array
// that opens at src[open]. It tracks strings and nesting itself, so the
// check of Raw does not lean on encoding/json (which produced Raw).
func arrayElements(t *testing.T, src []byte, open int) [][]byte {
	t.Helper()
	if open < 0 || src[open] != '[' {
		t.Fatalf("no array at offset %d", open)
	}
	var out [][]byte
	depth, start, inString, escaped := 0, -1, false, false
	elem := func(i int) {
		if start >= 0 {
			out = append(out, bytes.TrimRight(src[start:i], " \t\r\n"))
		}
		start = -1
	}
	for i := open; i < len(src); i++ {
		c := src[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if depth == 1 && start < 0 && !strings.ContainsRune(" \t\r\n,]", rune(c)) {
			start = i
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				elem(i)
				return out
			}
		case ',':
			if depth == 1 {
				elem(i)
			}
		}
	}
	t.Fatal("unterminated array")
	return nil
}

func TestDecodeSamples(t *testing.T) {
	msg := routing{ID: "ulPr8a:eFFDL7", Type: TypeMessageSent, Timestamp: 1536346282592,
		InitiatorUserID: 1456852, HasStream: true, StreamType: "ROOM"}
	want := map[string]struct {
		ackID  string
		events []routing
	}{
		"bdk-java/read_datafeed.json": {"", []routing{func() routing {
			r := msg
			r.MessageID, r.StreamID = "CszQa6uPAA9V...", "wTmSDJSNPXgB..."
			return r
		}()}},
		// The envelope messageId differs from the nested one: the envelope wins.
		"bdk-java-legacy/read_datafeedv2.json": {"ack_id_string", []routing{func() routing {
			r := msg
			r.MessageID, r.StreamID = "CszQa6uPAA9V", "wTmSDJSNPXgB"
			return r
		}()}},
		// No envelope messageId: the nested message's id is used.
		"bdk-java-legacy/read_datafeedv5.json": {"ack_id_string", []routing{func() routing {
			r := msg
			r.ID, r.MessageID, r.StreamID = "eventId", "CszQa6uPAA9", "wTmSDJSNPXgB"
			return r
		}()}},
	}
	for _, s := range eventSamples {
		t.Run(s.file, func(t *testing.T) {
			body := readSample(t, s.file)
			orig := bytes.Clone(body)
			var (
				b    Batch
				err  error
				open int
			)
			if s.array {
				b, err = DecodeEventArray(body)
				open = bytes.IndexByte(body, '[')
			} else {
				b, err = DecodeEventList(body)
				k := bytes.Index(body, []byte(`"events"`))
				open = k + bytes.IndexByte(body[k:], '[')
			}
			if err != nil {
				t.Fatal(err)
			}
			w := want[s.file]
			if b.AckID != w.ackID {
				t.Errorf("AckID = %q, want %q", b.AckID, w.ackID)
			}
			elems := arrayElements(t, body, open)
			if len(b.Events) != len(elems) || len(b.Events) != len(w.events) {
				t.Fatalf("%d events, %d array elements in the file, want %d", len(b.Events), len(elems), len(w.events))
			}
			for i := range b.Events {
				ev := &b.Events[i]
				if ev.Err != nil {
					t.Errorf("event %d: %v", i, ev.Err)
				}
				if got := routingOf(ev); !reflect.DeepEqual(got, w.events[i]) {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w.events[i])
				}
				if !bytes.Equal(ev.Raw, elems[i]) {
					t.Errorf("event %d: Raw differs from the bytes in the file:\n got %q\nwant %q", i, ev.Raw, elems[i])
				}
			}
			if !bytes.Equal(body, orig) {
				t.Error("decoding modified the response body")
			}
		})
	}
	for _, f := range nonEventSamples {
		t.Run(f, func(t *testing.T) {
			_, err := DecodeEventList(readSample(t, f))
			if !errors.Is(err, ErrBadResponse) {
				t.Errorf("DecodeEventList = %v, want ErrBadResponse", err)
			}
		})
	}
}

// TestSamplesAllClassified makes a new JSON file in the samples fail until
// it is added to eventSamples or nonEventSamples, so no sample goes untested.
func TestSamplesAllClassified(t *testing.T) {
	root := samplesRoot(t)
	known := slices.Clone(nonEventSamples)
	for _, s := range eventSamples {
		known = append(known, s.file)
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if !slices.Contains(known, filepath.ToSlash(rel)) {
			t.Errorf("sample %s is not covered by the decoder tests", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Events with the shapes Symphony documents (trimmed), used by the tolerance
// table and as fuzz seeds.
var (
	evUserJoined = `{"id":"9rc1dr","messageId":"m-join","timestamp":1700000000000,"type":"USERJOINEDROOM",` +
		`"initiator":{"user":{"userId":344147139494862,"displayName":"Owner"}},` +
		`"payload":{"userJoinedRoom":{"stream":{"streamId":"_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA","streamType":"ROOM","roomName":"r"},` +
		`"affectedUser":{"userId":344147139494863,"displayName":"Joiner"}}}}`
	evElements = `{"id":"V2Jdlz","timestamp":1700000000001,"type":"SYMPHONYELEMENTSACTION",` +
		`"initiator":{"user":{"userId":7}},` +
		`"payload":{"symphonyElementsAction":{"stream":{"streamId":"iMft8PA/ibYc9hgOEb7+EX///oGUp9ladA=="},` +
		`"formMessageId":"ZzZ+ZzZ/ZzZ==_1","formId":"f","formValues":{"action":"go"}}}}`
	evConnRequested = `{"id":"HHZFPX","timestamp":1700000000002,"type":"CONNECTIONREQUESTED",` +
		`"initiator":{"user":{"userId":1}},"payload":{"connectionRequested":{"toUser":{"userId":2}}}}`
	evConnAccepted = `{"timestamp":1700000000003,"type":"CONNECTIONACCEPTED",` +
		`"initiator":{"user":{"userId":2}},"payload":{"connectionAccepted":{"fromUser":{"userId":1}}}}`
	evRequestedToJoin = `{"id":"chiKiF","messageId":"m-req","timestamp":1700000000004,"type":"USERREQUESTEDTOJOINROOM",` +
		`"initiator":{"user":{"userId":5}},"payload":{"userRequestedToJoinRoom":{"stream":{"streamId":"s-req","members":[]},` +
		`"affectedUsers":[{"userId":10},{"userId":11}]}}}`
	evSharedPost = `{"id":"sp1","timestamp":1700000000005,"type":"SHAREDPOST","initiator":{"user":{"userId":3}},` +
		`"payload":{"sharedPost":{"message":{"messageId":"post-m","stream":{"streamId":"wall","streamType":"POST"}},` +
		`"sharedMessage":{"messageId":"orig","stream":{"streamId":"other","streamType":"ROOM"}}}}}`
	evGeneric = `{"id":"g1","messageId":"gm","timestamp":1700000000006,"type":"GENERICSYSTEMEVENT","initiator":{"user":{"userId":4}},` +
		`"payload":{"genericSystemEvent":{"stream":{"streamId":"gs","external":false,"crossPod":false},` +
		`"eventTimestamp":1,"sourceSystem":"s","eventSubtype":"call.started","parameters":{"a":1}}}}`
	evUnknownType = `{"id":"u1","timestamp":1700000000007,"type":"USERMENTIONED.V2*","initiator":{"user":{"userId":6}},` +
		`"payload":{"userMentioned":{"stream":{"streamId":"us","streamType":"IM"},"affectedUser":{"userId":8}}}}`
	evRoomUpdatedNoStream = `{"id":"ru","timestamp":1700000000008,"type":"ROOMUPDATED","initiator":{"user":{"userId":9}},` +
		`"payload":{"roomUpdated":{"newRoomProperties":{"name":"x"}}}}`
	evSuppressed = `{"id":"ms","timestamp":1700000000009,"type":"MESSAGESUPPRESSED","initiator":{"user":{"userId":9}},` +
		`"payload":{"messageSuppressed":{"messageId":"sup-m","stream":{"streamId":"ss"}}}}`
)

var syntheticEvents = []string{evUserJoined, evElements, evConnRequested, evConnAccepted, evRequestedToJoin,
	evSharedPost, evGeneric, evUnknownType, evRoomUpdatedNoStream, evSuppressed}

func TestParseEventTolerance(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want routing
	}{
		{"user joined room", evUserJoined, routing{ID: "9rc1dr", Type: TypeUserJoinedRoom, MessageID: "m-join",
			Timestamp: 1700000000000, InitiatorUserID: 344147139494862, HasStream: true,
			StreamID: "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA", StreamType: "ROOM", AffectedUserIDs: []int64{344147139494863}}},
		{"standard base64 stream id normalised, form message id", evElements, routing{ID: "V2Jdlz",
			Type: TypeSymphonyElementsAction, MessageID: "ZzZ+ZzZ/ZzZ==_1", Timestamp: 1700000000001,
			InitiatorUserID: 7, HasStream: true, StreamID: "iMft8PA_ibYc9hgOEb7-EX___oGUp9ladA"}},
		{"connection requested: no stream, toUser", evConnRequested, routing{ID: "HHZFPX",
			Type: TypeConnectionRequested, Timestamp: 1700000000002, InitiatorUserID: 1, AffectedUserIDs: []int64{2}}},
		{"connection accepted: no id, fromUser", evConnAccepted, routing{Type: TypeConnectionAccepted,
			Timestamp: 1700000000003, InitiatorUserID: 2, AffectedUserIDs: []int64{1}}},
		{"affected users, stream without type", evRequestedToJoin, routing{ID: "chiKiF",
			Type: TypeUserRequestedToJoinRoom, MessageID: "m-req", Timestamp: 1700000000004, InitiatorUserID: 5,
			HasStream: true, StreamID: "s-req", AffectedUserIDs: []int64{10, 11}}},
		{"shared post routes by its own message", evSharedPost, routing{ID: "sp1", Type: TypeSharedPost,
			MessageID: "post-m", Timestamp: 1700000000005, InitiatorUserID: 3, HasStream: true,
			StreamID: "wall", StreamType: "POST"}},
		{"generic system event", evGeneric, routing{ID: "g1", Type: TypeGenericSystemEvent, MessageID: "gm",
			Timestamp: 1700000000006, InitiatorUserID: 4, HasStream: true, StreamID: "gs"}},
		{"unknown type with a single payload key", evUnknownType, routing{ID: "u1", Type: "USERMENTIONED.V2*",
			Timestamp: 1700000000007, InitiatorUserID: 6, HasStream: true, StreamID: "us", StreamType: "IM",
			AffectedUserIDs: []int64{8}}},
		{"known type without a stream", evRoomUpdatedNoStream, routing{ID: "ru", Type: TypeRoomUpdated,
			Timestamp: 1700000000008, InitiatorUserID: 9}},
		{"stream without streamType", evSuppressed, routing{ID: "ms", Type: TypeMessageSuppressed,
			MessageID: "sup-m", Timestamp: 1700000000009, InitiatorUserID: 9, HasStream: true, StreamID: "ss"}},
		{"type only", `{"type":"ROOMCREATED"}`, routing{Type: TypeRoomCreated}},
		{"unknown type, no payload", `{"id":"x","type":"BRANDNEW"}`, routing{ID: "x", Type: "BRANDNEW"}},
		{"unknown type, several payload keys", `{"type":"BRANDNEW","payload":{"a":{"stream":{"streamId":"s"}},"b":{}}}`,
			routing{Type: "BRANDNEW"}},
		{"payload key of another type ignored", `{"type":"MESSAGESENT","payload":{"roomCreated":{"stream":{"streamId":"s"}}}}`,
			routing{Type: TypeMessageSent}},
		{"payload value not an object", `{"type":"MESSAGESENT","payload":{"messageSent":"text"}}`, routing{Type: TypeMessageSent}},
		{"nulls", `{"id":null,"type":"ROOMCREATED","timestamp":null,"initiator":null,"payload":null}`, routing{Type: TypeRoomCreated}},
		{"null user id skipped", `{"type":"USERLEFTROOM","payload":{"userLeftRoom":{"stream":{"streamId":"s"},"affectedUser":{"userId":null}}}}`,
			routing{Type: TypeUserLeftRoom, HasStream: true, StreamID: "s"}},
		{"stream with null id", `{"type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":null,"streamType":"ROOM"}}}}`,
			routing{Type: TypeRoomCreated, HasStream: true, StreamType: "ROOM"}},
		// encoding/json accepts a quoted number for json.Number: tolerated.
		{"numbers as strings", `{"type":"ROOMCREATED","timestamp":"17","initiator":{"user":{"userId":"42"}}}`,
			routing{Type: TypeRoomCreated, Timestamp: 17, InitiatorUserID: 42}},
		{"extra fields and diagnostic", `{"type":"MESSAGESENT","diagnostic":"could not decrypt","new":[1,{"x":2}],` +
			`"payload":{"messageSent":{"message":{"messageId":"m","stream":{"streamId":"a+b","streamType":"IM"}}}}}`,
			routing{Type: TypeMessageSent, MessageID: "m", HasStream: true, StreamID: "a-b", StreamType: "IM"}},
		{"surrounding whitespace", " \n\t{\"type\":\"ROOMCREATED\"}\n ", routing{Type: TypeRoomCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			ev := ParseEvent(raw)
			if ev.Err != nil {
				t.Fatalf("Err = %v, want nil", ev.Err)
			}
			if got := routingOf(&ev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
			if !bytes.Equal(ev.Raw, raw) || &ev.Raw[0] != &raw[0] {
				t.Error("Raw is not the input")
			}
		})
	}
}

func TestParseEventInvalid(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"empty", ``},
		{"whitespace", "  "},
		{"truncated", `{"type":"MESSAGESENT","id":"a"`},
		{"array", `[{"type":"MESSAGESENT"}]`},
		{"string", `"MESSAGESENT"`},
		{"number", `42`},
		{"null", `null`},
		{"trailing garbage", `{"type":"MESSAGESENT"} x`},
		{"not JSON", `<html>502</html>`},
		{"no type", `{"id":"a","timestamp":1}`},
		{"empty type", `{"type":""}`},
		{"blank type", `{"type":" \t"}`},
		{"null type", `{"type":null}`},
		{"numeric type", `{"type":5}`},
		{"object type", `{"type":{"name":"MESSAGESENT"}}`},
		{"numeric id", `{"id":5,"type":"MESSAGESENT"}`},
		{"initiator userId a string", `{"type":"MESSAGESENT","initiator":{"user":{"userId":"bob"}}}`},
		{"initiator userId an object", `{"type":"MESSAGESENT","initiator":{"user":{"userId":{"id":1}}}}`},
		{"initiator userId a float", `{"type":"MESSAGESENT","initiator":{"user":{"userId":1.5}}}`},
		{"initiator userId over int64", `{"type":"MESSAGESENT","initiator":{"user":{"userId":99999999999999999999}}}`},
		{"initiator a string", `{"type":"MESSAGESENT","initiator":"bob"}`},
		{"affected userId a string", `{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"affectedUser":{"userId":"x"}}}}`},
		{"affected userId an object", `{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"affectedUser":{"userId":{}}}}}`},
		{"affected users not an array", `{"type":"USERREQUESTEDTOJOINROOM","payload":{"userRequestedToJoinRoom":{"affectedUsers":{"userId":1}}}}`},
		{"toUser userId bool", `{"type":"CONNECTIONREQUESTED","payload":{"connectionRequested":{"toUser":{"userId":true}}}}`},
		{"timestamp a word", `{"type":"MESSAGESENT","timestamp":"soon"}`},
		{"timestamp a float", `{"type":"MESSAGESENT","timestamp":1.5e12}`},
		{"payload an array", `{"type":"MESSAGESENT","payload":[]}`},
		{"payload a string", `{"type":"MESSAGESENT","payload":"x"}`},
		{"stream a string", `{"type":"ROOMCREATED","payload":{"roomCreated":{"stream":"s"}}}`},
		{"streamId a number", `{"type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":5}}}}`},
		{"streamType a number", `{"type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":"s","streamType":1}}}}`},
		{"messageId a number", `{"type":"MESSAGESENT","messageId":1}`},
		{"invalid UTF-8 in JSON structure", "{\"type\":\"MESSAGESENT\"\xff}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			ev := ParseEvent(raw)
			if !errors.Is(ev.Err, ErrInvalidEvent) {
				t.Fatalf("Err = %v, want ErrInvalidEvent", ev.Err)
			}
			if !bytes.Equal(ev.Raw, raw) {
				t.Errorf("Raw = %q, want the input", ev.Raw)
			}
			if got := RawMsgID(ev.Raw); got != RawMsgID([]byte(tt.raw)) || len(got) != 49 {
				t.Errorf("RawMsgID = %q: unstable or malformed", got)
			}
		})
	}
}

func TestDecodeEventList(t *testing.T) {
	list := `{"ackId":"ack-1","events":[` + evUserJoined + `, 42 ,` + evConnAccepted + `]}`
	b, err := DecodeEventList([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	if b.AckID != "ack-1" || len(b.Events) != 3 {
		t.Fatalf("AckID %q, %d events; want ack-1 and 3", b.AckID, len(b.Events))
	}
	if b.Events[0].Err != nil || b.Events[2].Err != nil {
		t.Errorf("valid events around a bad one failed: %v, %v", b.Events[0].Err, b.Events[2].Err)
	}
	if !errors.Is(b.Events[1].Err, ErrInvalidEvent) || string(b.Events[1].Raw) != "42" {
		t.Errorf("event 1: Err %v, Raw %q; want ErrInvalidEvent and 42", b.Events[1].Err, b.Events[1].Raw)
	}

	for _, body := range []string{`{"ackId":""}`, `{"ackId":"a","events":null}`, `{"ackId":"a","events":[]}`} {
		b, err := DecodeEventList([]byte(body))
		if err != nil || len(b.Events) != 0 {
			t.Errorf("DecodeEventList(%s) = %d events, %v; want none, nil", body, len(b.Events), err)
		}
	}
	bad := []string{``, `null`, `[]`, `{}`, `{"events":[]}`, `{"ackId":null,"events":[]}`, `{"ackId":1}`,
		`{"ackId":"a","events":{}}`, `{"ackId":"a","events":[{}]`, `<html>`, `{"ackId":"a"} {}`}
	body := `{"ackId":"ack-1","events":[` + evUserJoined + `,` + evElements + `]}`
	bad = append(bad, body[:len(body)/2])
	for _, body := range bad {
		if _, err := DecodeEventList([]byte(body)); !errors.Is(err, ErrBadResponse) {
			t.Errorf("DecodeEventList(%.40q) = %v, want ErrBadResponse", body, err)
		}
	}
}

func TestDecodeEventArray(t *testing.T) {
	b, err := DecodeEventArray([]byte(`[` + evElements + `,{"id":"x"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if b.AckID != "" || len(b.Events) != 2 || b.Events[0].Err != nil || !errors.Is(b.Events[1].Err, ErrInvalidEvent) {
		t.Errorf("got AckID %q, %d events, errs %v / %v", b.AckID, len(b.Events), b.Events[0].Err, b.Events[1].Err)
	}
	for _, body := range []string{``, `{}`, `[`, `[1,]`, `{"events":[]}`} {
		if _, err := DecodeEventArray([]byte(body)); !errors.Is(err, ErrBadResponse) {
			t.Errorf("DecodeEventArray(%q) = %v, want ErrBadResponse", body, err)
		}
	}
}

func TestKnownTypes(t *testing.T) {
	types := KnownTypes()
	if len(types) != 17 || len(types) != len(payloadKeys) {
		t.Fatalf("%d known types, %d payload keys; want 17", len(types), len(payloadKeys))
	}
	seen := map[string]bool{}
	for _, typ := range types {
		if seen[typ] {
			t.Errorf("%s listed twice", typ)
		}
		seen[typ] = true
		key, ok := PayloadKey(typ)
		if !ok || !IsKnownType(typ) {
			t.Errorf("%s: not known", typ)
		}
		// The payload key is the type in lowerCamelCase.
		if strings.ToUpper(key) != typ || key[0] < 'a' || key[0] > 'z' {
			t.Errorf("PayloadKey(%s) = %q", typ, key)
		}
	}
	for _, typ := range []string{"", "messagesent", "MESSAGESENT ", "USERMENTIONED"} {
		if IsKnownType(typ) {
			t.Errorf("IsKnownType(%q) = true", typ)
		}
		if _, ok := PayloadKey(typ); ok {
			t.Errorf("PayloadKey(%q) found", typ)
		}
	}
}

func TestNormalizeStreamID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA", "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA"},
		{"/tiUL8zamhwqo8J0tRGRmH///nF1ABgsdA==", "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA"},
		{"iMft8PA/ibYc9hgOEb7+EX///oGUp9ladA==", "iMft8PA_ibYc9hgOEb7-EX___oGUp9ladA"},
		{"a+b", "a-b"},
		{"ab=", "ab"},
	}
	for _, tt := range tests {
		if got := NormalizeStreamID(tt.in); got != tt.want {
			t.Errorf("NormalizeStreamID(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := NormalizeStreamID(tt.want); got != tt.want {
			t.Errorf("NormalizeStreamID not idempotent on %q: %q", tt.want, got)
		}
	}
}

// TestRawIsIndependentOfBody: events keep their bytes after the response
// body buffer is reused (the client may pool buffers).
func TestRawIsIndependentOfBody(t *testing.T) {
	body := []byte(`{"ackId":"a","events":[` + evUserJoined + `]}`)
	b, err := DecodeEventList(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if string(b.Events[0].Raw) != evUserJoined {
		t.Errorf("Raw changed with the body buffer: %q", b.Events[0].Raw)
	}
	var v map[string]any
	if err := json.Unmarshal(b.Events[0].Raw, &v); err != nil {
		t.Error(err)
	}
}

package symphonytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

var urlSafeStreamID = regexp.MustCompile(`^[A-Za-z0-9_-]{34}$`)

// routing is what each type must decode to: whether it has a stream, the
// stream types it may carry ("" = absent, as in Symphony's examples), how
// many affected users, and whether a message id is derived.
var routing = map[string]struct {
	stream      bool
	streamTypes []string
	affected    int
	messageID   bool
}{
	symphony.TypeMessageSent:                {true, []string{"ROOM", "IM", "MIM"}, 0, true},
	symphony.TypeMessageSuppressed:          {true, []string{""}, 0, true},
	symphony.TypeSymphonyElementsAction:     {true, []string{"ROOM"}, 0, true},
	symphony.TypeSharedPost:                 {true, []string{"POST"}, 0, true},
	symphony.TypeInstantMessageCreated:      {true, []string{"IM", "MIM"}, 0, false},
	symphony.TypeRoomCreated:                {true, []string{"ROOM"}, 0, true},
	symphony.TypeRoomUpdated:                {true, []string{"ROOM"}, 0, true},
	symphony.TypeRoomDeactivated:            {true, []string{"ROOM"}, 0, false},
	symphony.TypeRoomReactivated:            {true, []string{"ROOM"}, 0, false},
	symphony.TypeUserRequestedToJoinRoom:    {true, []string{""}, 2, true},
	symphony.TypeUserJoinedRoom:             {true, []string{"ROOM"}, 1, false},
	symphony.TypeUserLeftRoom:               {true, []string{"ROOM"}, 1, false},
	symphony.TypeRoomMemberPromotedToOwner:  {true, []string{"ROOM"}, 1, false},
	symphony.TypeRoomMemberDemotedFromOwner: {true, []string{"ROOM"}, 1, false},
	symphony.TypeConnectionRequested:        {false, []string{""}, 1, false},
	symphony.TypeConnectionAccepted:         {false, []string{""}, 1, false},
	symphony.TypeGenericSystemEvent:         {true, []string{""}, 0, true},
}

func TestGeneratorCoversEveryTypeValidly(t *testing.T) {
	v := spec.ForTest(t) // nil without ../shared: the strict event schema only
	if len(routing) != len(symphony.KnownTypes()) {
		t.Fatalf("the routing table covers %d of %d types", len(routing), len(symphony.KnownTypes()))
	}
	g := NewGenerator(GeneratorConfig{Seed: 7, SerialBase: 1000})
	serial := int64(1000)
	for round := range 20 { // several rounds: payloads vary (mentions, attachments...)
		for _, typ := range symphony.KnownTypes() {
			raw := g.Event(typ)
			serial++
			if err := v.ValidateEvent(raw); err != nil {
				t.Fatalf("%s fails validation: %v\n%s", typ, err, raw)
			}
			ev := symphony.ParseEvent(raw)
			want := routing[typ]
			if ev.Err != nil || ev.Type != typ || len(ev.ID) != 6 || ev.Timestamp <= 0 || ev.InitiatorUserID <= 0 {
				t.Fatalf("%s decodes to %+v", typ, ev)
			}
			if ev.HasStream != want.stream || (want.stream && !urlSafeStreamID.MatchString(ev.StreamID)) {
				t.Errorf("%s: stream %v %q", typ, ev.HasStream, ev.StreamID)
			}
			if !slices.Contains(want.streamTypes, ev.StreamType) {
				t.Errorf("%s: stream type %q, want one of %q", typ, ev.StreamType, want.streamTypes)
			}
			if len(ev.AffectedUserIDs) != want.affected || slices.Contains(ev.AffectedUserIDs, ev.InitiatorUserID) && typ != symphony.TypeUserRequestedToJoinRoom {
				t.Errorf("%s: affected users %v (initiator %d)", typ, ev.AffectedUserIDs, ev.InitiatorUserID)
			}
			if typ != symphony.TypeSymphonyElementsAction && bytes.Contains(raw, []byte("==")) {
				t.Errorf("%s: standard base64 by default: %s", typ, raw)
			}
			if (ev.MessageID != "") != want.messageID {
				t.Errorf("%s: message id %q", typ, ev.MessageID)
			}
			if n, ok := SerialOf(raw); !ok || n != serial {
				t.Errorf("%s: serial %d %v, want %d", typ, n, ok, serial)
			}
			if round == 0 && typ == symphony.TypeMessageSent {
				checkMessage(t, raw)
			}
		}
	}
	if g.Serial() != serial {
		t.Errorf("Serial() = %d, want %d", g.Serial(), serial)
	}
}

// checkMessage looks at what makes a MESSAGESENT realistic: PresentationML
// and EntityJSON carried as a string.
func checkMessage(t *testing.T, raw []byte) {
	t.Helper()
	var ev struct {
		Payload struct {
			MessageSent struct {
				Message struct {
					Message string `json:"message"`
					Data    string `json:"data"`
				} `json:"message"`
			} `json:"messageSent"`
		} `json:"payload"`
	}
	decode(t, raw, &ev)
	m := ev.Payload.MessageSent.Message
	if !strings.HasPrefix(m.Message, `<div data-format="PresentationML" data-version="2.0"`) || !json.Valid([]byte(m.Data)) {
		t.Errorf("message %q data %q", m.Message, m.Data)
	}
}

func TestGeneratorQuirks(t *testing.T) {
	g := NewGenerator(GeneratorConfig{Seed: 11})

	noID := g.Event(symphony.TypeUserJoinedRoom, WithoutID())
	if err := spec.CheckEvent(noID); !errors.Is(err, spec.ErrEventWithoutID) {
		t.Errorf("event without id: spec.CheckEvent = %v", err)
	}
	if ev := symphony.ParseEvent(noID); ev.Err != nil || ev.ID != "" || bytes.Contains(noID, []byte(`"id"`)) {
		t.Errorf("event without id decodes to %+v", ev)
	}

	for _, typ := range []string{symphony.TypeMessageSent, symphony.TypeRoomCreated, symphony.TypeSymphonyElementsAction} {
		raw := g.Event(typ, WithStdBase64StreamID())
		var probe struct {
			Payload map[string]struct {
				Stream  *struct{ StreamID string } `json:"stream"`
				Message *struct {
					Stream struct{ StreamID string } `json:"stream"`
				} `json:"message"`
			} `json:"payload"`
		}
		decode(t, raw, &probe)
		key, _ := symphony.PayloadKey(typ)
		p := probe.Payload[key]
		sid := ""
		if p.Stream != nil {
			sid = p.Stream.StreamID
		} else {
			sid = p.Message.Stream.StreamID
		}
		ev := symphony.ParseEvent(raw)
		if !strings.HasSuffix(sid, "==") || len(sid) != 36 || ev.StreamID != symphony.NormalizeStreamID(sid) || !urlSafeStreamID.MatchString(ev.StreamID) {
			t.Errorf("%s: standard stream id %q routes as %q", typ, sid, ev.StreamID)
		}
		if err := spec.CheckEvent(raw); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}

	act := g.Action(symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom)
	evs := make([]symphony.Event, len(act))
	ids := map[string]bool{}
	for i, raw := range act {
		evs[i] = symphony.ParseEvent(raw)
		ids[symphony.MsgID(&evs[i])] = true
		if err := spec.CheckEvent(raw); err != nil {
			t.Error(err)
		}
	}
	for _, ev := range evs[1:] {
		if ev.ID != evs[0].ID || ev.StreamID != evs[0].StreamID || ev.Timestamp != evs[0].Timestamp || ev.InitiatorUserID != evs[0].InitiatorUserID {
			t.Errorf("action events differ beyond the affected user: %+v vs %+v", ev, evs[0])
		}
	}
	if len(ids) != 3 {
		t.Errorf("three users joining at once map to %d Msg-Ids", len(ids))
	}
	mixed := g.Action(symphony.TypeRoomCreated, symphony.TypeUserJoinedRoom)
	if a, b := symphony.ParseEvent(mixed[0]), symphony.ParseEvent(mixed[1]); a.ID != b.ID || a.StreamID != b.StreamID {
		t.Errorf("room creation action: %+v / %+v", a, b)
	}

	unknown := g.Event("MESSAGEREACTIONADDED")
	if err := spec.CheckEvent(unknown); err != nil {
		t.Errorf("unknown type: %v", err)
	}
	if ev := symphony.ParseEvent(unknown); ev.Err != nil || ev.Type != "MESSAGEREACTIONADDED" || !ev.HasStream {
		t.Errorf("unknown type decodes to %+v", ev)
	}
	if err := spec.CheckEvent(g.Event("SOMETHINGNEW")); err != nil {
		t.Errorf("arbitrary unknown type: %v", err)
	}
}

func TestGeneratorMixAndDeterminism(t *testing.T) {
	cfg := GeneratorConfig{Seed: 5, NoIDRate: 0.1, StdBase64Rate: 0.1, SharedIDRate: 0.1, UnknownTypeRate: 0.05}
	a, b := NewGenerator(cfg).Mix(500), NewGenerator(cfg).Mix(500)
	if len(a) != 500 {
		t.Fatalf("Mix(500) gave %d", len(a))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("same seed, event %d differs", i)
		}
	}
	if c := NewGenerator(GeneratorConfig{Seed: 6}).Mix(1); bytes.Equal(c[0], a[0]) {
		t.Error("another seed gives the same events")
	}
	var noID, std, unknown, shared int
	types := map[string]bool{}
	byID := map[string]int{}
	var prev int64
	for _, raw := range a {
		ev := symphony.ParseEvent(raw)
		types[ev.Type] = true
		switch err := spec.CheckEvent(raw); {
		case errors.Is(err, spec.ErrEventWithoutID):
			noID++
		case err != nil:
			t.Errorf("%v\n%s", err, raw)
		}
		if bytes.Contains(raw, []byte(`==","streamType"`)) && ev.Type != symphony.TypeSymphonyElementsAction {
			std++
		}
		if !symphony.IsKnownType(ev.Type) {
			unknown++
		}
		if ev.ID != "" {
			byID[ev.ID]++
		}
		n, _ := SerialOf(raw)
		if n != prev+1 {
			t.Fatalf("serial %d after %d", n, prev)
		}
		prev = n
	}
	for _, n := range byID {
		if n > 1 {
			shared++
		}
	}
	if noID == 0 || std == 0 || unknown == 0 || shared == 0 {
		t.Errorf("quirks missing from the mix: noID %d, std %d, unknown %d, shared ids %d", noID, std, unknown, shared)
	}
	for _, typ := range symphony.KnownTypes() {
		if !types[typ] {
			t.Errorf("the default mix never produced %s", typ)
		}
	}

	at := time.UnixMilli(1_800_000_000_000)
	live := NewGenerator(GeneratorConfig{Now: func() time.Time { return at }})
	if ev := symphony.ParseEvent(live.Next()); ev.Timestamp != at.UnixMilli() {
		t.Errorf("Now ignored: timestamp %d", ev.Timestamp)
	}

	only := NewGenerator(GeneratorConfig{Weights: map[string]int{symphony.TypeRoomCreated: 1}})
	for _, raw := range only.Mix(20) {
		if ev := symphony.ParseEvent(raw); ev.Type != symphony.TypeRoomCreated {
			t.Errorf("weights ignored: %s", ev.Type)
		}
	}
}

func TestCheckEventRejects(t *testing.T) {
	if n := len(spec.StrictEventSchema().OneOf); n != len(symphony.KnownTypes())+1 {
		t.Fatalf("strict schema has %d branches", n)
	}
	g := NewGenerator(GeneratorConfig{Seed: 3})
	good := func(typ string) map[string]any {
		var m map[string]any
		decode(t, g.Event(typ), &m)
		return m
	}
	payload := func(m map[string]any, key string) map[string]any {
		return m["payload"].(map[string]any)[key].(map[string]any)
	}
	cases := map[string]func() map[string]any{
		"payload key of another type": func() map[string]any {
			m := good(symphony.TypeRoomCreated)
			m["type"] = symphony.TypeRoomUpdated
			return m
		},
		"two payload keys": func() map[string]any {
			m := good(symphony.TypeRoomCreated)
			m["payload"].(map[string]any)["roomUpdated"] = map[string]any{}
			return m
		},
		"no timestamp":     func() map[string]any { m := good(symphony.TypeRoomCreated); delete(m, "timestamp"); return m },
		"string timestamp": func() map[string]any { m := good(symphony.TypeRoomCreated); m["timestamp"] = "1"; return m },
		"empty id":         func() map[string]any { m := good(symphony.TypeRoomCreated); m["id"] = ""; return m },
		"lower-case type":  func() map[string]any { m := good(symphony.TypeRoomCreated); m["type"] = "roomcreated"; return m },
		"no initiator":     func() map[string]any { m := good(symphony.TypeRoomCreated); delete(m, "initiator"); return m },
		"no stream": func() map[string]any {
			m := good(symphony.TypeRoomCreated)
			delete(payload(m, "roomCreated"), "stream")
			return m
		},
		"empty stream id": func() map[string]any {
			m := good(symphony.TypeUserLeftRoom)
			payload(m, "userLeftRoom")["stream"] = map[string]any{"streamId": ""}
			return m
		},
		"message without stream": func() map[string]any {
			m := good(symphony.TypeMessageSent)
			delete(payload(m, "messageSent")["message"].(map[string]any), "stream")
			return m
		},
		"join without affected user": func() map[string]any {
			m := good(symphony.TypeUserJoinedRoom)
			delete(payload(m, "userJoinedRoom"), "affectedUser")
			return m
		},
		"connection without user": func() map[string]any {
			m := good(symphony.TypeConnectionRequested)
			delete(payload(m, "connectionRequested"), "toUser")
			return m
		},
		"unknown type, empty payload": func() map[string]any {
			m := good(symphony.TypeRoomCreated)
			m["type"], m["payload"] = "NEWTHING", map[string]any{}
			return m
		},
	}
	for name, mk := range cases {
		raw, err := json.Marshal(mk())
		if err != nil {
			t.Fatal(err)
		}
		if err := spec.CheckEvent(raw); !errors.Is(err, spec.ErrStrictEvent) {
			t.Errorf("%s: spec.CheckEvent = %v", name, err)
		}
	}
	for _, raw := range []string{`[]`, `{"type":`, `{} {}`} {
		if err := spec.CheckEvent([]byte(raw)); !errors.Is(err, spec.ErrStrictEvent) {
			t.Errorf("%s: spec.CheckEvent = %v", raw, err)
		}
	}
}

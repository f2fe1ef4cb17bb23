package symphony

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// addEventSeeds seeds a fuzz target with every sample event, the synthetic
// events and a few broken ones.
func addEventSeeds(f *testing.F) {
	for _, ev := range allSampleEvents(f) {
		f.Add(bytes.Clone(ev.Raw))
	}
	for _, raw := range syntheticEvents {
		f.Add([]byte(raw))
	}
	for _, raw := range brokenEvents {
		f.Add([]byte(raw))
	}
}

// brokenEvents are a few events at the edge of routable.
var brokenEvents = []string{``, `null`, `{}`, `[]`, `{"type":""}`, `{"type":"X","payload":{"x":{"stream":{}}}}`,
	`{"type":"MESSAGESENT","initiator":{"user":{"userId":"7"}}}`, `{"type":"A","timestamp":1e3}`}

// FuzzParseEvent: ParseEvent never panics, keeps the input as Raw without
// touching it, and gives a routable event (non-empty type, stable id, no id
// change under re-indentation) or an error wrapping ErrInvalidEvent.
func FuzzParseEvent(f *testing.F) {
	addEventSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		ev := ParseEvent(data)
		if !bytes.Equal(ev.Raw, orig) || !bytes.Equal(data, orig) {
			t.Fatalf("Raw %q or input %q differs from %q", ev.Raw, data, orig)
		}
		if rid := RawMsgID(data); rid != RawMsgID(orig) || len(rid) != 49 {
			t.Fatalf("RawMsgID %q unstable or malformed", rid)
		}
		if ev.Err != nil {
			if !errors.Is(ev.Err, ErrInvalidEvent) {
				t.Fatalf("Err %v does not wrap ErrInvalidEvent", ev.Err)
			}
			return
		}
		if strings.TrimSpace(ev.Type) == "" {
			t.Fatalf("routable event with an empty type: %q", data)
		}
		if !json.Valid(data) {
			t.Fatalf("routable event from invalid JSON %q", data)
		}
		if !ev.HasStream && (ev.StreamID != "" || ev.StreamType != "") {
			t.Fatalf("no stream, yet stream id %q type %q", ev.StreamID, ev.StreamType)
		}
		if strings.ContainsAny(ev.StreamID, "+/=") {
			t.Fatalf("stream id %q not normalised", ev.StreamID)
		}
		id := MsgID(&ev)
		prefix := "sb2-i-"
		if ev.ID == "" {
			prefix = "sb1-h-"
		}
		if len(id) != 49 || !strings.HasPrefix(id, prefix) {
			t.Fatalf("MsgID %q: want %s and 49 characters", id, prefix)
		}
		again := ParseEvent(bytes.Clone(data))
		if got := MsgID(&again); got != id {
			t.Fatalf("MsgID %s on a second parse, %s first", got, id)
		}
		// The same event with other whitespace is the same event.
		var ind bytes.Buffer
		if err := json.Indent(&ind, data, "", "  "); err != nil {
			t.Fatalf("json.Indent of a routable event: %v", err)
		}
		re := ParseEvent(ind.Bytes())
		if re.Err != nil {
			t.Fatalf("re-indented event fails: %v", re.Err)
		}
		if got := MsgID(&re); got != id {
			t.Fatalf("MsgID %s after re-indentation, %s before\n%s", got, id, data)
		}
	})
}

// FuzzDecodeEventList checks DecodeEventList and DecodeEventArray against a
// plain encoding/json decode: they accept exactly the bodies it accepts (an
// object with an ackId string; an array), every event's Raw is exactly
// the json.RawMessage it yields, a verbatim slice of the body, and every
// event's routing fields are those the reference decoder refParseEvent
// finds with encoding/json alone.
func FuzzDecodeEventList(f *testing.F) {
	for _, s := range eventSamples {
		body, ok := optionalSample(f, s.file)
		if !ok {
			break
		}
		f.Add(body)
		f.Add(body[:len(body)/2])
	}
	for _, raw := range append(slices.Clone(syntheticEvents), fastPathSeeds...) {
		f.Add([]byte(`{"ackId":"a","events":[` + raw + `]}`))
		f.Add([]byte(`[` + raw + `,` + raw + `]`))
	}
	for _, body := range []string{`{"ackId":"a","events":[],"AckId":"b"}`, `{"ackId":"a","\u0065vents":[{}]}`,
		`{"ackId":"a\u0062","events":[]}`, `{"ackId":"a","events":null}`, `{"events":[],"ackId":"a"} x`} {
		f.Add([]byte(body))
	}
	for _, body := range []string{``, `null`, `{}`, `[]`, `{"ackId":null}`, `{"ackId":""}`, `{"events":[1,"x",null,{}],"ackId":"z"}`,
		`{"ackId":"a","events":{}}`, `{"ACKID":"a","Events":[{}]}`, `{"ackId":"a","ackId":"b","events":[],"events":[{}]}`} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)

		var ref struct {
			Events []json.RawMessage `json:"events"`
			AckID  *string           `json:"ackId"`
		}
		refErr := json.Unmarshal(bytes.Clone(body), &ref)
		refOK := refErr == nil && ref.AckID != nil
		b, err := DecodeEventList(body)
		if (err == nil) != refOK {
			t.Fatalf("DecodeEventList err %v, encoding/json err %v ackId set %v", err, refErr, ref.AckID != nil)
		}
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
		} else {
			if b.AckID != *ref.AckID {
				t.Fatalf("AckID %q, encoding/json %q", b.AckID, *ref.AckID)
			}
			checkRaws(t, body, b.Events, ref.Events)
		}

		var refArr []json.RawMessage
		refErr = json.Unmarshal(bytes.Clone(body), &refArr)
		ab, err := DecodeEventArray(body)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("DecodeEventArray err %v, encoding/json err %v", err, refErr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
		} else {
			if ab.AckID != "" {
				t.Fatalf("array batch with ackId %q", ab.AckID)
			}
			checkRaws(t, body, ab.Events, refArr)
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("decoding modified the body")
		}
	})
}

func checkRaws(t *testing.T, body []byte, evs []Event, ref []json.RawMessage) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	if len(evs) != len(ref) {
		t.Fatalf("%d events, encoding/json %d", len(evs), len(ref))
	}
	for i := range evs {
		if !bytes.Equal(evs[i].Raw, ref[i]) {
			t.Fatalf("event %d: Raw %q, encoding/json %q", i, evs[i].Raw, ref[i])
		}
		if !bytes.Contains(body, evs[i].Raw) || !json.Valid(evs[i].Raw) {
			t.Fatalf("event %d: Raw %q is not a JSON value taken verbatim from the body", i, evs[i].Raw)
		}
		if evs[i].Err != nil && !errors.Is(evs[i].Err, ErrInvalidEvent) {
			t.Fatalf("event %d: Err %v does not wrap ErrInvalidEvent", i, evs[i].Err)
		}
		// The fast decoder agrees with plain encoding/json on every
		// routing field (event_reference_test.go).
		if d := sameRouting(evs[i], refParseEvent(ref[i])); d != "" {
			t.Fatalf("event %d: %s\nevent: %q", i, d, ref[i])
		}
	}
}

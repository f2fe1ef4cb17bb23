package eventline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/eventline"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// messageSent is a MESSAGESENT event in a room, its text in PresentationML
// with an entity to decode.
const messageSent = `{"id":"ev1","messageId":"m1","timestamp":1796288400123,"type":"MESSAGESENT",` +
	`"initiator":{"user":{"userId":42,"displayName":"Ann Lee"}},` +
	`"payload":{"messageSent":{"message":{"messageId":"m1","timestamp":1796288400123,` +
	`"message":"<div data-format=\"PresentationML\" data-version=\"2.0\"><p>Q3 &amp; <b>Q4</b>\n numbers</p></div>",` +
	`"user":{"userId":42},"stream":{"streamId":"c3RyZWFt","streamType":"ROOM"}}}}}`

// stored is the message the bridge publishes for raw.
func stored(t *testing.T, raw string) *nats.Msg {
	t.Helper()
	ev := symphony.ParseEvent([]byte(raw))
	if ev.Err != nil {
		t.Fatal(ev.Err)
	}
	return bridge.BuildMsg(&ev, "symphony.acme.messagesent.room", "acme", "datafeed")
}

func TestReadFromTheBridgesHeaders(t *testing.T) {
	m := stored(t, messageSent)
	got := eventline.Read(m.Header, m.Data)
	want := eventline.Event{
		Time: time.UnixMilli(1796288400123).UTC(), Type: "MESSAGESENT", StreamType: "ROOM", StreamID: "c3RyZWFt",
		Initiator: "Ann Lee", Text: "Q3 & Q4 numbers",
	}
	if got != want {
		t.Errorf("Read = %+v\nwant   %+v", got, want)
	}
	if s, want := got.String(), `MESSAGESENT ROOM c3RyZWFt initiator="Ann Lee" text="Q3 & Q4 numbers"`; s != want {
		t.Errorf("String = %s\nwant     %s", s, want)
	}
	// The headers win over the payload: they are what subjects were made of.
	m.Header.Set(bridge.HeaderStreamType, "IM")
	if got := eventline.Read(m.Header, m.Data); got.StreamType != "IM" {
		t.Errorf("StreamType = %q, want the header's IM", got.StreamType)
	}
}

// TestReadWithoutHeaders: a message another tool stored, the event alone,
// reads the same from the payload.
func TestReadWithoutHeaders(t *testing.T) {
	m := stored(t, messageSent)
	if got, want := eventline.Read(nil, m.Data), eventline.Read(m.Header, m.Data); got != want {
		t.Errorf("Read without headers = %+v\nwith headers           %+v", got, want)
	}
	// Without a display name, the user id.
	got := eventline.Read(nil, []byte(`{"type":"ROOMCREATED","initiator":{"user":{"userId":7}}}`))
	if s, want := got.String(), "ROOMCREATED - - initiator=7"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	if got.Time != (time.Time{}) {
		t.Errorf("Time = %v for an event without timestamp", got.Time)
	}
}

func TestReadDeadLetters(t *testing.T) {
	h := nats.Header{}
	h.Set(bridge.HeaderDeadLetterReason, "invalid event: decode event: unexpected end")
	h.Set(bridge.HeaderTruncated, "true")
	got := eventline.Read(h, []byte(`{"type":"MESSAGESENT","initiator":{"us`))
	if s, want := got.String(), `- - - dead-letter="invalid event: decode event: unexpected end"`; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	// A dead letter whose payload decodes shows what it can.
	h.Set(bridge.HeaderEventType, "MESSAGESENT")
	got = eventline.Read(h, []byte(messageSent))
	if s := got.String(); !strings.HasPrefix(s, `MESSAGESENT ROOM c3RyZWFt initiator="Ann Lee" text=`) || !strings.HasSuffix(s, ` dead-letter="invalid event: decode event: unexpected end"`) {
		t.Errorf("String = %q", s)
	}
	if s, want := eventline.Read(nil, []byte("[1,2")).String(), "- - - (payload is not a JSON event)"; s != want {
		t.Errorf("String of a broken payload = %q, want %q", s, want)
	}
}

func TestSnippetIsCut(t *testing.T) {
	long := strings.Repeat("é", eventline.SnippetRunes+10)
	s := eventline.Event{Type: "MESSAGESENT", Text: long}.String()
	if want := `text="` + long[:2*eventline.SnippetRunes] + `…"`; !strings.HasSuffix(s, want) {
		t.Errorf("String = %q, want it to end with %q", s, want)
	}
	// Values that would run into the next field are quoted.
	if s := (eventline.Event{Initiator: `a"b=c`}).String(); !strings.Contains(s, `initiator="a\"b=c"`) {
		t.Errorf("String = %q", s)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                       now.Add(-10 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"0s":                        now,
		"2026-12-03T09:00:00Z":      time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
		"2026-12-03T09:00:00+01:00": time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC),
		"2026-12-03T09:00:00.5Z":    time.Date(2026, 12, 3, 9, 0, 0, 5e8, time.UTC),
	} {
		got, err := eventline.ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "2026-12-03", "10"} {
		if _, err := eventline.ParseSince(bad, now); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseSince(%q): %v, want an error quoting it", bad, err)
		}
	}
}

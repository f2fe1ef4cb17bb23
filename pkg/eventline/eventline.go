// Package eventline reads back what symbridge stored in JetStream, for
// people: one readable line per message, and a replay of a stream's
// messages through an ordered consumer that leaves nothing behind. It
// serves `symbridge tail` and the example worker (examples/go-worker), so
// that both show an event the same way.
//
// A line reads the headers the bridge sets ([bridge.BuildMsg], and the
// dead-letter headers) and falls back to the event's JSON where a header is
// missing, so it also describes messages stored by other tools.
package eventline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// SnippetRunes is the most characters of a message's text a line shows.
const SnippetRunes = 80

// TimeLayout is how a line shows a time: RFC 3339 in UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Event is what a line shows of one stored message.
type Event struct {
	// Time is when the event happened (Symphony's timestamp); zero when
	// the event has none.
	Time       time.Time
	Type       string // MESSAGESENT, ...; "" when unknown
	StreamType string // ROOM, IM, ...; "" when the event has none
	StreamID   string // URL-safe base64; "" when the event has none
	// Initiator is the initiating user's display name, else their user id;
	// "" when the event names none.
	Initiator string
	// Text is a message's text without markup (MESSAGESENT), "" for other
	// events.
	Text string
	// DeadLetter is the reason a dead letter gives; "" for a normal event.
	DeadLetter string
	// NotJSON: the payload is not a JSON object (a dead letter of a broken
	// or truncated event).
	NotJSON bool
}

// body holds the fields of an event's JSON that the headers do not carry.
type body struct {
	Initiator struct {
		User struct {
			UserID      json.Number `json:"userId"`
			DisplayName string      `json:"displayName"`
		} `json:"user"`
	} `json:"initiator"`
	Payload struct {
		MessageSent struct {
			Message struct {
				Message string `json:"message"`
			} `json:"message"`
		} `json:"messageSent"`
	} `json:"payload"`
}

// Read describes a stored message from its headers and payload. It never
// fails: what cannot be read is left empty.
func Read(h nats.Header, data []byte) Event {
	// The routing fields as pkg/symphony finds them (where an event type
	// keeps its stream), for messages without the bridge's headers.
	parsed := symphony.ParseEvent(data)
	var b body
	e := Event{
		Type:       cmp.Or(h.Get(bridge.HeaderEventType), parsed.Type),
		StreamType: cmp.Or(h.Get(bridge.HeaderStreamType), parsed.StreamType),
		StreamID:   cmp.Or(h.Get(bridge.HeaderStreamID), parsed.StreamID),
		DeadLetter: h.Get(bridge.HeaderDeadLetterReason),
		NotJSON:    json.Unmarshal(data, &b) != nil,
	}
	ms := parsed.Timestamp
	if v, err := strconv.ParseInt(h.Get(bridge.HeaderTimestamp), 10, 64); err == nil {
		ms = v
	}
	if ms > 0 {
		e.Time = time.UnixMilli(ms).UTC()
	}
	e.Initiator = cmp.Or(b.Initiator.User.DisplayName, b.Initiator.User.UserID.String())
	if e.Initiator == "" && parsed.InitiatorUserID != 0 {
		e.Initiator = strconv.FormatInt(parsed.InitiatorUserID, 10)
	}
	e.Text = symphony.PlainText(b.Payload.MessageSent.Message.Message)
	return e
}

// String is the event's part of a line:
//
//	MESSAGESENT ROOM x1y2z3 initiator="Ann Lee" text="Q3 & Q4 numbers"
//	- - - dead-letter="invalid event: no type"
//
// "-" stands for what is unknown; the text is cut to [SnippetRunes].
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(orDash(e.Type) + " " + orDash(e.StreamType) + " " + orDash(e.StreamID))
	if !e.NotJSON {
		b.WriteString(" initiator=" + quoteIfNeeded(orDash(e.Initiator)))
	}
	if e.Text != "" {
		b.WriteString(" text=" + strconv.Quote(snippet(e.Text, SnippetRunes)))
	}
	switch {
	case e.DeadLetter != "":
		b.WriteString(" dead-letter=" + strconv.Quote(e.DeadLetter))
	case e.NotJSON:
		b.WriteString(" (payload is not a JSON event)")
	}
	return b.String()
}

// Line is msg's line: the event's time (else the time JetStream stored it),
// its stream sequence, then [Event.String]:
//
//	2026-12-03T09:00:00.123Z 42 MESSAGESENT ROOM x1y2z3 initiator=Ann text="Q3 & Q4 numbers"
func Line(msg jetstream.Msg) string {
	e := Read(msg.Headers(), msg.Data())
	at, seq := e.Time, "-"
	if md, err := msg.Metadata(); err == nil {
		seq = strconv.FormatUint(md.Sequence.Stream, 10)
		if at.IsZero() {
			at = md.Timestamp
		}
	}
	when := "-"
	if !at.IsZero() {
		when = at.UTC().Format(TimeLayout)
	}
	return when + " " + seq + " " + e.String()
}

// ParseSince reads a replay's start: a duration before now ("10m", "1h30m")
// or an RFC 3339 time ("2026-12-03T09:00:00Z"). The error quotes s but
// names no flag: the caller knows which one it read.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration ago must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: neither a duration (10m) nor an RFC 3339 time (2026-12-03T09:00:00Z)", s)
	}
	return t, nil
}

func snippet(text string, max int) string {
	if r := []rune(text); len(r) > max {
		return string(r[:max]) + "…"
	}
	return text
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// quoteIfNeeded quotes a value that would otherwise run into the next
// field of a line (spaces, quotes, '=') or hide characters.
func quoteIfNeeded(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

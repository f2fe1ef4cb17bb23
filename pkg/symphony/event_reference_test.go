package symphony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// refParseEvent is the plain encoding/json decoding of an event's routing
// fields, kept here as the reference the decoder must agree with (it was
// the production path for the events the old fast path declined).
func refParseEvent(raw []byte) Event {
	ev := Event{Raw: raw}
	if err := refDecode(&ev); err != nil {
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return ev
}

func refDecode(ev *Event) error {
	var w struct {
		ID        string      `json:"id"`
		Type      *string     `json:"type"`
		Timestamp json.Number `json:"timestamp"`
		MessageID string      `json:"messageId"`
		Initiator *struct {
			User *refUser `json:"user"`
		} `json:"initiator"`
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(ev.Raw, &w); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	if w.Type == nil || strings.TrimSpace(*w.Type) == "" {
		return errors.New("event has no type")
	}
	ev.ID, ev.Type, ev.MessageID = w.ID, *w.Type, w.MessageID
	if w.Timestamp != "" {
		ts, err := w.Timestamp.Int64()
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", w.Timestamp, err)
		}
		ev.Timestamp = ts
	}
	if w.Initiator != nil && w.Initiator.User != nil {
		id, err := w.Initiator.User.id()
		if err != nil {
			return fmt.Errorf("initiator: %w", err)
		}
		ev.InitiatorUserID = id
	}
	var body []byte
	if key, ok := payloadKeys[ev.Type]; ok && len(w.Payload) > 0 {
		body = w.Payload[key]
	} else if len(w.Payload) == 1 {
		for _, b := range w.Payload {
			body = b
		}
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return nil
	}
	type stream struct {
		StreamID   *string `json:"streamId"`
		StreamType string  `json:"streamType"`
	}
	var p struct {
		Stream  *stream `json:"stream"`
		Message *struct {
			MessageID string  `json:"messageId"`
			Stream    *stream `json:"stream"`
		} `json:"message"`
		MessageID     string    `json:"messageId"`
		FormMessageID string    `json:"formMessageId"`
		AffectedUser  *refUser  `json:"affectedUser"`
		AffectedUsers []refUser `json:"affectedUsers"`
		ToUser        *refUser  `json:"toUser"`
		FromUser      *refUser  `json:"fromUser"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	st := p.Stream
	if st == nil && p.Message != nil {
		st = p.Message.Stream
	}
	if st != nil {
		ev.HasStream = true
		if st.StreamID != nil {
			ev.StreamID = NormalizeStreamID(*st.StreamID)
		}
		ev.StreamType = st.StreamType
	}
	if ev.MessageID == "" {
		switch {
		case p.Message != nil && p.Message.MessageID != "":
			ev.MessageID = p.Message.MessageID
		case p.MessageID != "":
			ev.MessageID = p.MessageID
		case p.FormMessageID != "":
			ev.MessageID = p.FormMessageID
		}
	}
	users := []*refUser{p.AffectedUser, p.ToUser, p.FromUser}
	for i := range p.AffectedUsers {
		users = append(users, &p.AffectedUsers[i])
	}
	for _, u := range users {
		if u == nil || u.UserID == "" {
			continue
		}
		id, err := u.id()
		if err != nil {
			return fmt.Errorf("affected user: %w", err)
		}
		ev.AffectedUserIDs = append(ev.AffectedUserIDs, id)
	}
	return nil
}

type refUser struct {
	UserID json.Number `json:"userId"`
}

func (u *refUser) id() (int64, error) {
	if u.UserID == "" {
		return 0, nil
	}
	id, err := u.UserID.Int64()
	if err != nil {
		return 0, fmt.Errorf("userId %q: %w", u.UserID, err)
	}
	return id, nil
}

// sameRouting reports how got differs from the reference, "" when it
// does not: every routing field, and whether there is an error (not its
// text: the decoder words its errors its own way).
func sameRouting(got, want Event) string {
	errText := func(e error) string {
		if e == nil {
			return "<nil>"
		}
		return "an error"
	}
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.Type != want.Type:
		return fmt.Sprintf("Type %q, want %q", got.Type, want.Type)
	case got.Timestamp != want.Timestamp:
		return fmt.Sprintf("Timestamp %d, want %d", got.Timestamp, want.Timestamp)
	case got.MessageID != want.MessageID:
		return fmt.Sprintf("MessageID %q, want %q", got.MessageID, want.MessageID)
	case got.InitiatorUserID != want.InitiatorUserID:
		return fmt.Sprintf("InitiatorUserID %d, want %d", got.InitiatorUserID, want.InitiatorUserID)
	case got.HasStream != want.HasStream || got.StreamID != want.StreamID || got.StreamType != want.StreamType:
		return fmt.Sprintf("stream %v %q %q, want %v %q %q", got.HasStream, got.StreamID, got.StreamType,
			want.HasStream, want.StreamID, want.StreamType)
	case !slices.Equal(got.AffectedUserIDs, want.AffectedUserIDs):
		return fmt.Sprintf("AffectedUserIDs %v, want %v", got.AffectedUserIDs, want.AffectedUserIDs)
	case errText(got.Err) != errText(want.Err):
		return fmt.Sprintf("Err %s, want %s", errText(got.Err), errText(want.Err))
	}
	return ""
}

// fastPathSeeds are events at the edges of the fast path: each must either
// be decoded by it exactly as encoding/json does, or be declined.
var fastPathSeeds = []string{
	`{"id":"a","type":"MESSAGESENT","timestamp":1,"payload":{"messageSent":{"message":{"messageId":"m","stream":{"streamId":"s+/=","streamType":"ROOM"}}}}}`,
	`{"ID":"a","type":"X"}`,                         // case variant of a field
	`{"id":"a","Type":"X","type":"Y"}`,              // exact and variant
	`{"\u0069d":"a","type":"X"}`,                    // escaped key
	`{"id":"a\u0041","type":"X"}`,                   // escaped value
	`{"id":"a","type":"X","type":"Y"}`,              // duplicate
	`{"id":null,"type":"X"}`,                        // null string
	`{"id":1,"type":"X"}`,                           // wrong type
	`{"type":"X","timestamp":"12"}`,                 // quoted number
	`{"type":"X","timestamp":1e3}`,                  // not an integer
	`{"type":"X","timestamp":1.0}`,                  // not an integer
	`{"type":"X","timestamp":-0}`,                   // negative zero
	`{"type":"X","timestamp":99999999999999999999}`, // overflows
	`{"type":"X","timestamp":123456789012345678}`,   // 18 digits
	`{"type":"X","initiator":{"user":{"userId":7}},"initiator":{"user":null}}`,
	`{"type":"X","initiator":{"user":{"userId":"7"}}}`,
	`{"type":"X","initiator":null}`,
	`{"type":" \u00a0"}`,
	`{"type":"\u0085"}`,
	`{"type":"X","payload":{"a":{"stream":{"streamId":"x"}},"a":{"stream":null}}}`,
	`{"type":"X","payload":{"a":{"stream":{"streamId":"x"}},"b":{}}}`,
	`{"type":"X","payload":{"\xff":{"stream":{}},"\xfe":{}}}`,
	`{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"stream":{"streamId":"s"},"affectedUser":{"userId":1}},"other":1}}`,
	`{"payload":{"userJoinedRoom":{"stream":{"streamId":"s"},"affectedUser":{"userId":1}}},"type":"USERJOINEDROOM"}`,
	`{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"affectedUsers":[{"userId":1},null,{"userId":2},{}]}}}`,
	`{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"AffectedUser":{"userId":1}}}}`,
	`{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"affectedUser":{"USERID":1}}}}`,
	`{"type":"MESSAGESENT","payload":{"messageSent":{"message":{"stream":{"streamId":"s"}},"stream":null}}}`,
	`{"type":"MESSAGESENT","payload":{"messageSent":{"message":{"messageId":"m","messageId":"n"}}}}`,
	`{"type":"MESSAGESENT","payload":{"messageSent":[]}}`,
	`{"type":"MESSAGESENT","payload":{"messageSent":"x"}}`,
	`{"type":"MESSAGESENT","payload":[]}`,
	`{"type":"MESSAGESENT","payload":null}`,
	`{"type":"X","k":"\u212a"}`,
	`{"type":"X","\u017fource":1}`,
	`{"type":"X"} `,
	`{"type":"X"}x`,
	`{"type":"X",}`,
	`{"type":"X" "id":"a"}`,
	`{"type":"X","a":[1,2,,3]}`,
	`{"type":"X","a":"` + "\x01" + `"}`,
	`{"type":"X","a":"\x"}`,
	`{"type":"X","a":"\u12"}`,
	`{"type":"X","a":01}`,
	`{"type":"X","a":-}`,
	`{"type":"X","a":1.}`,
	`{"type":"X","a":1e}`,
	`{"type":"X","a":tru}`,
	`{"type":"X","a":[` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `]}`,
	`{"type":"X","a":"` + strings.Repeat(`\"`, 20) + `a\\"}`,
	`{"type":"X","a":"12345678\"9"}`,
}

// TestDecoderMatchesEncodingJSON runs the differential check over the
// samples, the synthetic events and the edge seeds (FuzzParseEventFast
// explores further).
func TestDecoderMatchesEncodingJSON(t *testing.T) {
	var raws [][]byte
	for _, ev := range allSampleEvents(t) {
		raws = append(raws, ev.Raw)
	}
	for _, s := range append(slices.Clone(syntheticEvents), fastPathSeeds...) {
		raws = append(raws, []byte(s))
	}
	for _, raw := range raws {
		if d := sameRouting(ParseEvent(raw), refParseEvent(raw)); d != "" {
			t.Errorf("%s\nevent: %s", d, raw)
		}
	}
}

// FuzzParseEventFast: ParseEvent agrees with plain encoding/json on every
// routing field and on whether there is an error, and never routes
// invalid JSON.
func FuzzParseEventFast(f *testing.F) {
	addEventSeeds(f)
	for _, s := range fastPathSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := ParseEvent(data)
		if ev.Err == nil && !json.Valid(data) {
			t.Fatalf("routed invalid JSON %q", data)
		}
		if d := sameRouting(ev, refParseEvent(data)); d != "" {
			t.Fatalf("%s\nevent: %q", d, data)
		}
	})
}

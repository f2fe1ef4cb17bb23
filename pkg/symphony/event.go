package symphony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Event types Symphony documents for the real-time APIs. Unknown types are
// tolerated everywhere: they are routed by their (sanitised) type name.
const (
	TypeMessageSent                = "MESSAGESENT"
	TypeMessageSuppressed          = "MESSAGESUPPRESSED"
	TypeSymphonyElementsAction     = "SYMPHONYELEMENTSACTION"
	TypeSharedPost                 = "SHAREDPOST"
	TypeInstantMessageCreated      = "INSTANTMESSAGECREATED"
	TypeRoomCreated                = "ROOMCREATED"
	TypeRoomUpdated                = "ROOMUPDATED"
	TypeRoomDeactivated            = "ROOMDEACTIVATED"
	TypeRoomReactivated            = "ROOMREACTIVATED"
	TypeUserRequestedToJoinRoom    = "USERREQUESTEDTOJOINROOM"
	TypeUserJoinedRoom             = "USERJOINEDROOM"
	TypeUserLeftRoom               = "USERLEFTROOM"
	TypeRoomMemberPromotedToOwner  = "ROOMMEMBERPROMOTEDTOOWNER"
	TypeRoomMemberDemotedFromOwner = "ROOMMEMBERDEMOTEDFROMOWNER"
	TypeConnectionRequested        = "CONNECTIONREQUESTED"
	TypeConnectionAccepted         = "CONNECTIONACCEPTED"
	TypeGenericSystemEvent         = "GENERICSYSTEMEVENT"
)

// payloadKeys maps each known event type to the single key its payload object
// carries (lowerCamelCase of the type, as in the V4Payload schema).
var payloadKeys = map[string]string{
	TypeMessageSent:                "messageSent",
	TypeMessageSuppressed:          "messageSuppressed",
	TypeSymphonyElementsAction:     "symphonyElementsAction",
	TypeSharedPost:                 "sharedPost",
	TypeInstantMessageCreated:      "instantMessageCreated",
	TypeRoomCreated:                "roomCreated",
	TypeRoomUpdated:                "roomUpdated",
	TypeRoomDeactivated:            "roomDeactivated",
	TypeRoomReactivated:            "roomReactivated",
	TypeUserRequestedToJoinRoom:    "userRequestedToJoinRoom",
	TypeUserJoinedRoom:             "userJoinedRoom",
	TypeUserLeftRoom:               "userLeftRoom",
	TypeRoomMemberPromotedToOwner:  "roomMemberPromotedToOwner",
	TypeRoomMemberDemotedFromOwner: "roomMemberDemotedFromOwner",
	TypeConnectionRequested:        "connectionRequested",
	TypeConnectionAccepted:         "connectionAccepted",
	TypeGenericSystemEvent:         "genericSystemEvent",
}

// KnownTypes returns the documented event types, in a stable order.
func KnownTypes() []string {
	return []string{
		TypeMessageSent, TypeMessageSuppressed, TypeSymphonyElementsAction, TypeSharedPost,
		TypeInstantMessageCreated, TypeRoomCreated, TypeRoomUpdated, TypeRoomDeactivated,
		TypeRoomReactivated, TypeUserRequestedToJoinRoom, TypeUserJoinedRoom, TypeUserLeftRoom,
		TypeRoomMemberPromotedToOwner, TypeRoomMemberDemotedFromOwner, TypeConnectionRequested,
		TypeConnectionAccepted, TypeGenericSystemEvent,
	}
}

// IsKnownType reports whether t is one of [KnownTypes].
func IsKnownType(t string) bool { _, ok := payloadKeys[t]; return ok }

// PayloadKey returns the payload key of a known event type ("messageSent" for
// MESSAGESENT) and false for an unknown type.
func PayloadKey(eventType string) (string, bool) {
	k, ok := payloadKeys[eventType]
	return k, ok
}

// ErrInvalidEvent is wrapped by every error that says an event cannot be
// routed (not a JSON object, no type, a routing field of the wrong JSON type).
// Such an event is not dropped: the bridge sends it to the dead-letter subject.
var ErrInvalidEvent = errors.New("invalid event")

// Event is one real-time event, decoded only as far as routing and
// identity need. Raw holds the event's JSON bytes exactly as the Agent sent
// them; the other fields are views into it.
type Event struct {
	// Raw is the event's JSON, unchanged. It is always set, also when Err is.
	Raw []byte
	// Err is non-nil (wrapping [ErrInvalidEvent]) when the event could not be
	// decoded for routing; the fields below are then best effort.
	Err error

	ID              string // may be empty: Symphony sometimes omits it
	Type            string // as sent, e.g. "MESSAGESENT"
	Timestamp       int64  // ms since the epoch; 0 when absent
	MessageID       string // envelope messageId, else the nested message/form id
	InitiatorUserID int64  // 0 when absent
	HasStream       bool   // false for events without a stream (connections)
	StreamID        string // normalised to URL-safe base64 without padding
	StreamType      string // as sent ("ROOM", "IM", ...); may be empty
	// AffectedUserIDs are the users the event is about besides the initiator,
	// in a fixed order: affectedUser, toUser, fromUser, then affectedUsers in
	// payload order.
	AffectedUserIDs []int64
}

// Batch is what one read of a feed returns.
type Batch struct {
	Events []Event
	// AckID acknowledges this batch when sent with the next read. Empty for
	// datafeed v1, which has no acknowledgement.
	AckID string
	// FeedRecreated is set when the read had to delete and recreate the feed
	// (a 400 on a datafeed v2 read): Symphony dropped whatever the old feed
	// still held, and the ackId chain starts again.
	FeedRecreated bool
	// FeedID names the feed the batch came from (for logs).
	FeedID string
}

type wireUser struct {
	UserID json.Number `json:"userId"`
}

type wireStream struct {
	StreamID   *string `json:"streamId"`
	StreamType string  `json:"streamType"`
}

type wireMessage struct {
	MessageID string      `json:"messageId"`
	Stream    *wireStream `json:"stream"`
}

// wirePayload is the union of the routing fields of every payload type.
type wirePayload struct {
	Stream        *wireStream  `json:"stream"`
	Message       *wireMessage `json:"message"`
	MessageID     string       `json:"messageId"`
	FormMessageID string       `json:"formMessageId"`
	AffectedUser  *wireUser    `json:"affectedUser"`
	AffectedUsers []wireUser   `json:"affectedUsers"`
	ToUser        *wireUser    `json:"toUser"`
	FromUser      *wireUser    `json:"fromUser"`
}

type wireEvent struct {
	ID        string      `json:"id"`
	Type      *string     `json:"type"`
	Timestamp json.Number `json:"timestamp"`
	MessageID string      `json:"messageId"`
	Initiator *struct {
		User *wireUser `json:"user"`
	} `json:"initiator"`
	Payload map[string]json.RawMessage `json:"payload"`
}

// ParseEvent decodes the routing fields of one event. It never panics; an
// event that cannot be routed is returned with Err set and Raw intact.
func ParseEvent(raw []byte) Event {
	ev := Event{Raw: raw}
	if err := ev.decode(); err != nil {
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return ev
}

func (ev *Event) decode() error {
	var w wireEvent
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
	body, ok := payloadBody(ev.Type, w.Payload)
	if !ok {
		return nil // unknown type or no payload: routed by type alone
	}
	var p wirePayload
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	stream := p.Stream
	if stream == nil && p.Message != nil {
		stream = p.Message.Stream // MESSAGESENT, SHAREDPOST
	}
	if stream != nil {
		ev.HasStream = true
		if stream.StreamID != nil {
			ev.StreamID = NormalizeStreamID(*stream.StreamID)
		}
		ev.StreamType = stream.StreamType
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
	users := make([]*wireUser, 0, 2)
	users = append(users, p.AffectedUser, p.ToUser, p.FromUser)
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

// payloadBody finds the payload object of the event: the key named after a
// known type, or the only key of the payload for an unknown type.
func payloadBody(eventType string, payload map[string]json.RawMessage) ([]byte, bool) {
	if len(payload) == 0 {
		return nil, false
	}
	if key, ok := payloadKeys[eventType]; ok {
		b, ok := payload[key]
		return b, ok && isObject(b)
	}
	if len(payload) == 1 {
		for _, b := range payload {
			return b, isObject(b)
		}
	}
	return nil, false
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func (u *wireUser) id() (int64, error) {
	if u.UserID == "" {
		return 0, nil
	}
	id, err := u.UserID.Int64()
	if err != nil {
		return 0, fmt.Errorf("userId %q: %w", u.UserID, err)
	}
	return id, nil
}

// NormalizeStreamID turns a stream id in standard base64 ("+", "/", "=")
// into the URL-safe, unpadded form the REST API uses, so the same stream
// routes to the same subject whichever form an event carries.
func NormalizeStreamID(id string) string {
	if !strings.ContainsAny(id, "+/=") {
		return id
	}
	return stdToURLBase64.Replace(id)
}

var stdToURLBase64 = strings.NewReplacer("+", "-", "/", "_", "=", "")

type wireEventList struct {
	Events []json.RawMessage `json:"events"`
	AckID  *string           `json:"ackId"`
}

// ErrBadResponse is wrapped when an Agent response body cannot be parsed
// (truncated, not JSON, wrong shape). Callers treat it as transient.
var ErrBadResponse = errors.New("unparsable response from the Agent")

// DecodeEventList decodes a V5EventList (`{"events": [...], "ackId": "..."}`).
// A body that is not such an object is an error wrapping [ErrBadResponse];
// single events that cannot be routed come back with their Err set.
func DecodeEventList(body []byte) (Batch, error) {
	var w wireEventList
	if err := json.Unmarshal(body, &w); err != nil {
		return Batch{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if w.AckID == nil {
		return Batch{}, fmt.Errorf("%w: event list has no ackId", ErrBadResponse)
	}
	return Batch{Events: parseAll(w.Events), AckID: *w.AckID}, nil
}

// DecodeEventArray decodes a bare JSON array of events (datafeed v1).
func DecodeEventArray(body []byte) (Batch, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return Batch{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return Batch{Events: parseAll(raws)}, nil
}

func parseAll(raws []json.RawMessage) []Event {
	evs := make([]Event, len(raws))
	for i, r := range raws {
		evs[i] = ParseEvent(r)
	}
	return evs
}

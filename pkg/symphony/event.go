package symphony

import (
	"bytes"
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

// ParseEvent decodes the routing fields of one event. It never panics; an
// event that cannot be routed is returned with Err set and Raw intact.
func ParseEvent(raw []byte) Event {
	d := decoder{b: raw, limit: maxJSONDepth}
	d.ws()
	ev := d.event()
	d.end()
	ev.Raw = raw
	if d.synErr {
		return Event{Raw: raw, Err: fmt.Errorf("%w: decode event: %w", ErrInvalidEvent, d.err())}
	}
	return ev
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

// ErrBadResponse is wrapped when an Agent response body cannot be parsed
// (truncated, not JSON, wrong shape). Callers treat it as transient.
var ErrBadResponse = errors.New("unparsable response from the Agent")

// DecodeEventList decodes a V5EventList (`{"events": [...], "ackId": "..."}`).
// A body that is not such an object is an error wrapping [ErrBadResponse];
// single events that cannot be routed come back with their Err set.
func DecodeEventList(body []byte) (Batch, error) {
	return decodeBody(body, false, false)
}

// DecodeEventArray decodes a bare JSON array of events (datafeed v1).
func DecodeEventArray(body []byte) (Batch, error) {
	return decodeBody(body, true, false)
}

var eventListFields = newFieldSet("events", "ackId")

// decodeBody decodes an event list or, with array set, a bare event array,
// where it lies. Events' Raw slices point into one copy of the body (one
// allocation instead of one per event), so they survive the caller reusing
// its buffer; into the body itself when the caller owns it (nobody else
// holds or will reuse it, as the client's freshly read answer).
func decodeBody(body []byte, array, owned bool) (Batch, error) {
	if !owned {
		body = bytes.Clone(body)
	}
	d := decoder{b: body, limit: maxJSONDepth}
	d.ws()
	var b Batch
	ackSet := array // an array has no ackId to miss
	if array {
		b.Events = d.events()
	} else if opened, _ := d.open('{', "the event list", "object"); opened {
		d.eventList(&b, &ackSet)
	}
	d.end()
	if err := d.err(); err != nil {
		return Batch{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if !ackSet {
		return Batch{}, fmt.Errorf("%w: event list has no ackId", ErrBadResponse)
	}
	return b, nil
}

// eventList decodes the members of an event list whose '{' is read.
func (d *decoder) eventList(b *Batch, ackSet *bool) {
	for first := true; ; first = false {
		switch d.field(first, eventListFields) {
		case fieldEnd:
			return
		case 0:
			b.Events = d.events()
		case 1:
			v, set := d.text("ackId")
			b.AckID, *ackSet = string(v), set
		default:
			d.skip()
		}
	}
}

// events decodes an array (or null) of events, each where it lies in the
// body, in the same pass. Each Raw has its capacity capped, so that nothing
// appended to one can overwrite the next. An event's own errors (type,
// depth counted from the event) are its Err; only a syntax error fails the
// whole body.
func (d *decoder) events() []Event {
	if opened, _ := d.open('[', "events", "array"); !opened {
		return nil
	}
	evs := make([]Event, 0, 128)
	limit := d.limit
	for first := true; d.elem(first); first = false {
		start := d.i
		d.limit = d.depth + maxJSONDepth
		ev := d.event()
		d.limit = limit
		ev.Raw = d.b[start:d.i:d.i]
		evs = append(evs, ev)
	}
	return evs
}

// internType returns the constant for a known event type, so that the
// common types cost no allocation, and its payload key ("" for an unknown
// type), in one look-up.
func internType(b []byte) (typ, payloadKey string) {
	if t, ok := knownTypeNames[string(b)]; ok {
		return t[0], t[1]
	}
	return string(b), ""
}

var knownTypeNames = func() map[string][2]string {
	m := make(map[string][2]string, len(payloadKeys))
	for t, k := range payloadKeys {
		m[t] = [2]string{t, k}
	}
	return m
}()

func internStreamType(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "ROOM":
		return "ROOM"
	case "IM":
		return "IM"
	case "MIM":
		return "MIM"
	case "POST":
		return "POST"
	}
	return string(b)
}

package symphony

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
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
//
// The common shape of an event is decoded by a hand-written scanner (the
// fast path at the end of this file): encoding/json spends
// most of the bridge's CPU decoding fields nobody routes on. Anything the
// scanner does not handle exactly as encoding/json would (invalid JSON,
// escapes or case variants in field names, null or odd types in routing
// fields, duplicate fields) is decoded again with encoding/json, so the
// result is always encoding/json's.
func ParseEvent(raw []byte) Event {
	ev := Event{Raw: raw}
	if ev.decodeFast() {
		return ev
	}
	ev = Event{Raw: raw}
	if err := ev.decode(); err != nil {
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return ev
}

// decode is the encoding/json decoding of the routing fields: the
// reference the fast path must agree with, and the path for every event
// the fast path declines.
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
	return decodeEventList(body, false)
}

// decodeEventListOwned is DecodeEventList for a body nobody else holds or
// will reuse (the client's freshly read answer): the events' Raw point into
// it instead of into a copy.
func decodeEventListOwned(body []byte) (Batch, error) {
	return decodeEventList(body, true)
}

func decodeEventList(body []byte, owned bool) (Batch, error) {
	if b, ok := decodeEventListFast(body, owned); ok {
		return b, nil
	}
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
	if evs, ok := decodeEventArrayFast(body); ok {
		return Batch{Events: evs}, nil
	}
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

// --- Fast path -------------------------------------------------------------
//
// The bridge's hot path is decoding read answers: with encoding/json it was
// about half of the bridge's CPU (a validation pass, then reflection over
// every field of every 1 KiB event, most of which nobody routes on). The
// scanner below validates and walks each byte once and extracts only the
// routing fields. It is deliberately narrow: whenever an input is outside
// the shape it decodes exactly like encoding/json (see ParseEvent), it
// declines and the caller decodes with encoding/json instead. It never
// accepts invalid JSON. FuzzDecodeEventList and FuzzParseEventFast check
// both properties against plain encoding/json.

// fastMaxDepth is the nesting the fast path follows before declining
// (encoding/json's own limit is 10000).
const fastMaxDepth = 256

// strPlain marks the bytes that may appear in a JSON string without
// ending it or starting an escape.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanner walks one JSON text. Its methods return false on invalid JSON
// and on valid JSON the fast path declines; they never panic.
type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str scans the string at s.i and returns its contents (between the
// quotes, escapes not decoded) and whether it has no escape.
func (s *scanner) str() (v []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	s.i++
	start, b := s.i, s.b
	plain = true
	for {
		for s.i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[s.i:])) {
			s.i += 8
		}
		for s.i < len(b) && strPlain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			return nil, false, false
		}
		switch c := b[s.i]; {
		case c == '"':
			v = b[start:s.i]
			s.i++
			return v, plain, true
		case c == '\\':
			plain = false
			s.i++
			if s.i >= len(b) {
				return nil, false, false
			}
			switch b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(b) || !isHex(b[s.i+1]) || !isHex(b[s.i+2]) || !isHex(b[s.i+3]) || !isHex(b[s.i+4]) {
					return nil, false, false
				}
				s.i += 5
			default:
				return nil, false, false
			}
		default: // a control character
			return nil, false, false
		}
	}
}

// special8 reports whether any of 8 bytes (a little-endian word) is a
// quote, a backslash or a control character: the scanner then looks at them
// one by one. Most of an event is string contents; this skips it 8 bytes at
// a time.
func special8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(lo*'"'), x^(lo*'\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(bs-lo)&^bs)&hi != 0
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// plainStr scans a string the fast path can take as it is: no escape and
// valid UTF-8 (encoding/json would replace invalid bytes).
func (s *scanner) plainStr() ([]byte, bool) {
	v, plain, ok := s.str()
	return v, ok && plain && utf8.Valid(v)
}

// num scans a number and returns its text.
func (s *scanner) num() ([]byte, bool) {
	b, start := s.b, s.i
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	default:
		return nil, false
	}
	if s.peek() == '.' {
		s.i++
		if d := s.peek(); d < '0' || d > '9' {
			return nil, false
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if d := s.peek(); d < '0' || d > '9' {
			return nil, false
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	return b[start:s.i], true
}

// int scans a number that json.Number.Int64 accepts: an integer of at
// most 18 digits (longer ones are declined rather than range-checked).
func (s *scanner) int() (int64, bool) {
	t, ok := s.num()
	if !ok {
		return 0, false
	}
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// value scans (validates and skips) any value.
func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		if !s.enter('{') {
			return false
		}
		for first := true; ; first = false {
			_, _, end, ok := s.member(first)
			if !ok {
				return false
			}
			if end {
				return true
			}
			if !s.value() {
				return false
			}
		}
	case c == '[':
		if !s.enter('[') {
			return false
		}
		for first := true; ; first = false {
			end, ok := s.elem(first)
			if !ok {
				return false
			}
			if end {
				return true
			}
			if !s.value() {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		_, ok := s.num()
		return ok
	}
	return false
}

// enter consumes the opening c of an object or array.
func (s *scanner) enter(c byte) bool {
	if s.peek() != c || s.depth >= fastMaxDepth {
		return false
	}
	s.i++
	s.depth++
	return true
}

// member reads the next `"key":` of an object, or its closing brace
// (end). The value is left at s.i.
func (s *scanner) member(first bool) (key []byte, plain, end, ok bool) {
	s.ws()
	switch c := s.peek(); {
	case c == '}':
		s.i++
		s.depth--
		return nil, false, true, true
	case !first && c == ',':
		s.i++
		s.ws()
	case !first:
		return nil, false, false, false
	}
	key, plain, ok = s.str()
	if !ok {
		return nil, false, false, false
	}
	s.ws()
	if s.peek() != ':' {
		return nil, false, false, false
	}
	s.i++
	s.ws()
	return key, plain, false, true
}

// elem moves to the next element of an array (left at s.i), or past its
// closing bracket (end).
func (s *scanner) elem(first bool) (end, ok bool) {
	s.ws()
	switch c := s.peek(); {
	case c == ']':
		s.i++
		s.depth--
		return true, true
	case !first && c == ',':
		s.i++
		s.ws()
	case !first:
		return false, false
	}
	return false, true
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// otherKey reports whether an object key the caller does not decode may be
// skipped: encoding/json matches struct fields case-insensitively (with
// Unicode folding), so a key that is an escape, non-ASCII or a case variant
// of one of the struct's fields sends the caller to encoding/json.
func otherKey(key []byte, plain bool, fields ...string) bool {
	if !plain {
		return false
	}
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range fields {
		if len(f) == len(key) && strings.EqualFold(f, string(key)) {
			return false
		}
	}
	return true
}

// once marks a field as seen; a field seen twice is declined (encoding/json
// keeps the last one, merging objects).
func once(seen *uint16, bit uint16) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// decodeEventListFast is DecodeEventList's fast path: ok false declines.
//
// Events' Raw slices point into one copy of the body (one allocation
// instead of one per event), so they survive the caller reusing its buffer;
// into the body itself when the caller owns it.
func decodeEventListFast(body []byte, owned bool) (Batch, bool) {
	if !owned {
		body = bytes.Clone(body)
	}
	s := scanner{b: body}
	s.ws()
	if !s.enter('{') {
		return Batch{}, false
	}
	var events []Event
	var ackID string
	var seen uint16
	for first := true; ; first = false {
		key, plain, end, ok := s.member(first)
		if !ok {
			return Batch{}, false
		}
		if end {
			break
		}
		switch {
		case plain && string(key) == "events":
			if !once(&seen, 1) {
				return Batch{}, false
			}
			if events, ok = s.events(); !ok {
				return Batch{}, false
			}
		case plain && string(key) == "ackId":
			v, ok := s.plainStr()
			if !ok || !once(&seen, 2) {
				return Batch{}, false
			}
			ackID = string(v)
		default:
			if !otherKey(key, plain, "events", "ackId") || !s.value() {
				return Batch{}, false
			}
		}
	}
	if !s.end() || seen&2 == 0 {
		return Batch{}, false
	}
	return Batch{Events: events, AckID: ackID}, true
}

// decodeEventArrayFast is DecodeEventArray's fast path.
func decodeEventArrayFast(body []byte) ([]Event, bool) {
	s := scanner{b: bytes.Clone(body)}
	s.ws()
	events, ok := s.events()
	if !ok || !s.end() {
		return nil, false
	}
	return events, true
}

// events scans an array (not null) of events and decodes each one where it
// lies in the body, in the same pass. An event the fast path declines is
// skipped, then decoded by ParseEvent from its bytes. Each Raw has its
// capacity capped, so that nothing appended to one can overwrite the next.
func (s *scanner) events() ([]Event, bool) {
	if !s.enter('[') {
		return nil, false
	}
	evs := make([]Event, 0, 128)
	for first := true; ; first = false {
		end, ok := s.elem(first)
		if !ok {
			return nil, false
		}
		if end {
			return evs, true
		}
		start, depth := s.i, s.depth
		var ev Event
		if ev.decodeFastAt(s) {
			ev.Raw = s.b[start:s.i:s.i]
		} else {
			s.i, s.depth = start, depth
			if !s.value() {
				return nil, false
			}
			ev = ParseEvent(s.b[start:s.i:s.i])
		}
		evs = append(evs, ev)
	}
}

// fastUser is a wireUser seen by the fast path.
type fastUser struct {
	id  int64
	set bool // userId present (encoding/json: a non-empty json.Number)
}

// user decodes {"userId": n}, the only user shape the fast path takes.
func (s *scanner) user() (fastUser, bool) {
	var u fastUser
	var seen uint16
	if !s.enter('{') {
		return u, false
	}
	for first := true; ; first = false {
		key, plain, end, ok := s.member(first)
		if !ok {
			return u, false
		}
		if end {
			return u, true
		}
		if plain && string(key) == "userId" {
			if u.id, ok = s.int(); !ok || !once(&seen, 1) {
				return u, false
			}
			u.set = true
			continue
		}
		if !otherKey(key, plain, "userId") || !s.value() {
			return u, false
		}
	}
}

// fastStream is a wireStream seen by the fast path.
type fastStream struct {
	set     bool
	id, typ []byte
	idSet   bool
}

func (s *scanner) stream() (fastStream, bool) {
	st := fastStream{set: true}
	var seen uint16
	if !s.enter('{') {
		return st, false
	}
	for first := true; ; first = false {
		key, plain, end, ok := s.member(first)
		if !ok {
			return st, false
		}
		if end {
			return st, true
		}
		switch {
		case plain && string(key) == "streamId":
			if st.id, ok = s.plainStr(); !ok || !once(&seen, 1) {
				return st, false
			}
			st.idSet = true
		case plain && string(key) == "streamType":
			if st.typ, ok = s.plainStr(); !ok || !once(&seen, 2) {
				return st, false
			}
		default:
			if !otherKey(key, plain, "streamId", "streamType") || !s.value() {
				return st, false
			}
		}
	}
}

// maxPayloadKeys bounds the payload keys the fast path tracks.
const maxPayloadKeys = 8

// decodeFast decodes the routing fields of an event of the usual shape; it
// returns false (leaving ev to be reset) to decline.
func (ev *Event) decodeFast() bool {
	s := scanner{b: ev.Raw}
	s.ws()
	return ev.decodeFastAt(&s) && s.end()
}

// decodeFastAt decodes the event object at s.i, leaving s.i after it.
func (ev *Event) decodeFastAt(s *scanner) bool {
	if !s.enter('{') {
		return false
	}
	var (
		seen      uint16
		id, msgID []byte
		typ       []byte
		ts        int64
		initiator fastUser
		payload   [maxPayloadKeys][2][]byte // key, value
		nPayload  int
		direct    fastPayload // the known type's payload, decoded in passing
		directSet bool
	)
	for first := true; ; first = false {
		key, plain, end, ok := s.member(first)
		if !ok {
			return false
		}
		if end {
			break
		}
		switch {
		case plain && string(key) == "id":
			if id, ok = s.plainStr(); !ok || !once(&seen, 1) {
				return false
			}
		case plain && string(key) == "type":
			if typ, ok = s.plainStr(); !ok || !once(&seen, 2) {
				return false
			}
		case plain && string(key) == "timestamp":
			if ts, ok = s.int(); !ok || !once(&seen, 4) {
				return false
			}
		case plain && string(key) == "messageId":
			if msgID, ok = s.plainStr(); !ok || !once(&seen, 8) {
				return false
			}
		case plain && string(key) == "initiator":
			if !once(&seen, 16) || !s.enter('{') {
				return false
			}
			var iseen uint16
			for first := true; ; first = false {
				key, plain, end, ok := s.member(first)
				if !ok {
					return false
				}
				if end {
					break
				}
				if plain && string(key) == "user" {
					if initiator, ok = s.user(); !ok || !once(&iseen, 1) {
						return false
					}
					continue
				}
				if !otherKey(key, plain, "user") || !s.value() {
					return false
				}
			}
		case plain && string(key) == "payload":
			if !once(&seen, 32) || !s.enter('{') {
				return false
			}
			for first := true; ; first = false {
				key, plain, end, ok := s.member(first)
				if !ok {
					return false
				}
				if end {
					break
				}
				// Map keys are taken exactly (no folding), but must need
				// no decoding, and a repeated key is declined.
				if !plain || !utf8.Valid(key) || nPayload == maxPayloadKeys {
					return false
				}
				for _, kv := range payload[:nPayload] {
					if string(kv[0]) == string(key) {
						return false
					}
				}
				start := s.i
				if seen&2 != 0 && s.peek() == '{' && string(key) == payloadKeys[string(typ)] {
					// The type came first (it does in Symphony's events):
					// decode the payload object in this pass.
					if direct, ok = s.payload(); !ok {
						return false
					}
					directSet = true
				} else if !s.value() {
					return false
				}
				payload[nPayload] = [2][]byte{key, s.b[start:s.i]}
				nPayload++
			}
		default:
			if !otherKey(key, plain, "id", "type", "timestamp", "messageId", "initiator", "payload") || !s.value() {
				return false
			}
		}
	}
	if seen&2 == 0 || len(bytes.TrimSpace(typ)) == 0 {
		return false // no type: encoding/json words the error
	}

	ev.ID, ev.Type, ev.MessageID = string(id), internType(typ), string(msgID)
	ev.Timestamp = ts
	if initiator.set {
		ev.InitiatorUserID = initiator.id
	}

	// payloadBody: the known type's key, or the only key of an unknown type.
	var body []byte
	if key, known := payloadKeys[ev.Type]; known {
		for _, kv := range payload[:nPayload] {
			if string(kv[0]) == key {
				body = kv[1]
			}
		}
	} else if nPayload == 1 {
		body = payload[0][1]
	}
	if len(body) == 0 || body[0] != '{' {
		return true // unknown type or no payload object: routed by type alone
	}
	if !directSet {
		ps := scanner{b: body}
		var ok bool
		if direct, ok = ps.payload(); !ok || !ps.end() {
			return false
		}
	}
	ev.applyPayload(&direct)
	return true
}

// fastPayload holds the routing fields of a payload object (wirePayload).
type fastPayload struct {
	stream, msgStream           fastStream
	hasMessage                  bool
	msgMsgID, pMsgID, formMsgID []byte
	affected, toUser, fromUser  fastUser
	list                        []fastUser
}

// payload decodes the payload object at s.i.
func (s *scanner) payload() (p fastPayload, ok bool) {
	var seen uint16
	if !s.enter('{') {
		return p, false
	}
	for first := true; ; first = false {
		key, plain, end, ok := s.member(first)
		if !ok {
			return p, false
		}
		if end {
			return p, true
		}
		switch {
		case plain && string(key) == "stream":
			if p.stream, ok = s.stream(); !ok || !once(&seen, 1) {
				return p, false
			}
		case plain && string(key) == "message":
			if !once(&seen, 2) || !s.enter('{') {
				return p, false
			}
			p.hasMessage = true
			var mseen uint16
			for first := true; ; first = false {
				key, plain, end, ok := s.member(first)
				if !ok {
					return p, false
				}
				if end {
					break
				}
				switch {
				case plain && string(key) == "messageId":
					if p.msgMsgID, ok = s.plainStr(); !ok || !once(&mseen, 1) {
						return p, false
					}
				case plain && string(key) == "stream":
					if p.msgStream, ok = s.stream(); !ok || !once(&mseen, 2) {
						return p, false
					}
				default:
					if !otherKey(key, plain, "messageId", "stream") || !s.value() {
						return p, false
					}
				}
			}
		case plain && string(key) == "messageId":
			if p.pMsgID, ok = s.plainStr(); !ok || !once(&seen, 4) {
				return p, false
			}
		case plain && string(key) == "formMessageId":
			if p.formMsgID, ok = s.plainStr(); !ok || !once(&seen, 8) {
				return p, false
			}
		case plain && string(key) == "affectedUser":
			if p.affected, ok = s.user(); !ok || !once(&seen, 16) {
				return p, false
			}
		case plain && string(key) == "toUser":
			if p.toUser, ok = s.user(); !ok || !once(&seen, 32) {
				return p, false
			}
		case plain && string(key) == "fromUser":
			if p.fromUser, ok = s.user(); !ok || !once(&seen, 64) {
				return p, false
			}
		case plain && string(key) == "affectedUsers":
			if !once(&seen, 128) || !s.enter('[') {
				return p, false
			}
			for first := true; ; first = false {
				end, ok := s.elem(first)
				if !ok {
					return p, false
				}
				if end {
					break
				}
				u, ok := s.user()
				if !ok {
					return p, false
				}
				p.list = append(p.list, u)
			}
		default:
			if !otherKey(key, plain, "stream", "message", "messageId", "formMessageId",
				"affectedUser", "affectedUsers", "toUser", "fromUser") || !s.value() {
				return p, false
			}
		}
	}
}

// applyPayload sets the event's fields from its payload, as decode does.
func (ev *Event) applyPayload(p *fastPayload) {
	st := p.stream
	if !st.set && p.hasMessage {
		st = p.msgStream // MESSAGESENT, SHAREDPOST
	}
	if st.set {
		ev.HasStream = true
		if st.idSet {
			ev.StreamID = NormalizeStreamID(string(st.id))
		}
		ev.StreamType = internStreamType(st.typ)
	}
	if ev.MessageID == "" {
		switch {
		case len(p.msgMsgID) > 0:
			ev.MessageID = string(p.msgMsgID)
		case len(p.pMsgID) > 0:
			ev.MessageID = string(p.pMsgID)
		case len(p.formMsgID) > 0:
			ev.MessageID = string(p.formMsgID)
		}
	}
	for _, u := range [3]fastUser{p.affected, p.toUser, p.fromUser} {
		if u.set {
			ev.AffectedUserIDs = append(ev.AffectedUserIDs, u.id)
		}
	}
	for _, u := range p.list {
		if u.set {
			ev.AffectedUserIDs = append(ev.AffectedUserIDs, u.id)
		}
	}
}

// internType returns the constant for a known event type, so that the
// common types cost no allocation.
func internType(b []byte) string {
	if t, ok := knownTypeNames[string(b)]; ok {
		return t
	}
	return string(b)
}

var knownTypeNames = func() map[string]string {
	m := make(map[string]string, len(payloadKeys))
	for t := range payloadKeys {
		m[t] = t
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

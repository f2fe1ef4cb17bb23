package symphony

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// The routing fields of an event, decoded by [decoder] with encoding/json
// v1's semantics for these Go types (decode.go):
//
//	type event struct {
//		ID        string                     `json:"id"`
//		Type      *string                    `json:"type"`
//		Timestamp json.Number                `json:"timestamp"`
//		MessageID string                     `json:"messageId"`
//		Initiator *struct{ User *user }      `json:"initiator"`
//		Payload   map[string]json.RawMessage `json:"payload"`
//	}
//	type user struct{ UserID json.Number `json:"userId"` }
//	type stream struct {
//		StreamID   *string `json:"streamId"`
//		StreamType string  `json:"streamType"`
//	}
//	type payload struct { // the union of every payload type's routing fields
//		Stream        *stream `json:"stream"`
//		Message       *struct {
//			MessageID string  `json:"messageId"`
//			Stream    *stream `json:"stream"`
//		} `json:"message"`
//		MessageID     string  `json:"messageId"`
//		FormMessageID string  `json:"formMessageId"`
//		AffectedUser  *user   `json:"affectedUser"`
//		AffectedUsers []user  `json:"affectedUsers"`
//		ToUser        *user   `json:"toUser"`
//		FromUser      *user   `json:"fromUser"`
//	}
//
// A user is its userId's text (nil: no user, or no userId).

// envelope is an event's routing fields as decoded, before conversion.
type envelope struct {
	id, typ, msgID []byte // typ nil: no type (absent or null)
	// typeName and payloadKey are typ interned and its known payload key
	// ("" for an unknown type), looked up once, as "type" is decoded.
	typeName, payloadKey string
	ts                   []byte
	initiator            []byte
	payload              payloadSpans
	// The known type's payload object, decoded in passing when the type
	// came first (it does in Symphony's events).
	direct    fastPayload
	directAt  int // offset of the object decoded into direct; 0: none
	directErr error
}

// payloadEntry is one member of the payload map: its key and where its
// value lies in the body.
type payloadEntry struct {
	key        []byte
	start, end int
}

// payloadSpans is the payload map, one entry per key (the last duplicate
// wins). The first entries are kept in place, so that the usual payload
// (one key) costs no allocation.
type payloadSpans struct {
	first [4]payloadEntry
	n     int            // entries in first
	more  []payloadEntry // entries past first (only once first is full)
}

func (m *payloadSpans) len() int { return m.n + len(m.more) }

func (m *payloadSpans) at(i int) *payloadEntry {
	if i < len(m.first) {
		return &m.first[i]
	}
	return &m.more[i-len(m.first)]
}

// reset empties the map (a null payload).
func (m *payloadSpans) reset() { m.n, m.more = 0, m.more[:0] }

// put sets the span of key.
func (m *payloadSpans) put(key []byte, start, end int) {
	for i := range m.len() {
		if e := m.at(i); string(e.key) == string(key) {
			e.start, e.end = start, end
			return
		}
	}
	if m.n < len(m.first) {
		m.first[m.n] = payloadEntry{key, start, end}
		m.n++
		return
	}
	m.more = append(m.more, payloadEntry{key, start, end})
}

// fastStream is a stream as decoded (set: it is an object; id nil: no
// streamId, which routes as an empty one).
type fastStream struct {
	set     bool
	id, typ []byte
}

// fastPayload is a payload object's routing fields as decoded. A message
// that is null (or absent) leaves msgStream and msgMsgID empty.
type fastPayload struct {
	stream, msgStream           fastStream
	msgMsgID, pMsgID, formMsgID []byte
	affected, toUser, fromUser  []byte
	list                        [][]byte
}

var (
	envelopeFields  = newFieldSet("id", "type", "timestamp", "messageId", "initiator", "payload")
	initiatorFields = newFieldSet("user")
	userFields      = newFieldSet("userId")
	streamFields    = newFieldSet("streamId", "streamType")
	messageFields   = newFieldSet("messageId", "stream")
	payloadFields   = newFieldSet("stream", "message", "messageId", "formMessageId", "affectedUser", "affectedUsers", "toUser", "fromUser")
)

// event decodes the event at d.i. Its type and depth errors are its own
// (Err); a syntax error stays with the decoder.
func (d *decoder) event() Event {
	typeErr, tooDeep := d.typeErr, d.tooDeep
	d.typeErr, d.tooDeep = nil, false
	var (
		ev Event
		e  envelope
	)
	switch d.peek() {
	case '{':
		d.i++
		d.enter()
		d.envelope(&e)
	case 'n':
		d.lit("null") // no error: no type
	default:
		d.typeError("the event", "object")
	}
	err := d.err()
	if err == nil {
		err = ev.route(&e, d.b)
	}
	if err != nil {
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	d.typeErr, d.tooDeep = typeErr, tooDeep
	return ev
}

func (d *decoder) envelope(e *envelope) {
	for first := true; ; first = false {
		switch d.field(first, envelopeFields) {
		case fieldEnd:
			return
		case 0:
			d.keepText("id", &e.id)
		case 1:
			e.typ, _ = d.text("type")
			e.typeName, e.payloadKey = internType(e.typ)
		case 2:
			if v, ok := d.number("timestamp"); ok {
				e.ts = v
			}
		case 3:
			d.keepText("messageId", &e.msgID)
		case 4:
			d.initiator(e)
		case 5:
			d.payloadMap(e)
		default:
			d.skip()
		}
	}
}

// keepText decodes a string field: null leaves it as it was.
func (d *decoder) keepText(name string, dst *[]byte) {
	if v, ok := d.text(name); ok {
		*dst = v
	}
}

func (d *decoder) initiator(e *envelope) {
	if !d.object("initiator") {
		e.initiator = nil
		return
	}
	for first := true; ; first = false {
		switch d.field(first, initiatorFields) {
		case fieldEnd:
			return
		case 0:
			d.userField("user", &e.initiator)
		default:
			d.skip()
		}
	}
}

// userField decodes a *user field; null resets it, an object decodes into
// it.
func (d *decoder) userField(name string, u *[]byte) {
	if !d.object(name) {
		*u = nil
		return
	}
	d.user(u)
}

// user decodes the members of a user object whose '{' is read.
func (d *decoder) user(u *[]byte) {
	for first := true; ; first = false {
		switch d.field(first, userFields) {
		case fieldEnd:
			return
		case 0:
			if v, ok := d.number("userId"); ok {
				*u = v
			}
		default:
			d.skip()
		}
	}
}

// userList decodes the []user field as encoding/json decodes into a
// slice: element i decodes into what element i held (also what a longer
// earlier duplicate left beyond the current length), null keeps it.
func (d *decoder) userList(list *[][]byte) {
	if opened, null := d.open('[', "affectedUsers", "array"); !opened {
		if null {
			*list = nil
		}
		return
	}
	s, i := *list, 0
	for first := true; d.elem(first); first, i = false, i+1 {
		if i >= cap(s) {
			s = slices.Grow(s, 1)
		}
		if i >= len(s) {
			s = s[:i+1]
		}
		if opened, _ := d.open('{', "affectedUsers", "object"); opened {
			d.user(&s[i])
		}
	}
	*list = s[:i]
}

// payloadMap decodes the payload map: keys exact, values kept as spans.
func (d *decoder) payloadMap(e *envelope) {
	if opened, null := d.open('{', "payload", "map"); !opened {
		if null {
			e.payload.reset()
		}
		return
	}
	for first := true; ; first = false {
		key, plain, ok := d.member(first)
		if !ok {
			return
		}
		if !plain || !utf8.Valid(key) {
			key = unquote(key) // map keys are taken exactly, but decoded
		}
		start := d.i
		if e.payloadKey != "" && d.peek() == '{' && string(key) == e.payloadKey {
			d.directPayload(e)
		} else {
			d.skip()
		}
		e.payload.put(key, start, d.i)
	}
}

// directPayload decodes the payload object at d.i into e.direct, keeping
// its type errors apart: they count only if it turns out to be the body.
func (d *decoder) directPayload(e *envelope) {
	typeErr := d.typeErr
	d.typeErr = nil
	if e.directAt != 0 { // a duplicate: decoded afresh
		e.direct = fastPayload{}
	}
	e.directAt = d.i
	d.i++
	d.enter()
	d.payload(&e.direct)
	e.directErr = d.typeErr
	d.typeErr = typeErr
}

// payload decodes the members of a payload object whose '{' is read.
func (d *decoder) payload(p *fastPayload) {
	for first := true; ; first = false {
		switch d.field(first, payloadFields) {
		case fieldEnd:
			return
		case 0:
			d.stream("stream", &p.stream)
		case 1:
			d.message(p)
		case 2:
			d.keepText("messageId", &p.pMsgID)
		case 3:
			d.keepText("formMessageId", &p.formMsgID)
		case 4:
			d.userField("affectedUser", &p.affected)
		case 5:
			d.userList(&p.list)
		case 6:
			d.userField("toUser", &p.toUser)
		case 7:
			d.userField("fromUser", &p.fromUser)
		default:
			d.skip()
		}
	}
}

func (d *decoder) stream(name string, st *fastStream) {
	if !d.object(name) {
		*st = fastStream{}
		return
	}
	st.set = true
	for first := true; ; first = false {
		switch d.field(first, streamFields) {
		case fieldEnd:
			return
		case 0:
			st.id, _ = d.text("streamId")
		case 1:
			d.keepText("streamType", &st.typ)
		default:
			d.skip()
		}
	}
}

func (d *decoder) message(p *fastPayload) {
	if !d.object("message") {
		p.msgMsgID, p.msgStream = nil, fastStream{}
		return
	}
	for first := true; ; first = false {
		switch d.field(first, messageFields) {
		case fieldEnd:
			return
		case 0:
			d.keepText("messageId", &p.msgMsgID)
		case 1:
			d.stream("stream", &p.msgStream)
		default:
			d.skip()
		}
	}
}

// route sets the event's fields from its decoded envelope, b being the
// body the payload spans point into.
func (ev *Event) route(e *envelope, b []byte) error {
	if len(bytes.TrimSpace(e.typ)) == 0 {
		return errors.New("event has no type")
	}
	key := e.payloadKey
	ev.ID, ev.MessageID = string(e.id), string(e.msgID)
	ev.Type = e.typeName
	if e.ts != nil {
		ts, err := parseInt(e.ts)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", e.ts, err)
		}
		ev.Timestamp = ts
	}
	if len(e.initiator) > 0 {
		id, err := parseInt(e.initiator)
		if err != nil {
			return fmt.Errorf("initiator: userId %q: %w", e.initiator, err)
		}
		ev.InitiatorUserID = id
	}
	p, ok, err := e.body(key, b)
	if !ok || err != nil {
		return err
	}
	return ev.applyPayload(p)
}

// body decodes the payload object of the event: the member under key, the
// payload key of its known type, or the only member of the payload for an
// unknown type (key ""). ok is false when there is none (the event is
// routed by type alone).
func (e *envelope) body(key string, b []byte) (p *fastPayload, ok bool, err error) {
	var ent *payloadEntry
	if key != "" {
		for i := range e.payload.len() {
			if string(e.payload.at(i).key) == key {
				ent = e.payload.at(i)
			}
		}
	} else if e.payload.len() == 1 {
		ent = e.payload.at(0)
	}
	switch {
	case ent == nil || b[ent.start] != '{':
		return nil, false, nil
	case ent.start == e.directAt:
		err = e.directErr
		p = &e.direct
	default:
		d := decoder{b: b[ent.start:ent.end], i: 1, limit: maxJSONDepth}
		p = new(fastPayload)
		d.payload(p)
		err = d.err()
	}
	if err != nil {
		return nil, false, fmt.Errorf("payload: %w", err)
	}
	return p, true, nil
}

// applyPayload sets the event's fields from its payload.
func (ev *Event) applyPayload(p *fastPayload) error {
	st := p.stream
	if !st.set {
		st = p.msgStream // MESSAGESENT, SHAREDPOST
	}
	if st.set {
		ev.HasStream = true
		ev.StreamID = NormalizeStreamID(string(st.id))
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
	for _, u := range [3][]byte{p.affected, p.toUser, p.fromUser} {
		if err := ev.addUser(u); err != nil {
			return err
		}
	}
	for _, u := range p.list {
		if err := ev.addUser(u); err != nil {
			return err
		}
	}
	return nil
}

// addUser appends the user whose userId's text is u, if it has one.
func (ev *Event) addUser(u []byte) error {
	if len(u) == 0 {
		return nil
	}
	id, err := parseInt(u)
	if err != nil {
		return fmt.Errorf("affected user: userId %q: %w", u, err)
	}
	ev.AffectedUserIDs = append(ev.AffectedUserIDs, id)
	return nil
}

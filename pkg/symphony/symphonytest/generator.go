package symphonytest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// SerialKey is the field every generated event carries inside its payload
// object (payload.<payloadKey>.symbridgeSerial), numbering the events of a
// [Generator] from SerialBase+1, so tests can count and match events
// wherever they land. Symphony ignores unknown fields, and so does the spec.
const SerialKey = "symbridgeSerial"

// GeneratorConfig configures a [Generator]. The same config (Seed included)
// always yields the same events in the same order.
type GeneratorConfig struct {
	Seed int64
	// Start is the timestamp of the first event; zero: 2026-01-05 09:00 UTC.
	Start time.Time
	// Step is the mean gap between event timestamps (default 1.5 s).
	Step time.Duration
	// Now, when set, stamps events with its time instead of the synthetic
	// clock (Start + random steps): for live demos, at the cost of
	// determinism.
	Now func() time.Time
	// SerialBase: serials start at SerialBase+1 (give generators feeding one
	// Agent disjoint bases).
	SerialBase int64
	// Weights are the relative frequencies of the known types in
	// [Generator.Next] and [Generator.Mix]; nil: [DefaultWeights]. Types
	// with no weight are not drawn.
	Weights map[string]int
	// NoIDRate is the share of drawn events without an "id" (Symphony sends
	// some, e.g. for external users joining a room).
	NoIDRate float64
	// StdBase64Rate is the share of drawn events whose stream id is in
	// standard base64 ("+", "/", "==") instead of the API's URL-safe form.
	StdBase64Rate float64
	// SharedIDRate is the share of [Generator.Mix] draws that produce one
	// action of several events sharing one id (two users joining a room, a
	// room created and its creator joining).
	SharedIDRate float64
	// UnknownTypeRate is the share of drawn events of a type Symphony may
	// add later (see [UnknownTypes]).
	UnknownTypeRate float64
}

// DefaultWeights draws MESSAGESENT most, and every other known type too.
func DefaultWeights() map[string]int {
	w := make(map[string]int)
	for _, t := range symphony.KnownTypes() {
		w[t] = 1
	}
	w[symphony.TypeMessageSent] = 10
	return w
}

// UnknownTypes are plausible future event types (with their payload keys)
// used for unknown-type events. Any other unknown type gets its lower-cased
// name as payload key.
var UnknownTypes = map[string]string{
	"MESSAGEREACTIONADDED": "messageReactionAdded",
	"USERPRESENCEUPDATED":  "userPresenceUpdated",
	"ROOMPINNEDMESSAGE":    "roomPinnedMessage",
}

// Generator produces realistic datafeed events as raw JSON, following the
// V4Event schema and the shapes Symphony documents for each type. It is safe
// for concurrent use; for a given config its output is deterministic when
// called from one goroutine.
type Generator struct {
	mu      sync.Mutex
	cfg     GeneratorConfig
	rng     *rand.Rand
	serial  int64
	now     time.Time
	users   []genUser
	streams []genStream
	types   []string // weighted draw table
	unknown []string
}

type genUser struct {
	ID                                    int64
	First, Last, Email, Username, Display string
}

type genStream struct {
	id       []byte // 25 bytes, as Symphony's
	typ      string // IM, MIM, ROOM, POST
	name     string // rooms
	external bool
	crossPod bool
	members  []int // indexes into users (IM, MIM)
	owner    int
}

var (
	firstNames = []string{"Alice", "Bruno", "Chiara", "Deepak", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam"}
	lastNames  = []string{"Martin", "Rossi", "Kumar", "Novak", "Haddad", "Chen", "Tanaka", "Silva", "Weber", "Okafor", "Byrne", "Dubois"}
	roomNames  = []string{"FX Desk", "Rates Trading EMEA", "Credit Research", "Ops Incidents", "Equity Sales", "Release Train"}
	sentences  = []string{
		"Morning all, markets open in five minutes.",
		"Can someone confirm the settlement date for this trade?",
		"Price updated, please refresh.",
		"Thanks, looks good to me.",
		"Deploying the new pricing service now.",
		"The client asked for a quote on the 10y.",
		"Lunch order closes at noon.",
		"Incident resolved, root cause in the ticket.",
	}
	hashtags = []string{"release", "incident", "eod", "rates"}
	cashtags = []string{"AAPL", "MSFT", "EURUSD", "TSLA"}
)

// NewGenerator returns a Generator with its own users and streams, all
// derived from cfg.Seed.
func NewGenerator(cfg GeneratorConfig) *Generator {
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	if cfg.Step <= 0 {
		cfg.Step = 1500 * time.Millisecond
	}
	if cfg.Weights == nil {
		cfg.Weights = DefaultWeights()
	}
	g := &Generator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e6e)),
		serial: cfg.SerialBase,
		now:    cfg.Start,
	}
	for i := range firstNames {
		f, l := firstNames[i], lastNames[(i*5)%len(lastNames)]
		g.users = append(g.users, genUser{
			ID:       344147139494800 + int64(g.rng.IntN(100000))*1000 + int64(i),
			First:    f,
			Last:     l,
			Display:  f + " " + l,
			Email:    strings.ToLower(f+"."+l) + "@acme.example",
			Username: strings.ToLower(f + "." + l),
		})
	}
	for i, name := range roomNames {
		g.streams = append(g.streams, genStream{id: g.streamIDBytes(), typ: "ROOM", name: name,
			external: i == 4, crossPod: i == 4, owner: i % len(g.users)})
	}
	for i := range 4 {
		g.streams = append(g.streams, genStream{id: g.streamIDBytes(), typ: "IM", members: []int{i, i + 4}})
	}
	for i := range 2 {
		g.streams = append(g.streams, genStream{id: g.streamIDBytes(), typ: "MIM", members: []int{i, i + 3, i + 6}})
	}
	for i := range 3 {
		g.streams = append(g.streams, genStream{id: g.streamIDBytes(), typ: "POST", owner: i})
	}
	types := make([]string, 0, len(cfg.Weights))
	for t := range cfg.Weights {
		types = append(types, t)
	}
	sort.Strings(types) // deterministic table whatever the map order
	for _, t := range types {
		for range max(cfg.Weights[t], 0) {
			g.types = append(g.types, t)
		}
	}
	for t := range UnknownTypes {
		g.unknown = append(g.unknown, t)
	}
	sort.Strings(g.unknown)
	return g
}

// streamIDBytes makes a 25-byte id whose URL-safe form has "___" in the
// middle, like the ids Symphony documents.
func (g *Generator) streamIDBytes() []byte {
	b := make([]byte, 25)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	s := []byte(base64.RawURLEncoding.EncodeToString(b))
	copy(s[22:], "___")
	out, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil { // cannot happen: only whole 6-bit groups were replaced
		return b
	}
	return out
}

func urlSafeID(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
func stdID(b []byte) string     { return base64.StdEncoding.EncodeToString(b) }

// EventOption changes one generated event.
type EventOption func(*eventSpec)

// WithoutID omits the event's "id".
func WithoutID() EventOption { return func(s *eventSpec) { s.noID = true } }

// WithID sets the event's "id".
func WithID(id string) EventOption { return func(s *eventSpec) { s.id = id } }

// WithStdBase64StreamID writes the stream id in standard base64.
func WithStdBase64StreamID() EventOption { return func(s *eventSpec) { s.std = true } }

// WithTimestamp sets the event's timestamp (ms since the epoch).
func WithTimestamp(ms int64) EventOption { return func(s *eventSpec) { s.ts = ms } }

type eventSpec struct {
	typ       string
	id        string
	noID      bool
	std       bool
	ts        int64
	initiator *genUser
	stream    *genStream
	affected  *genUser
}

// Serial returns the serial of the last event generated (SerialBase if none).
func (g *Generator) Serial() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.serial
}

// Event generates one event of the given type. An unknown type yields an
// event shaped like the known ones, with a stream and a payload key of its
// own.
func (g *Generator) Event(eventType string, opts ...EventOption) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &eventSpec{typ: eventType}
	for _, o := range opts {
		o(s)
	}
	return g.build(s)
}

// All generates one event of every known type, in [symphony.KnownTypes] order.
func (g *Generator) All() [][]byte {
	out := make([][]byte, 0, len(symphony.KnownTypes()))
	for _, t := range symphony.KnownTypes() {
		out = append(out, g.Event(t))
	}
	return out
}

// Action generates the events of one user action: one per type given, all
// sharing one id, timestamp, initiator and room. Membership events of one
// action affect different users, so
// Action(TypeUserJoinedRoom, TypeUserJoinedRoom) is two users added at once,
// and Action(TypeRoomCreated, TypeUserJoinedRoom) a room and its creator.
func (g *Generator) Action(types ...string) [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.action(types)
}

func (g *Generator) action(types []string) [][]byte {
	id := g.eventID()
	g.advance()
	ts := g.now.UnixMilli()
	initiator := &g.users[g.rng.IntN(len(g.users))]
	stream := g.pick("ROOM")
	perm := g.rng.Perm(len(g.users))
	out := make([][]byte, 0, len(types))
	for i, t := range types {
		affected := &g.users[perm[i%len(perm)]]
		if affected.ID == initiator.ID {
			affected = &g.users[perm[(i+len(types))%len(perm)]]
		}
		out = append(out, g.build(&eventSpec{typ: t, id: id, ts: ts, initiator: initiator, stream: stream, affected: affected}))
	}
	return out
}

// Next generates one event drawn from the configured mix and rates.
func (g *Generator) Next() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.next()
}

func (g *Generator) next() []byte {
	s := &eventSpec{}
	switch {
	case g.cfg.UnknownTypeRate > 0 && g.rng.Float64() < g.cfg.UnknownTypeRate:
		s.typ = g.unknown[g.rng.IntN(len(g.unknown))]
	case len(g.types) == 0:
		s.typ = symphony.TypeMessageSent
	default:
		s.typ = g.types[g.rng.IntN(len(g.types))]
	}
	s.noID = g.cfg.NoIDRate > 0 && g.rng.Float64() < g.cfg.NoIDRate
	s.std = g.cfg.StdBase64Rate > 0 && g.rng.Float64() < g.cfg.StdBase64Rate
	return g.build(s)
}

// Mix generates exactly n events from the configured mix; with SharedIDRate
// some of them come as actions of several events sharing one id.
func (g *Generator) Mix(n int) [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([][]byte, 0, max(n, 0))
	for len(out) < n {
		if g.cfg.SharedIDRate > 0 && n-len(out) >= 2 && g.rng.Float64() < g.cfg.SharedIDRate {
			acts := [][]string{
				{symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom},
				{symphony.TypeRoomCreated, symphony.TypeUserJoinedRoom},
				{symphony.TypeUserLeftRoom, symphony.TypeUserLeftRoom},
				{symphony.TypeRoomMemberPromotedToOwner, symphony.TypeRoomMemberPromotedToOwner},
			}
			out = append(out, g.action(acts[g.rng.IntN(len(acts))])...)
			continue
		}
		out = append(out, g.next())
	}
	return out
}

func (g *Generator) advance() {
	if g.cfg.Now != nil {
		g.now = g.cfg.Now()
		return
	}
	step := time.Duration(g.rng.Int64N(int64(2*g.cfg.Step) + 1))
	g.now = g.now.Add(step)
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (g *Generator) eventID() string {
	b := make([]byte, 6)
	for i := range b {
		b[i] = idAlphabet[g.rng.IntN(len(idAlphabet))]
	}
	return string(b)
}

func (g *Generator) pick(types ...string) *genStream {
	var idx []int
	for i, s := range g.streams {
		if slices.Contains(types, s.typ) {
			idx = append(idx, i)
		}
	}
	return &g.streams[idx[g.rng.IntN(len(idx))]]
}

func (g *Generator) otherUser(not int64) *genUser {
	for {
		u := &g.users[g.rng.IntN(len(g.users))]
		if u.ID != not {
			return u
		}
	}
}

// messageID makes a message id: same format as stream ids.
func (g *Generator) messageID() []byte { return g.streamIDBytes() }

// envelope is V4Event with its fields in Symphony's order.
type envelope struct {
	ID        string         `json:"id,omitempty"`
	MessageID string         `json:"messageId,omitempty"`
	Timestamp int64          `json:"timestamp"`
	Type      string         `json:"type"`
	Initiator map[string]any `json:"initiator"`
	Payload   map[string]any `json:"payload"`
}

func userJSON(u *genUser) map[string]any {
	return map[string]any{
		"userId": u.ID, "firstName": u.First, "lastName": u.Last,
		"displayName": u.Display, "email": u.Email, "username": u.Username,
	}
}

// streamJSON renders a V4Stream; full adds the room fields.
func (g *Generator) streamJSON(s *genStream, std, full bool) map[string]any {
	m := map[string]any{"streamId": urlSafeID(s.id), "streamType": s.typ}
	if std {
		m["streamId"] = stdID(s.id)
	}
	if full {
		if s.typ == "ROOM" {
			m["roomName"] = s.name
		}
		m["external"] = s.external
		m["crossPod"] = s.crossPod
		if s.external {
			m["recipientTenantIds"] = []int{130, 196}
		} else {
			m["recipientTenantIds"] = []int{130}
		}
	}
	return m
}

// build renders one event. The caller holds g.mu.
func (g *Generator) build(s *eventSpec) []byte {
	g.serial++
	if s.ts == 0 {
		g.advance()
		s.ts = g.now.UnixMilli()
	}
	if s.id == "" && !s.noID {
		s.id = g.eventID()
	}
	if s.noID {
		s.id = ""
	}
	if s.initiator == nil {
		s.initiator = &g.users[g.rng.IntN(len(g.users))]
	}
	if s.affected == nil {
		s.affected = g.otherUser(s.initiator.ID)
	}
	env := envelope{ID: s.id, Timestamp: s.ts, Type: s.typ,
		Initiator: map[string]any{"user": userJSON(s.initiator)}}
	body, key, msgID := g.payload(s)
	body[SerialKey] = g.serial
	env.MessageID = msgID
	env.Payload = map[string]any{key: body}
	out, err := json.Marshal(env)
	if err != nil { // only plain maps, strings and numbers: cannot happen
		return []byte(fmt.Sprintf(`{"type":%q,"timestamp":%d,"payload":{}}`, s.typ, s.ts))
	}
	return out
}

// payload renders the type's payload object and returns it with its key and
// the envelope messageId (empty when the type has none).
func (g *Generator) payload(s *eventSpec) (map[string]any, string, string) {
	key, known := symphony.PayloadKey(s.typ)
	if !known {
		key = UnknownTypes[s.typ]
		if key == "" {
			key = strings.ToLower(s.typ)
		}
	}
	room := s.stream
	if room == nil || room.typ != "ROOM" {
		room = g.pick("ROOM")
	}
	switch s.typ {
	case symphony.TypeMessageSent:
		st := s.stream
		if st == nil {
			st = g.pick("ROOM", "IM", "MIM")
		}
		msg := g.message(s.initiator, st, s.std, s.ts)
		return map[string]any{"message": msg}, key, msg["messageId"].(string)
	case symphony.TypeSharedPost:
		wall := g.pick("POST")
		msg := g.message(s.initiator, wall, s.std, s.ts)
		shared := g.message(g.otherUser(s.initiator.ID), g.pick("ROOM"), s.std, s.ts-int64(g.rng.IntN(86400000)))
		return map[string]any{"message": msg, "sharedMessage": shared}, key, msg["messageId"].(string)
	case symphony.TypeInstantMessageCreated:
		st := s.stream
		if st == nil || (st.typ != "IM" && st.typ != "MIM") {
			st = g.pick("IM", "MIM")
		}
		sj := g.streamJSON(st, s.std, false)
		members := make([]any, 0, len(st.members))
		for _, m := range st.members {
			members = append(members, map[string]any{"userId": g.users[m].ID})
		}
		sj["members"] = members
		sj["external"], sj["crossPod"] = false, false
		return map[string]any{"stream": sj}, key, ""
	case symphony.TypeRoomCreated:
		return map[string]any{
			"stream":         g.streamJSON(room, s.std, true),
			"roomProperties": g.roomProperties(room, s.initiator, s.ts, true),
		}, key, urlSafeID(g.messageID())
	case symphony.TypeRoomUpdated:
		props := g.roomProperties(room, s.initiator, s.ts, false)
		props["description"] = "Updated: " + sentences[g.rng.IntN(len(sentences))]
		return map[string]any{
			"stream":            g.streamJSON(room, s.std, true),
			"newRoomProperties": props,
		}, key, urlSafeID(g.messageID())
	case symphony.TypeRoomDeactivated, symphony.TypeRoomReactivated:
		return map[string]any{"stream": g.streamJSON(room, s.std, false)}, key, ""
	case symphony.TypeUserRequestedToJoinRoom:
		// As in Symphony's example: a stream with only its id and no members.
		sj := map[string]any{"streamId": urlSafeID(room.id), "members": []any{}}
		if s.std {
			sj["streamId"] = stdID(room.id)
		}
		owner := &g.users[room.owner]
		return map[string]any{
			"stream":        sj,
			"affectedUsers": []any{userJSON(owner), userJSON(g.otherUser(owner.ID))},
		}, key, urlSafeID(g.messageID())
	case symphony.TypeUserJoinedRoom, symphony.TypeUserLeftRoom,
		symphony.TypeRoomMemberPromotedToOwner, symphony.TypeRoomMemberDemotedFromOwner:
		return map[string]any{
			"stream":       g.streamJSON(room, s.std, true),
			"affectedUser": userJSON(s.affected),
		}, key, ""
	case symphony.TypeConnectionRequested:
		return map[string]any{"toUser": userJSON(s.affected)}, key, ""
	case symphony.TypeConnectionAccepted:
		return map[string]any{"fromUser": userJSON(s.affected)}, key, ""
	case symphony.TypeMessageSuppressed:
		// Symphony's example carries the stream id alone, no streamType.
		sid := urlSafeID(room.id)
		if s.std {
			sid = stdID(room.id)
		}
		return map[string]any{
			"messageId": urlSafeID(g.messageID()),
			"stream":    map[string]any{"streamId": sid},
		}, key, ""
	case symphony.TypeSymphonyElementsAction:
		// Symphony sends this one's ids in standard base64 (the form
		// message id even has a suffix after the padding).
		form := g.messageID()
		return map[string]any{
			"stream":        map[string]any{"streamId": stdID(room.id), "streamType": "ROOM"},
			"formMessageId": stdID(form) + fmt.Sprint(s.ts%100000),
			"formId":        "order-form",
			"formValues": map[string]any{
				"action":   "submit",
				"ticker":   cashtags[g.rng.IntN(len(cashtags))],
				"quantity": fmt.Sprint(100 * (1 + g.rng.IntN(50))),
				"side":     []string{"buy", "sell"}[g.rng.IntN(2)],
			},
		}, key, urlSafeID(g.messageID())
	case symphony.TypeGenericSystemEvent:
		sid := urlSafeID(room.id)
		if s.std {
			sid = stdID(room.id)
		}
		return map[string]any{
			"stream":         map[string]any{"streamId": sid, "external": room.external, "crossPod": room.crossPod},
			"eventTimestamp": s.ts,
			"sourceSystem":   "com.symphony.calls",
			"eventSubtype":   []string{"call.started", "call.ended"}[g.rng.IntN(2)],
			"parameters": map[string]any{
				"callId":       fmt.Sprintf("call-%06d", g.rng.IntN(1000000)),
				"participants": 2 + g.rng.IntN(5),
			},
		}, key, urlSafeID(g.messageID())
	default: // unknown type: shaped like a message-related event
		return map[string]any{
			"stream":    g.streamJSON(room, s.std, false),
			"messageId": urlSafeID(g.messageID()),
			"reaction":  []string{"+1", "tada", "eyes"}[g.rng.IntN(3)],
		}, key, ""
	}
}

func (g *Generator) roomProperties(room *genStream, creator *genUser, ts int64, full bool) map[string]any {
	p := map[string]any{
		"name":        room.name,
		"description": "Room for " + strings.ToLower(room.name),
		"external":    room.external,
		"crossPod":    room.crossPod,
		"public":      !room.external,
		"readOnly":    false,
		"keywords":    []any{map[string]any{"key": "region", "value": "EMEA"}},
	}
	if full {
		p["creatorUser"] = userJSON(creator)
		p["createdDate"] = ts
		p["copyProtected"] = false
		p["discoverable"] = !room.external
		p["membersCanInvite"] = true
		p["canViewHistory"] = true
	}
	return p
}

// message renders a V4Message in PresentationML with its EntityJSON data
// as a string, as the Agent delivers it.
func (g *Generator) message(from *genUser, st *genStream, std bool, ts int64) map[string]any {
	var text strings.Builder
	entities := map[string]any{}
	text.WriteString(`<div data-format="PresentationML" data-version="2.0" class="wysiwyg"><p>`)
	switch g.rng.IntN(4) {
	case 0:
		m := g.otherUser(from.ID)
		fmt.Fprintf(&text, `<span class="entity" data-entity-id="0">@%s</span> `, m.Display)
		entities["0"] = map[string]any{
			"id":      []any{map[string]any{"type": "com.symphony.user.userId", "value": fmt.Sprint(m.ID)}},
			"type":    "com.symphony.user.mention",
			"version": "1.0",
		}
	case 1:
		tag := hashtags[g.rng.IntN(len(hashtags))]
		fmt.Fprintf(&text, `<span class="entity" data-entity-id="0">#%s</span> `, tag)
		entities["0"] = map[string]any{
			"id":      []any{map[string]any{"type": "org.symphonyoss.taxonomy.hashtag", "value": tag}},
			"type":    "org.symphonyoss.taxonomy",
			"version": "1.0",
		}
	case 2:
		tag := cashtags[g.rng.IntN(len(cashtags))]
		fmt.Fprintf(&text, `<span class="entity" data-entity-id="0">$%s</span> `, tag)
		entities["0"] = map[string]any{
			"id":      []any{map[string]any{"type": "org.symphonyoss.fin.security.id.ticker", "value": tag}},
			"type":    "org.symphonyoss.fin.security",
			"version": "1.0",
		}
	}
	text.WriteString(sentences[g.rng.IntN(len(sentences))])
	text.WriteString("</p></div>")
	data, _ := json.Marshal(entities) // maps of strings: cannot fail
	mid := urlSafeID(g.messageID())
	m := map[string]any{
		"messageId":          mid,
		"timestamp":          ts,
		"message":            text.String(),
		"data":               string(data),
		"user":               userJSON(from),
		"stream":             g.streamJSON(st, std, true),
		"externalRecipients": st.external,
		"userAgent":          "DESKTOP-25.8.2-20711-Windows-10-Chrome-139.0.0.0",
		"originalFormat":     "com.symphony.messageml.v2",
		"sid":                g.uuid(),
	}
	if g.rng.IntN(8) == 0 {
		m["attachments"] = []any{map[string]any{
			"id":     "internal_14362_" + urlSafeID(g.messageID())[:16],
			"name":   "report.pdf",
			"size":   10240 + g.rng.IntN(1<<20),
			"images": []any{},
		}}
	}
	return m
}

func (g *Generator) uuid() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// SerialOf returns the serial a [Generator] embedded in raw (see
// [SerialKey]).
func SerialOf(raw []byte) (int64, bool) {
	var ev struct {
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return 0, false
	}
	for _, b := range ev.Payload {
		var body map[string]json.RawMessage
		if json.Unmarshal(b, &body) != nil {
			continue
		}
		if v, ok := body[SerialKey]; ok {
			var n int64
			if json.Unmarshal(v, &n) == nil {
				return n, true
			}
		}
	}
	return 0, false
}

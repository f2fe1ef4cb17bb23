package bridge

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// Header names set on every message. NATS header names are case-sensitive:
// consumers must use these spellings exactly.
const (
	HeaderEventID    = "Symphony-Event-Id"    // Symphony's own event id, when the event has one (not unique)
	HeaderEventType  = "Symphony-Event-Type"  // as sent, e.g. MESSAGESENT
	HeaderStreamID   = "Symphony-Stream-Id"   // URL-safe base64, when the event has a stream
	HeaderStreamType = "Symphony-Stream-Type" // ROOM, IM, ... when present
	HeaderTimestamp  = "Symphony-Timestamp"   // ms since the epoch, when present
	HeaderPod        = "Symphony-Pod"         // the configured pod name
	HeaderSource     = "Symphony-Source"      // datafeed or datahose

	// Dead-letter headers (see the package doc).
	HeaderDeadLetterReason = "Symphony-Dead-Letter-Reason"
	HeaderOriginalSubject  = "Symphony-Original-Subject" // the subject the event was meant for, when it could be mapped
	HeaderOriginalMsgID    = "Symphony-Original-Msg-Id"  // the event's normal Msg-Id, when it could be derived
	HeaderOriginalSize     = "Symphony-Original-Size"    // size of the event's JSON in bytes
	HeaderTruncated        = "Symphony-Truncated"        // "true" when the payload was cut to fit

	// CloudEvents binary mode (CloudEvents NATS protocol binding 1.0.3).
	HeaderCESpecVersion     = "ce-specversion"
	HeaderCEID              = "ce-id"
	HeaderCESource          = "ce-source"
	HeaderCEType            = "ce-type"
	HeaderCETime            = "ce-time"
	HeaderCEDataContentType = "ce-datacontenttype"
	HeaderContentType       = "content-type"
)

const (
	// CETypePrefix prefixes the lower-cased Symphony event type in ce-type
	// (com.symphony.event.messagesent): CloudEvents asks for a reverse-DNS
	// prefix naming the organisation that defines the event's meaning.
	CETypePrefix = "com.symphony.event."
	// CESourceScheme starts ce-source, which names the pod
	// (symphony://acme): an absolute URI, as CloudEvents recommends.
	CESourceScheme = "symphony://"

	contentTypeJSON = "application/json"
	ceTimeLayout    = "2006-01-02T15:04:05.000Z07:00" // RFC 3339, ms precision
)

// BuildMsg turns an event into the JetStream message the bridge publishes:
// the payload is ev.Raw unchanged, the subject is the one given, and the
// headers are:
//
//   - Nats-Msg-Id: [symphony.MsgID] of the event (JetStream's deduplication key);
//   - Symphony-Event-Id (when the event has an id), Symphony-Event-Type,
//     Symphony-Stream-Id and Symphony-Stream-Type (when present),
//     Symphony-Timestamp (ms, when present), Symphony-Pod, Symphony-Source;
//   - CloudEvents binary mode: ce-specversion 1.0, ce-id = the Msg-Id
//     (Symphony's own id is neither unique nor always present), ce-source =
//     symphony://<pod>, ce-type = com.symphony.event.<type lower-cased>,
//     ce-time (RFC 3339 UTC with ms, omitted without a timestamp),
//     ce-datacontenttype and content-type application/json.
//
// ce-* values are percent-encoded as the CloudEvents NATS binding requires
// (space, '"', '%' and every byte outside printable ASCII). Symphony-* values
// are kept as sent except control characters, which are percent-encoded so
// that no event can break the header block.
//
// BuildMsg is pure and cheap; it does not validate ev (callers dead-letter
// events whose Err is set instead).
func BuildMsg(ev *symphony.Event, subject, pod, source string) *nats.Msg {
	return newMsgBuilder(pod, source).build(ev, subject, symphony.MsgID(ev))
}

// msgBuilder builds the messages of one pod and source: the header values
// that depend only on them are encoded once, not per event.
type msgBuilder struct {
	pod, source, ceSource string // header-encoded
}

func newMsgBuilder(pod, source string) *msgBuilder {
	return &msgBuilder{pod: cleanHeader(pod), source: cleanHeader(source), ceSource: ceEncode(CESource(pod))}
}

// msgHeaders is the most headers BuildMsg sets.
const msgHeaders = 15

// build builds ev's message; id is symphony.MsgID(ev), which the caller
// has already computed for its dedupe check.
func (mb *msgBuilder) build(ev *symphony.Event, subject, id string) *nats.Msg {
	h := make(nats.Header, msgHeaders)
	// One backing array for every header's value slice instead of one
	// allocation per header.
	vals := make([]string, 0, msgHeaders)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(jetstream.MsgIDHeader, id)
	if ev.ID != "" {
		set(HeaderEventID, cleanHeader(ev.ID))
	}
	set(HeaderEventType, cleanHeader(ev.Type))
	if ev.HasStream && ev.StreamID != "" {
		set(HeaderStreamID, cleanHeader(ev.StreamID))
	}
	if ev.StreamType != "" {
		set(HeaderStreamType, cleanHeader(ev.StreamType))
	}
	if ev.Timestamp != 0 {
		set(HeaderTimestamp, strconv.FormatInt(ev.Timestamp, 10))
	}
	set(HeaderPod, mb.pod)
	if mb.source != "" {
		set(HeaderSource, mb.source)
	}

	set(HeaderCESpecVersion, "1.0")
	set(HeaderCEID, id) // a Msg-Id is URL-safe base64 after its prefix: nothing to percent-encode
	set(HeaderCESource, mb.ceSource)
	set(HeaderCEType, ceTypeHeader(ev.Type))
	if ev.Timestamp != 0 {
		var buf [len(ceTimeLayout) + 8]byte
		set(HeaderCETime, string(time.UnixMilli(ev.Timestamp).UTC().AppendFormat(buf[:0], ceTimeLayout)))
	}
	set(HeaderCEDataContentType, contentTypeJSON)
	set(HeaderContentType, contentTypeJSON)
	return &nats.Msg{Subject: subject, Header: h, Data: ev.Raw}
}

// ceTypeHeader is the encoded ce-type of an event type, precomputed for the
// known types.
func ceTypeHeader(eventType string) string {
	if v, ok := knownCETypes[eventType]; ok {
		return v
	}
	return ceEncode(CEType(eventType))
}

var knownCETypes = func() map[string]string {
	m := make(map[string]string)
	for _, t := range symphony.KnownTypes() {
		m[t] = ceEncode(CEType(t))
	}
	return m
}()

// CESource is the ce-source of the pod's events, before header encoding.
func CESource(pod string) string { return CESourceScheme + url.PathEscape(pod) }

// CEType is the ce-type of an event type, before header encoding.
func CEType(eventType string) string { return CETypePrefix + strings.ToLower(eventType) }

// ceEncode percent-encodes a CloudEvents attribute value for a NATS header:
// space, '"', '%' and every byte outside printable ASCII, upper-case hex.
func ceEncode(s string) string { return percentEncode(s, &ceEscape) }

// cleanHeader percent-encodes control characters (CR and LF would end the
// header block) and leaves everything else, including UTF-8, as it is.
func cleanHeader(s string) string { return percentEncode(s, &headerEscape) }

// The bytes ceEncode and cleanHeader escape (tables: they run on every
// header value of every message).
var ceEscape, headerEscape = func() (ce, hdr [256]bool) {
	for c := range 256 {
		ce[c] = c <= ' ' || c == '"' || c == '%' || c >= 0x7f
		hdr[c] = c < ' ' || c == 0x7f
	}
	return ce, hdr
}()

func percentEncode(s string, escape *[256]bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if escape[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escape[c] {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// headerBytes estimates the wire size of a header block (NATS/1.0 line,
// "Key: Value\r\n" per value, the closing CRLF).
func headerBytes(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

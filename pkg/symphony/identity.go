package symphony

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MsgID derives the event's JetStream message id (Nats-Msg-Id).
//
// Symphony's own event id is not unique: one action can produce several
// events sharing it (two USERJOINEDROOM events of one action share id, type
// and stream and differ only in the affected user), and some events carry no
// id at all. JetStream silently drops a second message with an id it has seen,
// so using the bare id would lose events. The rule:
//
//   - with an id: SHA-256 over (id, type, timestamp, stream id, message id,
//     affected user ids), prefixed "sb2-i-". Symphony's ids are six opaque
//     characters and are reused: the timestamp keeps two different actions
//     that happen to draw one id (same type, stream and users) apart. Rule
//     sb1-i, which left it out, gave ~900 shared Msg-Ids in a 10 M-event
//     generated run (BENCHMARKS.md, "RSS over a long run");
//   - without an id: SHA-256 over (type, timestamp, initiator user id, the
//     canonical form of the payload, or of the whole event when it has no
//     payload), prefixed "sb1-h-". The payload is canonicalised (object keys
//     sorted, insignificant whitespace removed) so that a redelivery
//     re-serialised differently by the Agent keeps its id.
//
// Every field is length-prefixed before hashing, so no two field lists hash
// the same input. The result is 49 characters (a 6-character prefix and the
// unpadded base64url SHA-256), URL-safe, and depends only on the event's
// content: it is identical across redeliveries, restarts and bridge
// instances.
func MsgID(ev *Event) string {
	// The hashed fields are laid out in a stack buffer and hashed at once:
	// this runs for every event the bridge publishes.
	var buf [256]byte
	b := buf[:0]
	var prefix string
	if ev.ID != "" {
		prefix = "sb2-i-"
		var ts [20]byte
		b = appendField(b, ev.ID)
		b = appendField(b, ev.Type)
		b = appendFieldBytes(b, strconv.AppendInt(ts[:0], ev.Timestamp, 10))
		b = appendField(b, ev.StreamID)
		b = appendField(b, ev.MessageID)
		for _, u := range ev.AffectedUserIDs {
			var n [20]byte
			b = appendFieldBytes(b, strconv.AppendInt(n[:0], u, 10))
		}
		// Decoding turns invalid UTF-8 into U+FFFD, so two ids that differ
		// only in invalid bytes would decode alike and collide: for such
		// an event its compacted raw bytes decide too (string tokens are
		// kept byte for byte, whitespace is not, so a redelivery laid out
		// differently keeps its id).
		if strings.ContainsRune(ev.ID, utf8.RuneError) || strings.ContainsRune(ev.StreamID, utf8.RuneError) ||
			strings.ContainsRune(ev.MessageID, utf8.RuneError) {
			var compact bytes.Buffer
			if json.Compact(&compact, ev.Raw) == nil {
				b = appendFieldBytes(b, compact.Bytes())
			} else {
				b = appendFieldBytes(b, ev.Raw)
			}
		}
	} else {
		prefix = "sb1-h-"
		var n [20]byte
		b = appendField(b, ev.Type)
		b = appendFieldBytes(b, strconv.AppendInt(n[:0], ev.Timestamp, 10))
		b = appendFieldBytes(b, strconv.AppendInt(n[:0], ev.InitiatorUserID, 10))
		b = appendFieldBytes(b, canonicalPayload(ev.Raw))
	}
	sum := sha256.Sum256(b)
	var out [6 + 43]byte // prefix and unpadded base64 of 32 bytes
	copy(out[:], prefix)
	base64.RawURLEncoding.Encode(out[6:], sum[:])
	return string(out[:])
}

// appendField appends s length-prefixed ("<len>:<s>"), so that no two
// field lists hash the same input.
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendFieldBytes(b, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// RawMsgID is the message id of an event that cannot be decoded (its dead
// letter's): a hash of its raw bytes, stable across redeliveries sent byte
// for byte alike. An event that decodes has [MsgID], which survives
// re-serialisation.
func RawMsgID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sb1-r-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// canonicalPayload returns the event's payload re-encoded canonically; for an
// event without a payload, the whole event re-encoded canonically (so that a
// re-serialised redelivery keeps its id there too); the raw bytes when the
// event is not JSON.
func canonicalPayload(raw []byte) []byte {
	var w struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return raw
	}
	src := []byte(w.Payload)
	if len(src) == 0 {
		src = raw
	}
	d := json.NewDecoder(bytes.NewReader(src))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return src
	}
	out, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return src
	}
	return out
}

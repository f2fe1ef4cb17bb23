package symphony

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// MsgID derives the event's JetStream message id (Nats-Msg-Id).
//
// Symphony's own event id is not unique: one action can produce several
// events sharing it (two USERJOINEDROOM events of one action share id, type
// and stream and differ only in the affected user), and some events carry no
// id at all. JetStream silently drops a second message with an id it has seen,
// so using the bare id would lose events. The rule:
//
//   - with an id: SHA-256 over (id, type, stream id, message id, affected user
//     ids), prefixed "sb1-i-";
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
	h := sha256.New()
	var prefix string
	if ev.ID != "" {
		prefix = "sb1-i-"
		writeField(h, ev.ID)
		writeField(h, ev.Type)
		writeField(h, ev.StreamID)
		writeField(h, ev.MessageID)
		for _, u := range ev.AffectedUserIDs {
			writeField(h, strconv.FormatInt(u, 10))
		}
	} else {
		prefix = "sb1-h-"
		writeField(h, ev.Type)
		writeField(h, strconv.FormatInt(ev.Timestamp, 10))
		writeField(h, strconv.FormatInt(ev.InitiatorUserID, 10))
		writeField(h, string(canonicalPayload(ev.Raw)))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// RawMsgID is the message id of an event that cannot be decoded (a dead
// letter): a hash of its raw bytes, stable across redeliveries.
func RawMsgID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sb1-r-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

type hashWriter interface{ Write([]byte) (int, error) }

func writeField(h hashWriter, s string) {
	var n [8]byte
	b := strconv.AppendInt(n[:0], int64(len(s)), 10)
	h.Write(b)
	h.Write([]byte{':'})
	h.Write([]byte(s))
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

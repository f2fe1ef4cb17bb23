package symphony

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// maxJSONDepth is encoding/json's nesting limit: a document nested deeper
// is refused as a whole ("exceeded max depth").
const maxJSONDepth = 10000

// decodeBatch decodes the body of a feed read: an event list (datafeed v2,
// datahose) or, with array set, a bare event array (datafeed v1). A body
// that does not decode is an error naming op, wrapping [ErrBadResponse] and
// saying what the body was (status, content type, size), never quoting it.
//
// One event nested deeper than encoding/json allows would make the whole
// body undecodable, and with it the batch: never acked, redelivered by the
// Agent after its visibility timeout, failing again, forever, and the feed
// would stall behind it. So such an event is set apart (see
// [decodeAroundDeepEvents]) and comes back as an Event with Err and its Raw
// bytes, which the bridge dead-letters; the rest of the batch decodes.
func decodeBatch(op string, resp response, array bool) (Batch, error) {
	// The body is ours (read into a fresh buffer): events may point into it.
	decode, elemDepth := decodeEventListOwned, 2 // {"events":[ <event> ...
	if array {
		decode, elemDepth = DecodeEventArray, 1 // [ <event> ...
	}
	b, err := decode(resp.body)
	if err == nil {
		return b, nil
	}
	if b, ok := decodeAroundDeepEvents(resp.body, decode, elemDepth); ok {
		return b, nil
	}
	return Batch{}, fmt.Errorf("%s: %w (%s)", op, err, resp.describe())
}

// decodeAroundDeepEvents retries decode on body with every element nested
// deeper than maxJSONDepth, among the values directly inside a container at
// elemDepth (the events), replaced by a marker string. If that decodes, the
// events that are markers are replaced by the elements they stand for,
// parsed on their own (so with Err set, and Raw as sent).
//
// encoding/json still validates everything but the replaced elements, so
// the batch structure, the ackId and the other events are exactly what a
// decoder without a depth limit would see; the element boundaries come from
// [deepElements], which tracks only brackets and strings. ok is false when
// nothing was too deep or the body is broken in another way too.
func decodeAroundDeepEvents(body []byte, decode func([]byte) (Batch, error), elemDepth int) (Batch, bool) {
	spans := deepElements(body, elemDepth)
	if len(spans) == 0 {
		return Batch{}, false
	}
	// A random marker cannot be forged by the Agent to make one of its own
	// events pass for a deep one.
	nonce := rand.Text()
	marker := func(i int) string { return fmt.Sprintf(`"symbridge-too-deep-%s-%d"`, nonce, i) }
	var sub bytes.Buffer
	sub.Grow(len(body))
	markers := make(map[string]span, len(spans))
	prev := 0
	for i, sp := range spans {
		m := marker(i)
		sub.Write(body[prev:sp.start])
		sub.WriteString(m)
		prev = sp.end
		markers[m] = sp
	}
	sub.Write(body[prev:])
	b, err := decode(sub.Bytes())
	if err != nil {
		return Batch{}, false
	}
	for i := range b.Events {
		if sp, ok := markers[string(b.Events[i].Raw)]; ok {
			b.Events[i] = ParseEvent(bytes.Clone(body[sp.start:sp.end]))
		}
	}
	return b, true
}

// span is a byte range [start, end) of a body.
type span struct{ start, end int }

// deepElements returns the arrays and objects that open inside a container
// at elemDepth and reach beyond maxJSONDepth levels (counted from the
// document's top, as encoding/json counts). It follows only strings and
// brackets, iteratively: any depth costs one byte of the closer stack, not a
// stack frame. Mismatched brackets (`{ ... ]`) make it return nil, so a
// broken element can never be passed off as a merely deep one. The result
// means something only for a body that is valid JSON apart from its depth;
// the caller has encoding/json check the rest.
func deepElements(body []byte, elemDepth int) []span {
	var spans []span
	var closers []byte // the closer each open bracket expects
	depth, start, deepest := 0, -1, 0
	inString, escaped := false, false
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth == elemDepth {
				start, deepest = i, 0
			}
			depth++
			deepest = max(deepest, depth)
			closers = append(closers, c+2) // '[' -> ']', '{' -> '}'
		case ']', '}':
			depth--
			if depth < 0 || closers[depth] != c {
				return nil
			}
			closers = closers[:depth]
			if depth == elemDepth && start >= 0 {
				if deepest > maxJSONDepth {
					spans = append(spans, span{start, i + 1})
				}
				start = -1
			}
		}
	}
	return spans
}

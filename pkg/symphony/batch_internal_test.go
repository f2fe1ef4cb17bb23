package symphony

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func nested(open string, depth int) string {
	closing := strings.NewReplacer("[", "]", "{", "}").Replace(open)
	return strings.Repeat(open, depth) + strings.Repeat(closing, depth)
}

// TestDepthLimit_AgreesWithEncodingJSON pins the depth limit to
// encoding/json's: an event is too deep (Err) exactly when encoding/json
// refuses it for its depth, alone and inside a batch (where the depth is
// counted from the event, so that one deep event does not sink the batch).
func TestDepthLimit_AgreesWithEncodingJSON(t *testing.T) {
	for _, depth := range []int{maxJSONDepth - 3, maxJSONDepth - 2, maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			var inner string
			if open == "[" {
				inner = nested("[", depth-1)
			} else {
				inner = strings.Repeat(`{"a":`, depth-1) + "1" + strings.Repeat("}", depth-1)
			}
			ev := `{"type":"X","x":` + inner + `}` // depth levels in all
			jsonRefuses := json.Unmarshal([]byte(ev), new(any)) != nil
			if got := ParseEvent([]byte(ev)); (got.Err != nil) != jsonRefuses {
				t.Errorf("depth %d %s: ParseEvent Err %v, encoding/json refuses=%v", depth, open, got.Err, jsonRefuses)
			}
			b, err := DecodeEventList([]byte(`{"events":[{"type":"Y"},` + ev + `],"ackId":"a"}`))
			if err != nil || len(b.Events) != 2 || b.Events[0].Err != nil || (b.Events[1].Err != nil) != jsonRefuses {
				t.Errorf("depth %d %s in a list: %d events, err %v", depth, open, len(b.Events), err)
			}
		}
	}
	// Outside the events, the body's own depth counts.
	if _, err := DecodeEventList([]byte(`{"events":[],"ackId":"a","x":` + nested("[", maxJSONDepth) + `}`)); !errors.Is(err, ErrBadResponse) {
		t.Errorf("a list nested too deep outside its events: err %v", err)
	}
}

// FuzzDecodeBatch: decodeBatch never panics and agrees with encoding/json
// on event lists holding events near its depth limit: a body encoding/json
// accepts decodes to the same events and ackId; a body it refuses is
// refused, unless it refuses it only because an event is too deep inside
// the body. That batch is accepted; its events are, in order, pieces of
// the body as sent, and those too deep for encoding/json on their own carry
// Err.
func FuzzDecodeBatch(f *testing.F) {
	ev := `{"id":"e1","type":"MESSAGESENT","payload":{"messageSent":{"message":{"messageId":"m","stream":{"streamId":"s"}}}}}`
	f.Add(ev, "", uint16(20))
	f.Add(ev, `,"x"`, uint16(0))
	f.Add(`"a[\"{"`, `,null`, uint16(5))
	f.Add(`{]`, `,{}`, uint16(30))
	f.Add(``, `]`, uint16(1))
	f.Fuzz(func(t *testing.T, head, tail string, extra uint16) {
		depth := maxJSONDepth - 10 + int(extra%40)
		deep := `{"type":"X","payload":{"x":` + nested("[", depth) + `}}`
		for _, body := range []string{
			`{"events":[` + head + deep + tail + `],"ackId":"a"}`,
			`{"events":[` + head + `],"ackId":"a"}` + tail,
			head + deep + tail,
		} {
			checkDecodeBatch(t, []byte(body))
		}
	})
}

// checkDecodeBatch holds decodeBatch to encoding/json (see FuzzDecodeBatch).
// The reference is not DecodeEventList: that is the same decoder.
func checkDecodeBatch(t *testing.T, body []byte) {
	t.Helper()
	resp := response{status: 200, body: bytes.Clone(body)}
	b, err := decodeBatch("read", resp, false)
	if !bytes.Equal(resp.body, body) {
		t.Fatal("decodeBatch changed the body")
	}
	var ref struct {
		Events []json.RawMessage `json:"events"`
		AckID  *string           `json:"ackId"`
	}
	refErr := json.Unmarshal(body, &ref)
	switch {
	case err != nil:
		if !errors.Is(err, ErrBadResponse) {
			t.Fatalf("err = %v, want ErrBadResponse", err)
		}
		if refErr == nil && ref.AckID != nil {
			t.Fatalf("encoding/json accepts the body, decodeBatch refuses it: %v", err)
		}
		return
	case refErr == nil:
		if ref.AckID == nil || b.AckID != *ref.AckID {
			t.Fatalf("decodeBatch ackId %q, encoding/json %v", b.AckID, ref.AckID)
		}
		checkRaws(t, body, b.Events, ref.Events)
		return
	case !isDepthError(refErr):
		t.Fatalf("decodeBatch accepts a body encoding/json refuses: %v", refErr)
	}
	// Accepted although encoding/json refuses the body for its depth.
	off, deep := 0, 0
	for i, ev := range b.Events {
		k := bytes.Index(body[off:], ev.Raw)
		if k < 0 {
			t.Fatalf("event %d %.80q is not in the body after offset %d", i, ev.Raw, off)
		}
		off += k + len(ev.Raw)
		// The event under the two levels the body puts above it.
		inBody := append(append([]byte(`{"events":[`), ev.Raw...), "]}"...)
		if err := json.Unmarshal(inBody, new(any)); err != nil {
			if !isDepthError(err) {
				t.Fatalf("event %d is not JSON: %v", i, err)
			}
			deep++
		}
		// An event too deep for encoding/json on its own carries Err; one
		// that is deep only with the body's two levels decodes.
		if json.Unmarshal(ev.Raw, new(any)) != nil && !errors.Is(ev.Err, ErrInvalidEvent) {
			t.Fatalf("event %d is too deep on its own but has no Err", i)
		}
	}
	if deep == 0 {
		t.Fatalf("decodeBatch accepts a body encoding/json refuses (%v) with no event too deep in it", refErr)
	}
}

// isDepthError reports whether err is encoding/json refusing a document
// nested deeper than its limit.
func isDepthError(err error) bool { return strings.Contains(err.Error(), "exceeded max depth") }

func TestReadBody(t *testing.T) {
	const limit = 100
	for _, tc := range []struct {
		name     string
		body     string
		declared int64
		want     string
		errIs    error
	}{
		{"declared, exact", "hello", 5, "hello", nil},
		{"declared, at the limit", strings.Repeat("x", limit), limit, strings.Repeat("x", limit), nil},
		{"declared over the limit", "tiny", limit + 1, "", errBodyTooLarge},
		{"declared, short", "hel", 5, "", io.ErrUnexpectedEOF},
		{"undeclared", "hello", -1, "hello", nil},
		{"undeclared, at the limit", strings.Repeat("x", limit), -1, strings.Repeat("x", limit), nil},
		{"undeclared over the limit", strings.Repeat("x", limit+1), -1, "", errBodyTooLarge},
		{"empty", "", 0, "", nil},
		{"undeclared, empty", "", -1, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(iotest.HalfReader(strings.NewReader(tc.body)), tc.declared, limit)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("err = %v, want %v", err, tc.errIs)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("readBody = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestReadChunked: bodies around the chunk boundaries come back whole, in
// one buffer of their size.
func TestReadChunked(t *testing.T) {
	src := make([]byte, 3*maxChunk+5)
	for i := range src {
		src[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, firstChunk - 1, firstChunk, firstChunk + 1, 3*firstChunk + 2, maxChunk, maxChunk + 1, len(src)} {
		for _, r := range []io.Reader{bytes.NewReader(src[:n]), iotest.OneByteReader(bytes.NewReader(src[:min(n, 5*firstChunk)]))} {
			want := src[:n]
			if _, ok := r.(*bytes.Reader); !ok {
				want = src[:min(n, 5*firstChunk)]
			}
			got, err := readChunked(r, int64(len(src)))
			if err != nil || !bytes.Equal(got, want) || cap(got) > max(len(want), firstChunk) {
				t.Fatalf("n=%d: %d bytes (cap %d), %v; want %d", n, len(got), cap(got), err, len(want))
			}
		}
	}
	if _, err := readChunked(iotest.TimeoutReader(bytes.NewReader(src)), int64(len(src))); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("a failing reader: err = %v, want its error", err)
	}
}

func TestRedact(t *testing.T) {
	const tok = "0123456789abcdefghij" // 20 bytes
	for _, tc := range []struct {
		msg, want string
		secrets   []string
	}{
		{"no secret here", "no secret here", []string{tok}},
		{"x" + tok + "y", "x[redacted]y", []string{tok}},
		{tok[2:14] + tok[2:14], "[redacted]", []string{tok}}, // adjacent runs merge
		{tok[:11], tok[:11], []string{tok}},                  // under the window
		{"pw=hunter22!", "pw=[redacted]!", []string{"hunter22"}},
		{"pw=hunter2!", "pw=hunter2!", []string{"hunter2"}}, // too short to redact safely
		{"a " + tok + " b km-secret-1234", "a [redacted] b [redacted]", []string{tok, "km-secret-1234", ""}},
	} {
		if got := redact(tc.msg, tc.secrets); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

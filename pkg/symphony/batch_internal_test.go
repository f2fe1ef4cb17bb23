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

func TestDeepElements(t *testing.T) {
	deepArr := nested("[", maxJSONDepth)
	deepObj := strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth)
	for _, tc := range []struct {
		name      string
		body      string
		elemDepth int
		want      []string // the spans' text
	}{
		{"nothing deep", `{"events":[{"a":[[1]]},"x"],"ackId":"a"}`, 2, nil},
		// The element opens at depth 2, so its own 10000 levels end at 10002.
		{"deep array", `{"events":[{},` + deepArr + `,{}],"ackId":"a"}`, 2, []string{deepArr}},
		{"deep object", `{"events":[` + deepObj + `],"ackId":"a"}`, 2, []string{deepObj}},
		{"exactly at the limit is not deep", `[` + nested("[", maxJSONDepth-1) + `]`, 1, nil},
		{"one over the limit", `[` + nested("[", maxJSONDepth) + `]`, 1, []string{nested("[", maxJSONDepth)}},
		{"brackets in strings do not count", `{"events":[{"t":"` + strings.Repeat("[", 20000) + `\"{"}],"ackId":"]]"}`, 2, nil},
		{"two deep elements", `[` + deepArr + `,1,` + deepObj + `]`, 1, []string{deepArr, deepObj}},
		{"unbalanced", `]]` + deepArr, 1, nil},
		{"unterminated element", `[` + deepArr[:len(deepArr)-1], 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, sp := range deepElements([]byte(tc.body), tc.elemDepth) {
				got = append(got, tc.body[sp.start:sp.end])
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d spans, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("span %d: %d bytes, want %d", i, len(got[i]), len(tc.want[i]))
				}
			}
		})
	}
}

// TestDeepElements_AgreesWithEncodingJSON pins the depth counting to
// encoding/json's limit: an element deepElements calls deep is exactly one
// that encoding/json refuses for its depth.
func TestDeepElements_AgreesWithEncodingJSON(t *testing.T) {
	for _, depth := range []int{maxJSONDepth - 3, maxJSONDepth - 2, maxJSONDepth - 1, maxJSONDepth} {
		body := []byte(`{"events":[` + nested("[", depth) + `],"ackId":"a"}`)
		jsonRefuses := json.Unmarshal(body, new(any)) != nil
		if deep := len(deepElements(body, 2)) > 0; deep != jsonRefuses {
			t.Errorf("depth %d+2: deepElements says deep=%v, encoding/json refuses=%v", depth, deep, jsonRefuses)
		}
	}
}

// FuzzDecodeBatch: decodeBatch never panics, agrees with DecodeEventList
// whenever that accepts the body, and otherwise returns either
// ErrBadResponse or a batch whose events are, in order, pieces of the body
// as sent; the pieces set apart for their depth carry Err.
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

func checkDecodeBatch(t *testing.T, body []byte) {
	t.Helper()
	resp := response{status: 200, body: bytes.Clone(body)}
	b, err := decodeBatch("read", resp, false)
	if !bytes.Equal(resp.body, body) {
		t.Fatal("decodeBatch changed the body")
	}
	ref, refErr := DecodeEventList(body)
	switch {
	case refErr == nil:
		if err != nil || len(b.Events) != len(ref.Events) || b.AckID != ref.AckID {
			t.Fatalf("DecodeEventList accepts the body, decodeBatch: %d events, %v", len(b.Events), err)
		}
		for i := range b.Events {
			if !bytes.Equal(b.Events[i].Raw, ref.Events[i].Raw) {
				t.Fatalf("event %d: Raw %q, want %q", i, b.Events[i].Raw, ref.Events[i].Raw)
			}
		}
		return
	case err != nil:
		if !errors.Is(err, ErrBadResponse) {
			t.Fatalf("err = %v, want ErrBadResponse", err)
		}
		return
	}
	// Accepted only thanks to the depth fallback.
	off, deep := 0, 0
	for i, ev := range b.Events {
		k := bytes.Index(body[off:], ev.Raw)
		if k < 0 {
			t.Fatalf("event %d %.80q is not in the body after offset %d", i, ev.Raw, off)
		}
		off += k + len(ev.Raw)
		// An element set apart for its depth inside the body can be
		// shallow enough on its own (the body adds two levels): it then
		// decodes like any event. Only one still too deep alone must carry Err.
		if strings.Contains(string(ev.Raw), strings.Repeat("[", maxJSONDepth-12)) {
			deep++
			if json.Unmarshal(ev.Raw, new(any)) != nil && !errors.Is(ev.Err, ErrInvalidEvent) {
				t.Fatalf("event %d is too deep but has no Err", i)
			}
		}
	}
	if deep == 0 {
		t.Fatalf("the fallback accepted a body (%v) with no deep event", refErr)
	}
}

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

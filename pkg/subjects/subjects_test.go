package subjects

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/testshared"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// fullTemplate uses every placeholder; it leaves each 48 bytes.
const fullTemplate = "symphony.{source}.{pod}.{eventType}.{streamType}.{streamId}"

func mustCompile(t testing.TB, template string) *Mapper {
	t.Helper()
	m, err := Compile(template)
	if err != nil {
		t.Fatalf("Compile(%q): %v", template, err)
	}
	return m
}

func TestCompileValid(t *testing.T) {
	tests := []struct {
		template string
		filter   string
		tokenMax int
	}{
		{DefaultTemplate, "symphony.*.*.*", 64},
		{DefaultDeadLetter, "symphony.*._invalid", 64},
		{fullTemplate, "symphony.*.*.*.*.*", 48},
		{"acme.symphony.events", "acme.symphony.events", 64},
		{"a.{eventType}.{eventType}", "a.*.*", 64},
		{"acme:prod.{pod}.v1.{streamId}", "acme:prod.*.v1.*", 64},
		{"s.{pod}.{pod}.{pod}.{pod}.{pod}.{pod}.{pod}", "s.*.*.*.*.*.*.*", 35},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			m := mustCompile(t, tt.template)
			if got := m.Template(); got != tt.template {
				t.Errorf("Template() = %q, want %q", got, tt.template)
			}
			if got := m.Filter(); got != tt.filter {
				t.Errorf("Filter() = %q, want %q", got, tt.filter)
			}
			if m.tokenMax != tt.tokenMax {
				t.Errorf("token budget = %d, want %d", m.tokenMax, tt.tokenMax)
			}
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	tests := []struct {
		name, template, reason string
	}{
		{"empty", "", "empty"},
		{"only a dot", ".", "token 1 is empty"},
		{"leading dot", ".symphony.{pod}", "token 1 is empty"},
		{"trailing dot", "symphony.{pod}.", "token 3 is empty"},
		{"double dot", "symphony..{pod}", "token 2 is empty"},
		{"star token", "symphony.*", "wildcards"},
		{"gt token", "symphony.{pod}.>", "wildcards"},
		{"star inside", "sym*phony.{pod}", "wildcards"},
		{"space", "sym phony.{pod}", "whitespace"},
		{"tab", "symphony.\t.{pod}", "whitespace"},
		{"nul", "symphony.a\x00b", "control"},
		{"dollar", "$JS.{pod}", "reserved"},
		{"dollar later", "symphony.$x.{pod}", "reserved"},
		{"unknown placeholder", "symphony.{podName}", "unknown placeholder {podName}"},
		{"placeholder case", "symphony.{eventtype}", "unknown placeholder {eventtype}"},
		{"placeholder in token", "symphony.ev-{eventType}", "whole token"},
		{"two placeholders in token", "symphony.{pod}{eventType}", "whole token"},
		{"unclosed", "symphony.{pod", "whole token"},
		{"unopened", "symphony.pod}", "whole token"},
		{"empty placeholder", "symphony.{}", "unknown placeholder {}"},
		{"placeholder first", "{pod}.symphony", "first token must be a literal"},
		{"too many tokens", "a" + strings.Repeat(".b", MaxTokens), "17 tokens"},
		{"too long", "a." + strings.Repeat("b", MaxSubjectLen), "longer than 255"},
		{"no room for data", strings.Repeat("x", 200) + ".{pod}.{eventType}", "bytes per placeholder"},
		{"too many placeholders", "s" + strings.Repeat(".{pod}", 8), "bytes per placeholder"},
		{"invalid utf-8", "sym\xffphony.{pod}", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(tt.template)
			if err == nil {
				t.Fatalf("Compile(%q) = %q, want an error", tt.template, m.Filter())
			}
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("error %v does not wrap ErrInvalidTemplate", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not give the reason %q", err, tt.reason)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.template)) {
				t.Errorf("error %q does not name the template", err)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	def := mustCompile(t, DefaultTemplate)
	full := mustCompile(t, fullTemplate)
	dl := mustCompile(t, DefaultDeadLetter)
	room := Values{Pod: "acme", EventType: "MESSAGESENT", StreamType: "ROOM",
		StreamID: "wTmSDJSNPXgB", Source: "datafeed", HasStream: true}
	with := func(f func(*Values)) *Values { v := room; f(&v); return &v }

	tests := []struct {
		name string
		m    *Mapper
		v    *Values
		want string
	}{
		{"default", def, &room, "symphony.acme.messagesent.room"},
		{"full", full, &room, "symphony.datafeed.acme.messagesent.room.wTmSDJSNPXgB"},
		{"dead letter", dl, &room, "symphony.acme._invalid"},
		{"no stream", full, with(func(v *Values) {
			v.EventType, v.HasStream = "CONNECTIONREQUESTED", false
		}), "symphony.datafeed.acme.connectionrequested.none.none"},
		{"no stream ignores stale stream values", def, with(func(v *Values) { v.HasStream = false }),
			"symphony.acme.messagesent.none"},
		{"stream without type", full, with(func(v *Values) { v.StreamType = "" }),
			"symphony.datafeed.acme.messagesent.unknown.wTmSDJSNPXgB"},
		{"stream without id", full, with(func(v *Values) { v.StreamID = "" }),
			"symphony.datafeed.acme.messagesent.room.unknown"},
		{"empty type, pod and source", full, with(func(v *Values) { v.EventType, v.Pod, v.Source = "", "", "" }),
			"symphony.unknown.unknown.unknown.room.wTmSDJSNPXgB"},
		{"nil values", full, nil, "symphony.unknown.unknown.unknown.none.none"},
		{"dots", def, with(func(v *Values) { v.EventType = "A.B.C" }), "symphony.acme.a_b_c.room"},
		{"only dots", def, with(func(v *Values) { v.EventType = "..." }), "symphony.acme.___.room"},
		{"star", def, with(func(v *Values) { v.EventType = "*" }), "symphony.acme._.room"},
		{"gt", def, with(func(v *Values) { v.StreamType = ">" }), "symphony.acme.messagesent._"},
		{"spaces", def, with(func(v *Values) { v.EventType = " MESSAGE SENT\t\r\n" }),
			"symphony.acme._message_sent___.room"},
		{"dollar", def, with(func(v *Values) { v.Pod = "$JS" }), "symphony._JS.messagesent.room"},
		{"unicode", def, with(func(v *Values) { v.EventType = "événement日本" }), "symphony.acme._v_nement__.room"},
		{"invalid utf-8", def, with(func(v *Values) { v.EventType = "a\xff\xfeb" }), "symphony.acme.a__b.room"},
		{"unknown type kept readable", def, with(func(v *Values) { v.EventType = "USER_MENTIONED-V2" }),
			"symphony.acme.user_mentioned-v2.room"},
		{"pod keeps case", def, with(func(v *Values) { v.Pod = "Acme-EU" }), "symphony.Acme-EU.messagesent.room"},
		{"stream id keeps case", full, with(func(v *Values) { v.StreamID = "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA" }),
			"symphony.datafeed.acme.messagesent.room._tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA"},
		{"standard base64 stream id", full, with(func(v *Values) { v.StreamID = "/tiUL8zamhwqo8J0tRGRmH///nF1ABgsdA==" }),
			"symphony.datafeed.acme.messagesent.room._tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA"},
		{"plus in stream id", full, with(func(v *Values) { v.StreamID = "a+b" }),
			"symphony.datafeed.acme.messagesent.room.a-b"},
		{"padding only stream id", full, with(func(v *Values) { v.StreamID = "==" }),
			"symphony.datafeed.acme.messagesent.room.unknown"},
		{"dots in stream id", full, with(func(v *Values) { v.StreamID = "wTmSDJSNPXgB..." }),
			"symphony.datafeed.acme.messagesent.room.wTmSDJSNPXgB___"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Subject(tt.v)
			if got != tt.want {
				t.Errorf("Subject() = %q, want %q", got, tt.want)
			}
			if app := string(tt.m.AppendSubject([]byte("x"), tt.v)); app != "x"+got {
				t.Errorf("AppendSubject() = %q, want %q", app, "x"+got)
			}
			if err := ValidSubject(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSubjectLongValues covers values over the token budget: cut to the
// budget, still distinct, and equal where the short mapping would be equal.
func TestSubjectLongValues(t *testing.T) {
	def := mustCompile(t, DefaultTemplate)
	full := mustCompile(t, fullTemplate)
	long := strings.Repeat("X", 10<<10)
	token := func(m *Mapper, v Values, i int) string {
		t.Helper()
		toks := strings.Split(m.Subject(&v), ".")
		if len(toks) != len(m.parts) {
			t.Fatalf("subject %q has %d tokens, want %d", m.Subject(&v), len(toks), len(m.parts))
		}
		return toks[i]
	}
	base := Values{Pod: "acme", EventType: long, StreamType: "ROOM", StreamID: "id", HasStream: true}

	tok := token(def, base, 2)
	if len(tok) != MaxTokenLen {
		t.Errorf("10 KiB event type: token length %d, want %d", len(tok), MaxTokenLen)
	}
	if want := strings.Repeat("x", MaxTokenLen-1-hashLen) + "-"; !strings.HasPrefix(tok, want) {
		t.Errorf("token %q does not keep the lower-cased prefix %q", tok, want)
	}
	if strings.ToLower(tok) != tok {
		t.Errorf("lower-cased token %q has upper case in its hash", tok)
	}
	other := base
	other.EventType = long[:len(long)-1] + "Y"
	if tok2 := token(def, other, 2); tok2 == tok {
		t.Errorf("distinct 10 KiB values share the token %q", tok)
	}
	lower := base
	lower.EventType = strings.ToLower(long)
	if tok2 := token(def, lower, 2); tok2 != tok {
		t.Errorf("case variants of a long event type: %q and %q, want one token", tok, tok2)
	}

	// In the full template each placeholder has 48 bytes.
	fv := base
	fv.EventType = strings.Repeat("a", 48)
	if got := token(full, fv, 3); got != fv.EventType {
		t.Errorf("48-byte value = %q, want it unchanged", got)
	}
	fv.EventType = strings.Repeat("a", 49)
	if got := token(full, fv, 3); len(got) != 48 || got == fv.EventType[:48] {
		t.Errorf("49-byte value = %q, want a 48-byte cut token with a hash", got)
	}

	// A long stream id in standard and URL-safe base64 shares a token.
	std := strings.Repeat("ab+/", 30) + "=="
	url := strings.Repeat("ab-_", 30)
	sv, uv := base, base
	sv.StreamID, uv.StreamID = std, url
	if a, b := token(full, sv, 5), token(full, uv, 5); a != b || len(a) != 48 {
		t.Errorf("long stream id: standard %q, URL-safe %q; want one 48-byte token", a, b)
	}
}

func TestSanitizeToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "unknown"},
		{"abc-XYZ_09", "abc-XYZ_09"},
		{"a.b", "a_b"},
		{"*", "_"},
		{">", "_"},
		{"a b", "a_b"},
		{"$SYS", "_SYS"},
		{"é", "_"},
		{"\xff", "_"},
		{"a+b/c=", "a_b_c_"}, // only {streamId} normalises base64
		{strings.Repeat("z", 64), strings.Repeat("z", 64)},
	}
	for _, tt := range tests {
		if got := SanitizeToken(tt.in); got != tt.want {
			t.Errorf("SanitizeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	a, b := SanitizeToken(strings.Repeat("z", 65)), SanitizeToken(strings.Repeat("z", 66))
	if len(a) != MaxTokenLen || len(b) != MaxTokenLen || a == b {
		t.Errorf("over-long tokens %q and %q: want two distinct %d-byte tokens", a, b, MaxTokenLen)
	}
	for _, tok := range []string{a, b} {
		if i := strings.IndexFunc(tok, func(r rune) bool { return !isTokenRune(r) }); i >= 0 {
			t.Errorf("cut token %q has %q outside [A-Za-z0-9_-]", tok, tok[i])
		}
	}
}

func TestValidSubject(t *testing.T) {
	valid := []string{"a", "a.b", "symphony.acme.messagesent.room", "$JS.API.INFO", "a.b*c", strings.Repeat("a", 255)}
	for _, s := range valid {
		if err := ValidSubject(s); err != nil {
			t.Errorf("ValidSubject(%q) = %v, want nil", s, err)
		}
	}
	invalid := []string{"", ".", "a..b", ".a", "a.", "a.*", "a.>", "*", "a.*.b", "a b", "a\tb", "a.b\n",
		"a.\x00", "a\u00a0b", strings.Repeat("a", 256)}
	for _, s := range invalid {
		err := ValidSubject(s)
		if !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("ValidSubject(%q) = %v, want ErrInvalidSubject", s, err)
		}
	}
	if err := ValidSubject(strings.Repeat("a ", 5000)); err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 10 KB subject = %q, want a short error", err)
	}
}

func TestValidFilter(t *testing.T) {
	for _, s := range []string{"a", "symphony.>", "a.*.b", "*", ">", "$JS.API.>"} {
		if err := ValidFilter(s); err != nil {
			t.Errorf("ValidFilter(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "a..b", ".a", "a.", "a b", "a.>.b", "a.b*", "a.>x"} {
		if err := ValidFilter(s); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("ValidFilter(%q) = %v, want ErrInvalidSubject", s, err)
		}
	}
}

func TestFromEvent(t *testing.T) {
	m := mustCompile(t, fullTemplate)
	tests := []struct {
		name, raw, want string
	}{
		{"message in a room",
			`{"id":"a","type":"MESSAGESENT","payload":{"messageSent":{"message":{"messageId":"m","stream":{"streamId":"x+y/z==","streamType":"ROOM"}}}}}`,
			"symphony.datafeed.acme.messagesent.room.x-y_z"},
		{"connection has no stream",
			`{"id":"b","type":"CONNECTIONACCEPTED","payload":{"connectionAccepted":{"fromUser":{"userId":1}}}}`,
			"symphony.datafeed.acme.connectionaccepted.none.none"},
		{"stream without type",
			`{"id":"c","type":"MESSAGESUPPRESSED","payload":{"messageSuppressed":{"messageId":"m","stream":{"streamId":"s1"}}}}`,
			"symphony.datafeed.acme.messagesuppressed.unknown.s1"},
		{"unknown type",
			`{"type":"SOME.NEW*TYPE","payload":{}}`,
			"symphony.datafeed.acme.some_new_type.none.none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := symphony.ParseEvent([]byte(tt.raw))
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			v := FromEvent(&ev, "acme", "datafeed")
			if got := m.Subject(&v); got != tt.want {
				t.Errorf("subject = %q, want %q", got, tt.want)
			}
		})
	}
	v := FromEvent(nil, "acme", "datahose")
	if want := (Values{Pod: "acme", Source: "datahose"}); v != want {
		t.Errorf("FromEvent(nil) = %+v, want %+v", v, want)
	}
}

// TestSubjectAllocs holds the hot path to its allocation budget: the subject
// string only, and nothing for AppendSubject into a buffer with room.
func TestSubjectAllocs(t *testing.T) {
	m := mustCompile(t, fullTemplate)
	v := &Values{Pod: "acme", EventType: "MESSAGESENT", StreamType: "ROOM",
		StreamID: "wTmSDJSNPXgB+/==", Source: "datafeed", HasStream: true}
	long := *v
	long.EventType = strings.Repeat("é.", 5000)
	buf := make([]byte, 0, MaxSubjectLen)
	for _, vv := range []*Values{v, &long} {
		if n := testing.AllocsPerRun(100, func() { _ = m.Subject(vv) }); n != 1 {
			t.Errorf("Subject: %v allocations, want 1", n)
		}
		if n := testing.AllocsPerRun(100, func() { buf = m.AppendSubject(buf[:0], vv) }); n != 0 {
			t.Errorf("AppendSubject: %v allocations, want 0", n)
		}
	}
}

func BenchmarkSubject(b *testing.B) {
	m := mustCompile(b, DefaultTemplate)
	full := mustCompile(b, fullTemplate)
	v := &Values{Pod: "acme", EventType: "MESSAGESENT", StreamType: "ROOM",
		StreamID: "_tiUL8zamhwqo8J0tRGRmH___nF1ABgsdA", Source: "datafeed", HasStream: true}
	long := *v
	long.EventType = strings.Repeat("X", 10<<10)
	b.Run("default", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = m.Subject(v)
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = full.Subject(v)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, MaxSubjectLen)
		for b.Loop() {
			buf = full.AppendSubject(buf[:0], v)
		}
	})
	b.Run("10KiB-type", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = m.Subject(&long)
		}
	})
}

// sampleEvents decodes every event of the JSON samples in
// ../shared/symphony-samples, and of every type the simulator's generator
// makes (with standard and URL-safe stream ids), so a plain clone without
// ../shared still has events of every shape.
func sampleEvents(t testing.TB) []symphony.Event {
	t.Helper()
	var evs []symphony.Event
	gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 1, StdBase64Rate: 0.5})
	for _, raw := range gen.All() {
		evs = append(evs, symphony.ParseEvent(raw))
	}
	dir, ok := testshared.Dir(t, "symphony-samples")
	if !ok {
		return evs
	}
	for _, f := range []string{"bdk-java/read_datafeed.json", "bdk-java-legacy/read_datafeedv2.json", "bdk-java-legacy/read_datafeedv5.json"} {
		body, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		batch, err := symphony.DecodeEventList(body)
		if err != nil {
			batch, err = symphony.DecodeEventArray(body)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		evs = append(evs, batch.Events...)
	}
	return evs
}

// sink keeps benchmark results alive so the compiler cannot drop them.
var sink string

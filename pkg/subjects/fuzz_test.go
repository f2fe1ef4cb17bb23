package subjects

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTemplates are the templates FuzzSubject maps every input through.
var fuzzTemplates = []string{
	DefaultTemplate,
	DefaultDeadLetter,
	fullTemplate,
	"acme.events.{eventType}.v1.{streamId}.{source}",
	"s.{streamId}.{streamId}.{streamId}.{streamId}.{streamId}.{streamId}.{streamId}",
}

func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// matchFilter reports whether subject matches a filter with '*' tokens only.
func matchFilter(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(s) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != s[i] {
			return false
		}
	}
	return true
}

// FuzzSubject proves that no value taken from an event can change a
// subject's shape: whatever the strings, every subject is valid, keeps the
// template's token count and literal tokens, starts with the template's
// prefix, matches its filter and stays within the length limits.
func FuzzSubject(f *testing.F) {
	for _, ev := range sampleEvents(f) {
		f.Add("acme", ev.Type, ev.StreamType, ev.StreamID, "datafeed", ev.HasStream)
	}
	f.Add("", "", "", "", "", false)
	f.Add("$SYS", "a.b.c", "*", ">", " \t\r\n", true)
	f.Add("pod", "MESSAGESENT", "ROOM", "/tiUL8zamhwqo8J0tRGRmH///nF1ABgsdA==", "datahose", true)
	f.Add("é", "日本語", "\xff\xfe", "====", "a..b", true)
	// Over-long values (kept short: the fuzzer minimises every new input).
	f.Add(strings.Repeat("p", 70), strings.Repeat("T.", 40), strings.Repeat(">", 65), strings.Repeat("+", 64)+"=", "x", true)

	mappers := make([]*Mapper, len(fuzzTemplates))
	for i, tmpl := range fuzzTemplates {
		mappers[i] = mustCompile(f, tmpl)
	}
	f.Fuzz(func(t *testing.T, pod, eventType, streamType, streamID, source string, hasStream bool) {
		v := &Values{Pod: pod, EventType: eventType, StreamType: streamType,
			StreamID: streamID, Source: source, HasStream: hasStream}
		for _, m := range mappers {
			s := m.Subject(v)
			if err := ValidSubject(s); err != nil {
				t.Fatalf("%s: %v", m.template, err)
			}
			if app := m.AppendSubject(nil, v); string(app) != s {
				t.Fatalf("%s: AppendSubject %q != Subject %q", m.template, app, s)
			}
			if !strings.HasPrefix(s, m.prefix) {
				t.Fatalf("%s: subject %q escapes the prefix %q", m.template, s, m.prefix)
			}
			if !matchFilter(m.filter, s) {
				t.Fatalf("%s: subject %q not covered by filter %q", m.template, s, m.filter)
			}
			toks := strings.Split(s, ".")
			if len(toks) != len(m.parts) {
				t.Fatalf("%s: subject %q has %d tokens, want %d", m.template, s, len(toks), len(m.parts))
			}
			for i, p := range m.parts {
				tok := toks[i]
				if p.ph == literal {
					if tok != p.lit {
						t.Fatalf("%s: token %d = %q, want the literal %q", m.template, i, tok, p.lit)
					}
					continue
				}
				if tok == "" || len(tok) > m.tokenMax || len(tok) > MaxTokenLen || tok[0] == '$' {
					t.Fatalf("%s: token %d = %q: empty, over %d bytes or '$'", m.template, i, tok, m.tokenMax)
				}
				if j := strings.IndexFunc(tok, func(r rune) bool { return !isTokenRune(r) }); j >= 0 {
					t.Fatalf("%s: token %d = %q has %q outside [A-Za-z0-9_-]", m.template, i, tok, tok[j])
				}
				if (p.ph == phEventType || p.ph == phStreamType) && strings.ToLower(tok) != tok {
					t.Fatalf("%s: token %d = %q is not lower-case", m.template, i, tok)
				}
				if (p.ph == phStreamType || p.ph == phStreamID) && !hasStream && tok != tokenNone {
					t.Fatalf("%s: token %d = %q without a stream, want %q", m.template, i, tok, tokenNone)
				}
			}
		}
		if tok := SanitizeToken(eventType); tok == "" || len(tok) > MaxTokenLen || ValidSubject(tok) != nil ||
			strings.Contains(tok, ".") {
			t.Fatalf("SanitizeToken(%q) = %q", eventType, tok)
		}
	})
}

// FuzzCompile feeds arbitrary templates to Compile: it never panics, and a
// template it accepts always yields valid subjects covered by its filter.
func FuzzCompile(f *testing.F) {
	for _, tmpl := range fuzzTemplates {
		f.Add(tmpl)
	}
	for _, tmpl := range []string{"", ".", "a..b", "{pod}", "a.{pod", "a.{x}", "a.*", "a.>", "$JS.x",
		"a.{pod}{pod}", "a.b c", "a.{{pod}}", "a.}{", strings.Repeat("a.", 20) + "a"} {
		f.Add(tmpl)
	}
	v := &Values{Pod: "p.o*d", EventType: strings.Repeat("E", 100), StreamType: ">", StreamID: "a/b+c==",
		Source: "datafeed", HasStream: true}
	f.Fuzz(func(t *testing.T, template string) {
		m, err := Compile(template)
		if err != nil {
			if m != nil {
				t.Fatalf("Compile(%q) returned a Mapper with an error", template)
			}
			return
		}
		if !utf8.ValidString(template) || m.Template() != template {
			t.Fatalf("Compile(%q) accepted, Template() = %q", template, m.Template())
		}
		for _, vv := range []*Values{v, nil} {
			s := m.Subject(vv)
			if err := ValidSubject(s); err != nil {
				t.Fatalf("Compile(%q): %v", template, err)
			}
			if !matchFilter(m.Filter(), s) || !strings.HasPrefix(s, m.prefix) {
				t.Fatalf("Compile(%q): subject %q outside filter %q or prefix %q", template, s, m.Filter(), m.prefix)
			}
		}
	})
}

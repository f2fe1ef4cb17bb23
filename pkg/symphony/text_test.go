package symphony_test

import (
	"testing"

	"github.com/symbridge/symbridge/pkg/symphony"
)

func TestPlainText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<div data-format="PresentationML" data-version="2.0" class="wysiwyg"><p>Q3 &amp; <b>Q4</b>` + "\n  numbers</p></div>", "Q3 & Q4 numbers"},
		{`<div><p><span class="entity" data-entity-id="0">@Ann Lee</span> ships $AAPL</p></div>`, "@Ann Lee ships $AAPL"},
		{`<p>one</p><p>two<br/>three</p><ul><li>a</li><li>b</li></ul>`, "one two three a b"},
		{`<b>Q</b>4 and <I>x</I>y`, "Q4 and xy"}, // inline tags join, any case
		{`<p>&lt;b&gt; is markup, &quot;quoted&quot; &#39;x&#39; &nbsp;&euro;</p>`, `<b> is markup, "quoted" 'x' €`}, // decoded after stripping
		{`<a href="x>y" title='a>b'>link</a> after`, "link after"},                                                   // '>' inside quoted attributes
		{`<messageML>Hello <mention uid="123"/> <hash tag="go"/>!</messageML>`, "Hello !"},
		{`a < b and c<3`, "a < b and c<3"}, // '<' that opens no tag
		{`<!-- note --><p>x</p>`, "x"},
		{`<p>unclosed <b`, "unclosed"},
		{"plain text", "plain text"},
		{"", ""},
	} {
		if got := symphony.PlainText(c.in); got != c.want {
			t.Errorf("PlainText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzPlainText(f *testing.F) {
	f.Add(`<div><p>a &amp; <b>b</b></p></div>`)
	f.Add(`<a href="'>`)
	f.Fuzz(func(t *testing.T, s string) {
		out := symphony.PlainText(s) // must not panic
		if len(out) > 0 && (out[0] == ' ' || out[len(out)-1] == ' ') {
			t.Errorf("PlainText(%q) = %q: not trimmed", s, out)
		}
	})
}

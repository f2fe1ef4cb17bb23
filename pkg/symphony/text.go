package symphony

import (
	"html"
	"strings"
)

// PlainText turns a message body in PresentationML (what the Agent
// delivers in MESSAGESENT's message.message) or MessageML into plain text:
// tags stripped, entities decoded (&amp; becomes &), whitespace folded to
// single spaces. A block element (<p>, <div>, <br/>, <li>, <td>, ...)
// separates words; an inline one (<b>, <i>, <span>, <a>, mentions, ...)
// does not, so "<b>Q</b>4" reads "Q4". A '<' that cannot open a tag is kept
// as text. It is for display (logs, `symbridge tail`), not for parsing:
// attributes, emoji shortcodes and card structure are dropped.
func PlainText(markup string) string {
	var b strings.Builder
	b.Grow(len(markup))
	for i := 0; i < len(markup); {
		if markup[i] != '<' || !opensTag(markup[i+1:]) {
			next := strings.IndexByte(markup[i+1:], '<')
			if next < 0 {
				next = len(markup)
			} else {
				next += i + 1
			}
			b.WriteString(markup[i:next])
			i = next
			continue
		}
		end := tagEnd(markup, i+1)
		if !inlineTags[tagName(markup[i+1:end])] {
			b.WriteByte(' ')
		}
		i = end
	}
	// Entities are decoded after the tags are gone, so that an escaped
	// "&lt;b&gt;" stays text.
	return strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
}

// inlineTags are the elements of PresentationML and MessageML that sit
// inside a run of text.
var inlineTags = map[string]bool{
	"a": true, "b": true, "i": true, "u": true, "em": true, "strong": true, "span": true,
	"code": true, "sub": true, "sup": true, "small": true, "font": true,
	"mention": true, "hash": true, "cash": true, "chime": true, "emoji": true,
}

// opensTag: what follows a '<' starts a tag, a closing tag, a comment or a
// declaration.
func opensTag(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c == '/' || c == '!' || c == '?' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// tagEnd is the index just after the '>' closing the tag that starts at
// markup[start:], quoted attribute values skipped; len(markup) when the tag
// never closes.
func tagEnd(markup string, start int) int {
	var quote byte
	for i := start; i < len(markup); i++ {
		switch c := markup[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i + 1
		}
	}
	return len(markup)
}

// tagName is the lower-cased element name of a tag's text ("/B attr" ->
// "b").
func tagName(tag string) string {
	tag = strings.TrimPrefix(tag, "/")
	end := strings.IndexFunc(tag, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == ':')
	})
	if end >= 0 {
		tag = tag[:end]
	}
	return strings.ToLower(tag)
}

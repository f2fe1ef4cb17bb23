package subjects

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Default templates: events by pod, type and stream type; events that cannot
// be mapped to a dead-letter subject beside them.
const (
	DefaultTemplate   = "symphony.{pod}.{eventType}.{streamType}"
	DefaultDeadLetter = "symphony.{pod}._invalid"
)

// Limits. NATS has no hard subject limit, but its documentation recommends at
// most 16 tokens and fewer than 256 characters, and a subject over 4 KiB
// closes the connection. Keeping well inside keeps subjects readable and
// stream filters cheap.
const (
	// MaxSubjectLen is the longest subject a [Mapper] produces, in bytes.
	MaxSubjectLen = 255
	// MaxTokenLen is the longest token taken from data, in bytes.
	MaxTokenLen = 64
	// MaxTokens is the most tokens a template may have.
	MaxTokens = 16
	// minTokenBudget is the least room a template must leave each
	// placeholder: a Symphony stream id (34 characters) must fit whole.
	minTokenBudget = 34
)

// Fallback tokens for values that are missing.
const (
	tokenUnknown = "unknown" // an empty value (or a stream without a type/id)
	tokenNone    = "none"    // {streamType}/{streamId} of an event with no stream
)

// ErrInvalidTemplate is wrapped by every [Compile] error.
var ErrInvalidTemplate = errors.New("invalid subject template")

// ErrInvalidSubject is wrapped by every [ValidSubject] and [ValidFilter] error.
var ErrInvalidSubject = errors.New("invalid subject")

type placeholder uint8

const (
	literal placeholder = iota
	phPod
	phEventType
	phStreamType
	phStreamID
	phSource
)

// placeholders in the order they are listed in errors.
var placeholders = []struct {
	name string
	ph   placeholder
}{
	{"pod", phPod},
	{"eventType", phEventType},
	{"streamType", phStreamType},
	{"streamId", phStreamID},
	{"source", phSource},
}

func lookupPlaceholder(name string) (placeholder, bool) {
	for _, p := range placeholders {
		if p.name == name {
			return p.ph, true
		}
	}
	return literal, false
}

func knownPlaceholders() string {
	names := make([]string, len(placeholders))
	for i, p := range placeholders {
		names[i] = "{" + p.name + "}"
	}
	return strings.Join(names, " ")
}

type part struct {
	ph  placeholder
	lit string // the token itself when ph == literal
}

// Mapper turns event values into subjects following one compiled template.
// It is immutable and safe for concurrent use.
type Mapper struct {
	template string
	parts    []part
	prefix   string // the literal tokens before the first placeholder, each followed by '.'
	filter   string
	tokenMax int // byte budget of each token taken from data
}

// Values are what a template's placeholders are filled from. Use [FromEvent]
// to take them from a decoded event.
type Values struct {
	Pod        string // {pod}: the pod's subject token from configuration
	EventType  string // {eventType}, lower-cased
	StreamType string // {streamType}, lower-cased
	StreamID   string // {streamId}: case kept (base64 is case-sensitive), "+/=" of standard base64 made URL-safe
	Source     string // {source}: "datafeed" or "datahose"
	HasStream  bool   // false: {streamType} and {streamId} are "none"
}

// Compile parses and validates a template. Tokens are separated by '.'; a
// token is either a literal or exactly one placeholder ({pod}, {eventType},
// {streamType}, {streamId}, {source}). Placeholders must fill a whole token:
// "ev-{eventType}" is refused, which keeps every token from data exactly one
// token and makes [Mapper.Filter] exact. The first token must be a literal, so
// data can never choose a subject's root (such as "_INBOX" or "$JS").
// Literal tokens must be valid NATS tokens: non-empty, no wildcard, no
// whitespace or control character, no braces, not starting with '$'
// (reserved for the system). A template may have at most [MaxTokens] tokens
// and must leave every placeholder at least 34 bytes within [MaxSubjectLen];
// tokens from data are cut to fit that budget (at most [MaxTokenLen]).
func Compile(template string) (*Mapper, error) {
	fail := func(format string, args ...any) (*Mapper, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidTemplate, template, fmt.Sprintf(format, args...))
	}
	switch {
	case template == "":
		return fail("empty")
	case len(template) > MaxSubjectLen:
		return fail("longer than %d bytes", MaxSubjectLen)
	case !utf8.ValidString(template):
		return fail("not valid UTF-8")
	}
	tokens := strings.Split(template, ".")
	if len(tokens) > MaxTokens {
		return fail("%d tokens, at most %d allowed", len(tokens), MaxTokens)
	}
	m := &Mapper{template: template, parts: make([]part, len(tokens))}
	static, nph := len(tokens)-1, 0 // separators count as static bytes
	for i, tok := range tokens {
		n := i + 1
		if tok == "" {
			return fail("token %d is empty (leading, trailing or double dot)", n)
		}
		if strings.ContainsAny(tok, "{}") {
			name, ok := strings.CutPrefix(tok, "{")
			if ok {
				name, ok = strings.CutSuffix(name, "}")
			}
			if !ok || strings.ContainsAny(name, "{}") {
				return fail("token %d %q: a placeholder must be a whole token, like {eventType}", n, tok)
			}
			ph, known := lookupPlaceholder(name)
			if !known {
				return fail("token %d: unknown placeholder %s (known: %s)", n, tok, knownPlaceholders())
			}
			if i == 0 {
				return fail("the first token must be a literal, not %s", tok)
			}
			m.parts[i] = part{ph: ph}
			nph++
			continue
		}
		if err := checkLiteral(tok); err != nil {
			return fail("token %d %q: %v", n, tok, err)
		}
		m.parts[i] = part{lit: tok}
		static += len(tok)
	}
	m.tokenMax = MaxTokenLen
	if nph > 0 {
		if budget := (MaxSubjectLen - static) / nph; budget < m.tokenMax {
			m.tokenMax = budget
		}
		if m.tokenMax < minTokenBudget {
			return fail("leaves %d bytes per placeholder within %d bytes, at least %d needed", m.tokenMax, MaxSubjectLen, minTokenBudget)
		}
	}
	var prefix, filter strings.Builder
	inPrefix := true
	for i, p := range m.parts {
		if i > 0 {
			filter.WriteByte('.')
		}
		if p.ph != literal {
			inPrefix = false
			filter.WriteByte('*')
			continue
		}
		filter.WriteString(p.lit)
		if inPrefix {
			prefix.WriteString(p.lit)
			prefix.WriteByte('.')
		}
	}
	m.prefix, m.filter = prefix.String(), filter.String()
	if nph == 0 {
		m.prefix = template // a fully literal template is its own subject
	}
	return m, nil
}

// checkLiteral validates a literal template token.
func checkLiteral(tok string) error {
	if tok[0] == '$' {
		return errors.New("starts with '$' (reserved for the system)")
	}
	for _, r := range tok {
		switch {
		case r == '*' || r == '>':
			return errors.New("wildcards are not allowed in a subject to publish to")
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return errors.New("whitespace or control character")
		}
	}
	return nil
}

// Template returns the template the Mapper was compiled from.
func (m *Mapper) Template() string { return m.template }

// Filter returns a subject filter that matches every subject the Mapper can
// produce (each placeholder becomes '*'), e.g. "symphony.*.*.*" for
// [DefaultTemplate]. Check that the target stream's subjects cover it.
func (m *Mapper) Filter() string { return m.filter }

// Subject returns the subject for v. Every token taken from v is sanitised
// (see [SanitizeToken]), so the result always has the template's token count,
// starts with its literal prefix and passes [ValidSubject]. Empty values map
// to "unknown"; {streamType} and {streamId} are "none" when v.HasStream is
// false. A nil v counts as empty values. The returned string is the only
// allocation.
func (m *Mapper) Subject(v *Values) string {
	var buf [MaxSubjectLen]byte
	return string(m.AppendSubject(buf[:0], v))
}

// AppendSubject appends the subject for v to dst and returns the extended
// buffer, without allocating when dst has room (at most [MaxSubjectLen]
// bytes are appended). It is the hot-path form of [Mapper.Subject].
func (m *Mapper) AppendSubject(dst []byte, v *Values) []byte {
	if v == nil {
		v = &Values{}
	}
	for i, p := range m.parts {
		if i > 0 {
			dst = append(dst, '.')
		}
		switch p.ph {
		case literal:
			dst = append(dst, p.lit...)
		case phPod:
			dst = appendToken(dst, v.Pod, keepCase, m.tokenMax)
		case phEventType:
			dst = appendToken(dst, v.EventType, lowerCase, m.tokenMax)
		case phSource:
			dst = appendToken(dst, v.Source, keepCase, m.tokenMax)
		case phStreamType:
			if !v.HasStream {
				dst = append(dst, tokenNone...)
				continue
			}
			dst = appendToken(dst, v.StreamType, lowerCase, m.tokenMax)
		case phStreamID:
			if !v.HasStream {
				dst = append(dst, tokenNone...)
				continue
			}
			dst = appendToken(dst, v.StreamID, streamID, m.tokenMax)
		}
	}
	return dst
}

// SanitizeToken turns any string into one valid subject token: characters
// outside [A-Za-z0-9_-] become '_' (one per character; invalid UTF-8 one per
// byte), an empty string becomes "unknown", and a value longer than
// [MaxTokenLen] keeps a prefix followed by '-' and a 13-character hash of the
// whole value, so distinct long values stay distinct. The result is never
// empty, never starts with '$' and never holds '.', '*', '>' or whitespace.
// Short values that differ only in replaced characters ("a.b", "a b") share a
// token: tokens route, they do not identify.
func SanitizeToken(s string) string {
	var buf [MaxTokenLen]byte
	return string(appendToken(buf[:0], s, keepCase, MaxTokenLen))
}

type tokenMode uint8

const (
	keepCase  tokenMode = iota
	lowerCase           // {eventType}, {streamType}: ASCII letters lower-cased
	streamID            // {streamId}: standard base64 normalised to URL-safe
)

// hashLen is the length of the hash suffix of a cut token: 64 bits in
// lower-case base32, so that a lower-cased token stays lower-case.
const hashLen = 13

const hashAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// appendToken appends s sanitised as one token of at most limit bytes
// (limit > hashLen+1).
func appendToken(dst []byte, s string, mode tokenMode, limit int) []byte {
	tbl := &tokenBytes[mode]
	if len(s) > limit { // maybe over the limit: count the output bytes
		n := 0
		for i := 0; i < len(s); {
			b := s[i]
			if b < utf8.RuneSelf {
				if tbl[b] != 0 {
					n++
				}
				i++
				continue
			}
			_, size := utf8.DecodeRuneInString(s[i:])
			n++
			i += size
		}
		if n > limit {
			dst = appendMapped(dst, s, tbl, limit-1-hashLen)
			dst = append(dst, '-')
			h := hashToken(s, mode)
			for range hashLen {
				dst = append(dst, hashAlphabet[h&31])
				h >>= 5
			}
			return dst
		}
	}
	start := len(dst)
	dst = appendMapped(dst, s, tbl, limit)
	if len(dst) == start {
		return append(dst, tokenUnknown...)
	}
	return dst
}

// appendMapped appends at most keep token bytes of s: one byte per rune, by
// tbl for ASCII and '_' for any other rune (or byte of invalid UTF-8).
func appendMapped(dst []byte, s string, tbl *[utf8.RuneSelf]byte, keep int) []byte {
	for i := 0; i < len(s) && keep > 0; {
		b := s[i]
		if b < utf8.RuneSelf {
			if c := tbl[b]; c != 0 {
				dst = append(dst, c)
				keep--
			}
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		dst = append(dst, '_')
		keep--
		i += size
	}
	return dst
}

// tokenBytes maps, per mode, each ASCII byte to its token byte; 0 drops the
// byte (the '=' padding of a base64 stream id).
var tokenBytes = func() (t [3][utf8.RuneSelf]byte) {
	for mode := range t {
		for b := range utf8.RuneSelf {
			c := byte(b)
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			case c >= 'A' && c <= 'Z':
				if tokenMode(mode) == lowerCase {
					c += 'a' - 'A'
				}
			case tokenMode(mode) == streamID && c == '+':
				c = '-'
			case tokenMode(mode) == streamID && c == '/':
				c = '_'
			case tokenMode(mode) == streamID && c == '=':
				c = 0
			default:
				c = '_'
			}
			t[mode][b] = c
		}
	}
	return t
}()

// hashToken is 64-bit FNV-1a over the value as the token sees it (ASCII
// lower-cased in lowerCase mode, base64 normalised in streamID mode), so that
// values sharing a short token's meaning also share a cut one. It is not a
// security boundary, only a way to keep cut tokens apart.
func hashToken(s string, mode tokenMode) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case mode == lowerCase && c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case mode == streamID && c == '+':
			c = '-'
		case mode == streamID && c == '/':
			c = '_'
		case mode == streamID && c == '=':
			continue
		}
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// ValidSubject checks a concrete subject to publish to: non-empty, at most
// [MaxSubjectLen] bytes, no empty token, no wildcard token ("*" or ">"), no
// whitespace or control character. The error wraps [ErrInvalidSubject].
func ValidSubject(s string) error {
	fail := func(reason string) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidSubject, quoteShort(s), reason)
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > MaxSubjectLen {
		return fail("longer than " + strconv.Itoa(MaxSubjectLen) + " bytes")
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		switch tok := s[start:i]; tok {
		case "":
			return fail("empty token")
		case "*", ">":
			return fail("wildcard token")
		}
		start = i + 1
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fail("whitespace or control character")
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cut so that a huge value does not
// flood a log line.
func quoteShort(s string) string {
	const limit = 80
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "..."
}

// ValidFilter checks a subject filter, such as a stream's subject: non-empty
// tokens without whitespace, wildcards ("*", ">") only as whole tokens, '>'
// only last. The error wraps [ErrInvalidSubject].
func ValidFilter(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalidSubject)
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		reason := ""
		switch {
		case t == "":
			reason = "has an empty token"
		case strings.ContainsFunc(t, unicode.IsSpace):
			reason = "contains whitespace"
		case t == ">" && i != len(toks)-1:
			reason = "'>' must be the last token"
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			reason = "wildcards must be whole tokens"
		default:
			continue
		}
		return fmt.Errorf("%w %s: %s", ErrInvalidSubject, quoteShort(s), reason)
	}
	return nil
}

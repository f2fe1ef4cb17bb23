package symphony

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The one decoder of read answers and events.
//
// The bridge's hot path is decoding read answers: with encoding/json it was
// about half of the bridge's CPU (a validation pass, then reflection over
// every field of every 1 KiB event, most of which nobody routes on). This
// decoder validates and walks each byte once and extracts only the routing
// fields, with encoding/json v1's semantics for them (BENCHMARKS.md, "Event
// decoder", has the measurement that chose it over a JSON library):
//
//   - field names match case-insensitively (Unicode simple folding, as
//     encoding/json), escaped or not; payload keys (a map) match exactly;
//   - of duplicate fields the last wins, and an object decodes into what an
//     earlier duplicate left, as encoding/json decodes into a non-nil
//     pointer or slice; null leaves a string as it was and resets a
//     pointer, a map or a slice;
//   - strings are unescaped as encoding/json does, invalid UTF-8 becoming
//     U+FFFD; numbers are json.Numbers (quoted ones too) converted with
//     strconv.ParseInt;
//   - a value of the wrong type makes the event invalid, but decoding goes
//     on, so a syntax error later still fails the whole body;
//   - nesting beyond maxJSONDepth (encoding/json's limit) makes the event
//     invalid; in a batch only that event (its depth counted from the
//     event), so that one event cannot make a batch undecodable, never
//     acked and redelivered forever.
//
// event_reference_test.go keeps plain encoding/json as the reference;
// FuzzParseEventFast and FuzzDecodeEventList check the two agree.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// decoder walks one JSON text. A syntax error stops it (its position is
// kept and every read after it fails); a type error is kept and decoding
// goes on. Its methods never panic.
type decoder struct {
	b       []byte
	i       int
	depth   int
	limit   int  // deepest nesting allowed
	tooDeep bool // limit exceeded
	synErr  bool
	synAt   int
	after   bool // the syntax error is data after the value
	typeErr error
}

// fail records a syntax error at d.i and stops the decoder.
func (d *decoder) fail() {
	if !d.synErr {
		d.synErr, d.synAt = true, d.i
	}
	d.i = len(d.b)
}

// err is the decoder's first error: syntax, depth, then type.
func (d *decoder) err() error {
	switch {
	case d.synErr && d.synAt >= len(d.b):
		return fmt.Errorf("unexpected end of JSON input")
	case d.synErr && d.after:
		return fmt.Errorf("invalid character %q after top-level value", d.b[d.synAt])
	case d.synErr:
		return fmt.Errorf("invalid character %q at offset %d", d.b[d.synAt], d.synAt)
	case d.tooDeep:
		return fmt.Errorf("exceeded max depth of %d", maxJSONDepth)
	}
	return d.typeErr
}

// typeError records that the value at d.i does not fit field, and skips it.
func (d *decoder) typeError(field, want string) {
	if d.typeErr == nil {
		d.typeErr = fmt.Errorf("cannot unmarshal %s into %s of type %s", kindName(d.peek()), field, want)
	}
	d.skip()
}

func kindName(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func (d *decoder) ws() {
	b, i := d.b, d.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	d.i = i
}

func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// end checks that only whitespace is left.
func (d *decoder) end() {
	d.ws()
	if d.i != len(d.b) {
		d.after = !d.synErr
		d.fail()
	}
}

// enter counts one more level of nesting (the opening bracket is read).
func (d *decoder) enter() {
	d.depth++
	if d.depth > d.limit {
		d.tooDeep = true
	}
}

// strPlain marks the bytes that may appear in a JSON string without
// ending it or starting an escape.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string at d.i and returns its contents (between the
// quotes, escapes not decoded) and whether it has no escape.
func (d *decoder) str() (v []byte, plain, ok bool) {
	b, i := d.b, d.i // i in a register in the loops, d.i stored on leaving
	if i >= len(b) || b[i] != '"' {
		d.fail()
		return nil, false, false
	}
	i++
	start := i
	plain = true
	for {
		for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		d.i = i
		switch c := d.peek(); {
		case c == '"':
			d.i = i + 1
			return b[start:i], plain, true
		case c == '\\':
			plain = false
			if !d.escape() {
				return nil, false, false
			}
			i = d.i
		default: // a control character, or the end
			d.fail()
			return nil, false, false
		}
	}
}

// escape scans the escape sequence at d.i.
func (d *decoder) escape() bool {
	b := d.b
	d.i++
	switch d.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		d.i++
		return true
	case 'u':
		if d.i+4 < len(b) && isHex(b[d.i+1]) && isHex(b[d.i+2]) && isHex(b[d.i+3]) && isHex(b[d.i+4]) {
			d.i += 5
			return true
		}
	}
	d.fail()
	return false
}

// special8 reports whether any of 8 bytes (a little-endian word) is a
// quote, a backslash or a control character: the decoder then looks at
// them one by one. Most of an event is string contents; this skips it 8
// bytes at a time.
func special8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(lo*'"'), x^(lo*'\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(bs-lo)&^bs)&hi != 0
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// digits skips a run of decimal digits and reports whether there was one.
func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// num scans a number and returns its text.
func (d *decoder) num() ([]byte, bool) {
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	ok := true
	if d.peek() == '0' {
		d.i++
	} else {
		ok = d.peek() != 0 && d.digits()
	}
	if ok && d.peek() == '.' {
		d.i++
		ok = d.digits()
	}
	if c := d.peek(); ok && (c == 'e' || c == 'E') {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		ok = d.digits()
	}
	if !ok {
		d.fail()
		return nil, false
	}
	return d.b[start:d.i], true
}

func (d *decoder) lit(word string) bool {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		d.fail()
		return false
	}
	d.i += len(word)
	return true
}

// scalar scans a string, number, true, false or null.
func (d *decoder) scalar() bool {
	switch c := d.peek(); {
	case c == '"':
		_, _, ok := d.str()
		return ok
	case c == 't':
		return d.lit("true")
	case c == 'f':
		return d.lit("false")
	case c == 'n':
		return d.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		_, ok := d.num()
		return ok
	}
	d.fail()
	return false
}

// skip validates and skips one value of any depth without recursing: each
// open container costs a byte of stack, not a stack frame.
func (d *decoder) skip() {
	switch d.peek() {
	case '"':
		d.str()
	case '{', '[':
		d.skipNested()
	default:
		d.scalar()
	}
}

// skipNested is skip for an object or an array.
func (d *decoder) skipNested() {
	var buf [64]byte
	open := buf[:0] // the closer each open container expects
	for {
		switch c := d.peek(); c {
		case '"':
			if _, _, ok := d.str(); !ok {
				return
			}
		case '{', '[':
			d.i++
			d.enter()
			d.ws()
			if d.peek() != c+2 { // '[' + 2 is ']', '{' + 2 is '}'
				open = append(open, c+2)
				if c == '[' || d.keyColon() {
					continue
				}
				return
			}
			d.i++
			d.depth--
		default:
			if !d.scalar() {
				return
			}
		}
		if open = d.next(open); len(open) == 0 {
			return
		}
	}
}

// next moves past the commas and closers after a value (and past the key
// of the next member), and returns the containers still open when another
// value follows inside them (none: the value skipped is complete, or there
// was an error).
func (d *decoder) next(open []byte) []byte {
	for len(open) > 0 {
		d.ws()
		switch top := open[len(open)-1]; d.peek() {
		case ',':
			d.i++
			d.ws()
			if top == ']' || d.keyColon() {
				return open
			}
			return nil
		case top:
			d.i++
			d.depth--
			open = open[:len(open)-1]
		default:
			d.fail()
			return nil
		}
	}
	return nil
}

// member moves to the next member of an object whose '{' is read, and
// returns its key as scanned (escapes not decoded) and whether it has no
// escape; ok false past the closing brace (or on error).
func (d *decoder) member(first bool) (key []byte, plain, ok bool) {
	d.ws()
	switch c := d.peek(); {
	case c == '}':
		d.i++
		d.depth--
		return nil, false, false
	case !first && c != ',':
		d.fail()
		return nil, false, false
	case !first:
		d.i++
		d.ws()
	}
	key, plain, ok = d.str()
	return key, plain, ok && d.colon()
}

// keyColon scans `"key" :`.
func (d *decoder) keyColon() bool {
	_, _, ok := d.str()
	return ok && d.colon()
}

// colon moves past the colon after a key.
func (d *decoder) colon() bool {
	d.ws()
	if d.peek() != ':' {
		d.fail()
		return false
	}
	d.i++
	d.ws()
	return true
}

// fieldEnd is what field returns past an object's closing brace.
const fieldEnd = -2

// field moves to the next member of an object whose '{' is read and
// returns the index of its key among the names of fs (-1: another key),
// the value being left at d.i; fieldEnd past the closing brace (or on
// error). Keys match as encoding/json matches struct fields: exactly, else
// case-insensitively with Unicode folding. A plain ASCII key, nearly every
// key, is compared as it lies with the one name of its hash; any other key
// goes to [fieldSet.matchDecoded].
func (d *decoder) field(first bool, fs *fieldSet) int {
	key, plain, ok := d.member(first)
	if !ok {
		return fieldEnd
	}
	if plain && len(key) > 0 {
		i := fs.bucket[fieldHash(len(key), key[0])] - 1
		if i >= 0 && string(key) == fs.names[i] {
			return int(i) // the usual match: no need to look further
		}
		if isASCII(key) {
			if i >= 0 && len(key) == len(fs.names[i]) && strings.EqualFold(string(key), fs.names[i]) {
				return int(i)
			}
			return -1
		}
	}
	return fs.matchDecoded(key)
}

// elem moves to the next element of an array whose '[' is read; false past
// the closing bracket (or on error).
func (d *decoder) elem(first bool) bool {
	d.ws()
	switch c := d.peek(); {
	case c == ']':
		d.i++
		d.depth--
		return false
	case !first && c != ',':
		d.fail()
		return false
	case !first:
		d.i++
		d.ws()
	}
	return true
}

// unquote decodes the escapes of a string's contents as encoding/json
// does: invalid UTF-8 and unpaired surrogates become U+FFFD. s is valid
// (scanned by str).
func unquote(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\' && s[i+1] == 'u':
			var r rune
			r, i = unquoteU(s, i)
			out = utf8.AppendRune(out, r)
		case c == '\\':
			out = append(out, unescapeByte[s[i+1]])
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r)
			i += n
		}
	}
	return out
}

var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// unquoteU decodes the \uXXXX at s[i:] (and the low surrogate after it
// when it makes a pair) and returns the rune and the index after it.
func unquoteU(s []byte, i int) (rune, int) {
	r := hex4(s[i+2:])
	i += 6
	if !utf16.IsSurrogate(r) {
		return r, i
	}
	if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
		if dec := utf16.DecodeRune(r, hex4(s[i+2:])); dec != utf8.RuneError {
			return dec, i + 6
		}
	}
	return utf8.RuneError, i
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// fieldSet is the JSON names of a struct's fields, indexed so that a key
// is matched against at most one of them before decoding it.
type fieldSet struct {
	names []string
	// bucket holds 1 + the index of the name with that fieldHash, 0 for
	// none. Names of a struct differ in fieldHash (newFieldSet checks).
	bucket [64]int8
}

// fieldHash hashes a key by its length and first byte, ASCII case folded
// (a string conversion here would copy the key): an ASCII key that matches
// a name case-insensitively has the name's hash.
func fieldHash(length int, first byte) int {
	return (length*9 + int(first|0x20)) & 63
}

func newFieldSet(names ...string) *fieldSet {
	fs := &fieldSet{names: names}
	for i, n := range names {
		h := fieldHash(len(n), n[0])
		if fs.bucket[h] != 0 {
			panic("symphony: field names " + n + " and " + names[fs.bucket[h]-1] + " share a hash")
		}
		fs.bucket[h] = int8(i + 1)
	}
	return fs
}

// matchDecoded returns the index of the name that a key with an escape or
// a non-ASCII byte (as scanned) matches once decoded, exactly, else
// case-insensitively with Unicode folding; -1 for none.
func (fs *fieldSet) matchDecoded(key []byte) int {
	key = unquote(key) // also replaces invalid UTF-8, as encoding/json does
	for i, n := range fs.names {
		if string(key) == n {
			return i
		}
	}
	for i, n := range fs.names {
		if strings.EqualFold(string(key), n) {
			return i
		}
	}
	return -1
}

// isASCII reports whether s is all ASCII, 8 bytes at a time.
func isASCII(s []byte) bool {
	for len(s) >= 8 {
		if binary.LittleEndian.Uint64(s)&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// text reads a value for a string field: its unescaped contents and true,
// or false for null (the field keeps its value; a *string is reset) and
// for a value of another type (a type error).
func (d *decoder) text(name string) ([]byte, bool) {
	switch d.peek() {
	case '"':
		raw, plain, ok := d.str()
		if plain && utf8.Valid(raw) {
			return raw, ok
		}
		return unquote(raw), ok
	case 'n':
		d.lit("null")
		return nil, false
	}
	d.typeError(name, "string")
	return nil, false
}

// number reads a value for a json.Number field: its text and true, or
// false for null (the field keeps its value).
func (d *decoder) number(name string) ([]byte, bool) {
	switch c := d.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		return d.num()
	case c == '"':
		t, _ := d.text(name)
		if !validNumber(t) && d.typeErr == nil {
			d.typeErr = fmt.Errorf("invalid number literal %q for %s", t, name)
		}
		return t, true
	case c == 'n':
		d.lit("null")
		return nil, false
	}
	d.typeError(name, "json.Number")
	return nil, false
}

func validNumber(t []byte) bool {
	n := decoder{b: t}
	_, ok := n.num()
	return ok && n.i == len(t)
}

// parseInt is json.Number.Int64 (strconv.ParseInt) without allocating for
// the usual integers of up to 18 digits.
func parseInt(t []byte) (int64, error) {
	digits := t
	if len(t) > 0 && t[0] == '-' {
		digits = t[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return strconv.ParseInt(string(t), 10, 64)
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return strconv.ParseInt(string(t), 10, 64)
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(t) {
		n = -n
	}
	return n, nil
}

// open reads the start of a value for a field of a container type (an
// object if open is '{', an array if '['): opened when it is one (its
// bracket read); null when it is null; neither for another type (a type
// error, skipped).
func (d *decoder) open(open byte, name, want string) (opened, null bool) {
	switch d.peek() {
	case open:
		d.i++
		d.enter()
		return true, false
	case 'n':
		return false, d.lit("null")
	}
	d.typeError(name, want)
	return false, false
}

// object reads the start of a value for a struct pointer field: true when
// it is an object (its '{' read); false for null (the caller resets the
// field) and for another type (a type error).
func (d *decoder) object(name string) bool {
	opened, _ := d.open('{', name, "object")
	return opened
}

// Package leakcheck finds pieces of secrets in text, for tests that prove a
// private key, a token or a password never reaches an error, a log line, a
// metric or a String() output.
//
// Searching for whole secrets is not enough: a message cut to 200
// characters, a token echoed without its first part or a key printed as one
// PEM line still leak. So every WindowLen-byte piece of every secret is
// looked for, which catches any leak of at least WindowLen consecutive bytes.
package leakcheck

import (
	"bytes"
	"strings"
)

// WindowLen is the length of the secret pieces searched for. Twelve bytes of
// base64 are 72 bits: far too many for a piece to turn up by chance in text
// that does not hold the secret.
const WindowLen = 12

// minWhole is the shortest secret searched for whole when it is shorter than
// WindowLen; a shorter one would match ordinary text.
const minWhole = 4

// Find returns the pieces of haystack that are made of secret material: the
// maximal runs of haystack covered by a WindowLen-byte piece of a secret, in
// order of appearance. A secret shorter than WindowLen is searched for whole
// (if it has at least 4 bytes); empty secrets are ignored. Nil means no leak.
//
// Pass a PEM file through [PEMBody] first: its header lines are public.
func Find(haystack string, secrets ...string) []string {
	windows := map[string]struct{}{}
	var short []string
	for _, s := range secrets {
		switch {
		case len(s) >= WindowLen:
			for i := 0; i+WindowLen <= len(s); i++ {
				windows[s[i:i+WindowLen]] = struct{}{}
			}
		case len(s) >= minWhole:
			short = append(short, s)
		}
	}
	covered := make([]bool, len(haystack))
	for i := 0; i+WindowLen <= len(haystack); i++ {
		if _, ok := windows[haystack[i:i+WindowLen]]; ok {
			for j := i; j < i+WindowLen; j++ {
				covered[j] = true
			}
		}
	}
	for _, s := range short {
		for off := 0; ; {
			k := strings.Index(haystack[off:], s)
			if k < 0 {
				break
			}
			for j := off + k; j < off+k+len(s); j++ {
				covered[j] = true
			}
			off += k + 1
		}
	}
	var found []string
	for i := 0; i < len(covered); {
		if !covered[i] {
			i++
			continue
		}
		j := i
		for j < len(covered) && covered[j] {
			j++
		}
		found = append(found, haystack[i:j])
		i = j
	}
	return found
}

// PEMBody returns the secret part of PEM data: its lines without the
// "-----BEGIN/END" lines and the RFC 1421 headers (any line with a colon,
// such as "Proc-Type: ..."), which are public, joined without line breaks.
// Every piece of a line is then a window, and so are pieces spanning two
// lines, should a leak have lost the line break.
func PEMBody(pemData []byte) string {
	var b strings.Builder
	for line := range bytes.Lines(pemData) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("-----")) || bytes.Contains(line, []byte(":")) {
			continue
		}
		b.Write(line)
	}
	return b.String()
}

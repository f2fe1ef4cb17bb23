// Package redact keeps secrets out of what symbridge prints: [Secret] for
// configuration values, [URL] and [URLList] for URLs that may carry
// credentials. It is the one place both rules are written.
package redact

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
)

// Redacted replaces a secret in output.
const Redacted = "[redacted]"

// Secret is a string that prints, logs and marshals as [Redacted] ("" when
// empty). [Secret.Reveal] gives the text to the one place that needs it.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String is Redacted, or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps encoding/json from printing the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// URL hides the credentials of a URL's user info: the password (shown as
// "user:xxxxx", as url.URL.Redacted does) or a user without a password,
// which NATS takes as a token. Text that does not parse as a URL with a
// host is hidden entirely when it holds a '@', kept otherwise.
func URL(s string) string {
	u, err := url.Parse(s)
	switch {
	case (err != nil || u.Opaque != "") && strings.Contains(s, "@"): // "u:p@host:1" parses as scheme "u"
		return Redacted
	case err != nil || u.User == nil:
		return s
	}
	if _, ok := u.User.Password(); !ok {
		u.User = url.User("redacted")
	}
	return u.Redacted()
}

// URLList applies [URL] to each URL of a comma-separated list.
func URLList(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = URL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

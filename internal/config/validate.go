package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Validate reports every problem of the configuration, each naming its key
// and the reason, joined into one error (nil when the configuration is
// usable). It includes what Load found but could not fail on: missing or
// unreadable key, certificate and trust-store files, conflicting
// alternatives, faulty server URLs. Subject templates and the stream are
// checked by the rules of the packages that use them (pkg/subjects,
// pkg/bridge), named here by key.
func (c *Config) Validate() error {
	errs := slices.Clone(c.problems)
	reject := func(bad bool, key, format string, a ...any) {
		if bad {
			errs = append(errs, &keyError{key, fmt.Errorf(format, a...)})
		}
	}

	// The unexported flags count a method whose file failed to load, so that
	// the file's problem is reported rather than a missing key.
	rsaAuth := len(c.PrivateKeyPEM) > 0 || c.PrivateKeyPath != "" || c.rsaConfigured
	certAuth := c.Certificate != nil || c.certConfigured
	reject(!rsaAuth && !certAuth, "bot.privateKey.path", "required: configure bot.privateKey (RSA) or bot.certificate (certificate authentication)")
	reject(rsaAuth && certAuth, "bot.certificate", "configure either bot.privateKey or bot.certificate, not both")
	reject(c.Username == "", "bot.username", "required")
	reject(c.ConnectTimeout <= 0, "connectionTimeout", "must be positive, got %s", c.ConnectTimeout)
	reject(c.ReadTimeout <= 0, "readTimeout", "must be positive, got %s", c.ReadTimeout)

	df, dh := c.Datafeed, c.Datahose
	reject(df.Version != "v1" && df.Version != "v2", "datafeed.version", "must be v2 or v1, got %q", df.Version)
	switch c.Bridge.Source {
	case "datafeed":
		n := utf8.RuneCountInString(df.Tag)
		reject(df.Version == "v2" && (n == 0 || n > symphony.MaxDatafeedTag),
			"datafeed.tag", "must be 1 to %d characters (symbridge reads a feed of its own), got %d", symphony.MaxDatafeedTag, n)
		reject(df.Version == "v1" && df.IDFilePath == "", "datafeed.idFilePath", "required with datafeed.version v1")
		if df.Version == "v2" && df.Coordination.Enabled {
			err := checkBucket(df.Coordination.Bucket)
			reject(err != nil, "datafeed.coordination.bucket", "%w", err)
		}
		errs = append(errs, keyed(df.Retry.Validate(), "datafeed.retry.", retryKeyNames)...)
	case "datahose":
		reject(len(dh.EventTypes) == 0, "datahose.eventTypes", "required when bridge.source is datahose (e.g. MESSAGESENT,ROOMCREATED)")
		unknown := slices.DeleteFunc(slices.Clone(dh.EventTypes), symphony.IsKnownType)
		reject(len(unknown) > 0, "datahose.eventTypes", "unknown event types %s (known: %s)",
			strings.Join(unknown, ", "), strings.Join(symphony.KnownTypes(), ", "))
		n := utf8.RuneCountInString(dh.Tag)
		reject(n == 0 || n > symphony.MaxDatahoseTag, "datahose.tag", "must be 1 to %d characters, got %d", symphony.MaxDatahoseTag, n)
		for _, s := range dh.Scopes {
			reject(!slices.Contains(symphony.DatahoseScopes(), s), "datahose.scopes", "must be INTERNAL, EXTERNAL or FEDERATED, got %q", s)
		}
		errs = append(errs, keyed(dh.Retry.Validate(), "datahose.retry.", retryKeyNames)...)
	default:
		reject(true, "bridge.source", "must be datafeed or datahose, got %q", c.Bridge.Source)
	}

	br := c.Bridge
	// Without a pod host, pod.host is reported.
	reject(br.Pod == "" && c.PodURL != "", "bridge.pod", "required (it defaults to the first label of the pod host)")
	reject(strings.ContainsFunc(br.Pod, unicode.IsSpace), "bridge.pod", "must not contain whitespace, got %q", br.Pod)
	for _, t := range [][2]string{{"bridge.subject", br.Subject}, {"bridge.deadLetter", br.DeadLetter}} {
		_, err := subjects.Compile(t[1])
		reject(err != nil, t[0], "%w", err)
	}
	reject(br.PublishTimeout <= 0, "bridge.publishTimeout", "must be positive, got %s", br.PublishTimeout)
	reject(br.SlowRetry <= 0, "bridge.slowRetry", "must be positive, got %s", br.SlowRetry)
	reject(br.MaxPending < 1, "bridge.maxPending", "must be at least 1, got %d", br.MaxPending)
	reject(br.Readers < 1, "bridge.readers", "must be at least 1, got %d", br.Readers)
	reject(br.DedupeEntries < 0, "bridge.dedupeEntries", "must be 0 (disabled) or more, got %d", br.DedupeEntries)
	reject(br.MaxBodyBytes < minBodyBytes,
		"bridge.maxBodyBytes", "must be at least %d (1 MiB) so that one large event never blocks the feed, got %d", minBodyBytes, br.MaxBodyBytes)

	n := c.NATS
	if n.Embedded.Enabled {
		reject(n.Embedded.Dir == "", "nats.embedded.dir", "required when nats.embedded.enabled is true")
		err := checkHostPort(n.Embedded.Listen)
		reject(err != nil, "nats.embedded.listen", "%v", err)
	}
	reject(n.URL == "" && !n.Embedded.Enabled, "nats.url", "required unless nats.embedded.enabled is true")
	for _, one := range strings.Split(n.URL, ",") {
		err := checkNATSURL(strings.TrimSpace(one))
		reject(n.URL != "" && err != nil, "nats.url", "%v", err)
	}
	reject((n.TLS.CertFile == "") != (n.TLS.KeyFile == ""), "nats.tls.certFile, nats.tls.keyFile", "set both or neither")
	reject(n.CredsFile != "" && n.NKeyFile != "", "nats.credsFile, nats.nkeyFile", "set only one of them")
	reject(n.PingInterval <= 0, "nats.pingInterval", "must be positive, got %s", n.PingInterval)
	errs = append(errs, keyed(n.Stream.Bridge().Validate(), "nats.stream.", nil)...)

	if c.HTTP.Listen != "" {
		err := checkHostPort(c.HTTP.Listen)
		reject(err != nil, "http.listen", "%v", err)
	}
	reject(!slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level), "log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	reject(c.Log.Format != "text" && c.Log.Format != "json", "log.format", "must be text or json, got %q", c.Log.Format)
	reject(c.Runtime.MaxProcs < 0, "runtime.maxProcs", "must be 0 (Go's default) or more, got %d", c.Runtime.MaxProcs)
	reject(c.Runtime.GCPercent < -1, "runtime.gcPercent", "must be -1 (off) or more, got %d", c.Runtime.GCPercent)
	return errors.Join(errs...)
}

// keyError is a problem of one key, or of a group of keys written "a, b":
// every problem Validate reports is one, so that ValidateFor places it by
// its key rather than by its text.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// Scope is the part of the configuration a command uses, by key prefix.
type Scope struct{ prefixes []string }

// ScopeNATS is what a command that only reads the stream uses (`symbridge
// tail`): the nats.* and log.* keys. A file without the bot's keys is valid
// in it.
var ScopeNATS = Scope{prefixes: []string{"nats.", "log."}}

// ValidateFor is [Config.Validate] for the keys in scope: the same rules,
// and only the problems of those keys. A problem without a key (there should
// be none) is kept: out of doubt, not dropped.
func (c *Config) ValidateFor(scope Scope) error {
	joined, _ := c.Validate().(interface{ Unwrap() []error })
	if joined == nil {
		return nil
	}
	var in []error
	for _, err := range joined.Unwrap() {
		ke, ok := err.(*keyError)
		if !ok || slices.ContainsFunc(scope.prefixes, func(p string) bool { return strings.HasPrefix(ke.key, p) }) {
			in = append(in, err)
		}
	}
	return errors.Join(in...)
}

const minBodyBytes = 1 << 20

// retryKeyNames are the BDK's names of symphony.RetryConfig's fields.
var retryKeyNames = map[string]string{"MaxAttempts": "maxAttempts", "Initial": "initialIntervalMillis", "Multiplier": "multiplier", "Max": "maxIntervalMillis"}

// keyed names each field problem a library's Validate reports (Go field names)
// by the key the user typed: prefix + names[field], else the field in
// lowerCamelCase ("MaxMsgSize" -> "maxMsgSize").
func keyed(err error, prefix string, names map[string]string) []error {
	joined, _ := err.(interface{ Unwrap() []error })
	if joined == nil {
		return nil
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var se *symphony.FieldError
		var be *bridge.FieldError
		field, inner := "", e
		switch {
		case errors.As(e, &se):
			field, inner = se.Field, se.Err
		case errors.As(e, &be):
			field, inner = be.Field, be.Err
		}
		key := names[field]
		if key == "" && field != "" {
			key = strings.ToLower(field[:1]) + field[1:]
		}
		out = append(out, &keyError{prefix + key, inner})
	}
	return out
}

// ClaimsBucketSuffix names the claims bucket after the records bucket
// (datafeed.coordination.bucket): "<bucket>-claims".
const ClaimsBucketSuffix = "-claims"

// maxBucket leaves room for JetStream's "KV_" prefix and [ClaimsBucketSuffix]
// in a stream name of at most 255 characters.
const maxBucket = 255 - len("KV_") - len(ClaimsBucketSuffix)

// checkBucket accepts what JetStream accepts as a key-value bucket name, for
// the bucket and its claims bucket alike.
func checkBucket(s string) error {
	switch {
	case s == "":
		return errors.New("required when datafeed.coordination.enabled is true")
	case strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}):
		return fmt.Errorf("only letters, digits, _ and - are allowed in a key-value bucket name, got %q", s)
	case len(s) > maxBucket:
		return fmt.Errorf("at most %d characters (the claims bucket is %q), got %d", maxBucket, "<bucket>"+ClaimsBucketSuffix, len(s))
	}
	return nil
}

// checkNATSURL accepts what nats.go accepts: a URL with a nats, tls, ws or
// wss scheme, or host:port (nats:// is then implied).
func checkNATSURL(s string) error {
	if s != "" && !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("empty server URL in the list")
	case err != nil:
		return fmt.Errorf("invalid URL %q", redact.URL(s))
	case !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme):
		return fmt.Errorf("scheme must be nats, tls, ws or wss, got %q", u.Scheme)
	case u.Hostname() == "":
		return fmt.Errorf("no host in %q", u.Redacted())
	}
	return nil
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port or :port, got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be between 0 and 65535, got %q", port)
	}
	return nil
}

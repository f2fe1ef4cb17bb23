// Package config loads symbridge's configuration: a team's existing Symphony
// BDK config.yaml (which must work unchanged) plus symbridge's own sections
// (bridge, nats, http, log), in three layers with koanf: the YAML (or JSON)
// file, then SYMBRIDGE_* environment variables, then overrides from the
// command line.
//
// Environment variables are spelled [EnvPrefix] + the key path upper-cased,
// with "__" between path segments, e.g. SYMBRIDGE_NATS__URL or
// SYMBRIDGE_BOT__PRIVATEKEY__PATH; they are matched to the known keys
// case-insensitively (see [EnvName], [Keys]). Lists are comma-separated there.
//
// String values in the file may use the BDK's placeholders ${NAME} and
// ${NAME:-default}, resolved from the environment given to [Load].
//
// [Load] fails on what it cannot parse (syntax, types, unknown keys in
// symbridge's sections or in the environment, unresolved placeholders in keys
// symbridge uses). Problems with values that parse, including key,
// certificate and trust-store files that are missing or unreadable, are
// reported by [Config.Validate], each naming its key, so that a caller can
// show a loaded configuration before refusing to run it. BDK keys symbridge
// does not use are listed in one entry of [Config.Warnings].
//
// The package never logs, never exits, and never puts a secret (private key,
// password, token) in an error or in [Config.String].
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// Config is symbridge's effective configuration, with units (time.Duration)
// and every default applied.
type Config struct {
	// Symphony servers, composed as in the BDK: scheme://host:port + context,
	// each component's own scheme/host/port/context overriding the global
	// ones. "" when no host is configured (Validate reports it).
	PodURL, AgentURL, KeyManagerURL, SessionAuthURL string

	// ProxyURL is the global HTTP proxy ("" = none), with its credentials in
	// the URL's user info: print it only through Redacted/String.
	ProxyURL string
	// Per-component proxies: the component's own proxy block, else ProxyURL.
	PodProxyURL, AgentProxyURL, KeyManagerProxyURL, SessionAuthProxyURL string

	Username string
	// PrivateKeyPEM is the bot's RSA key (PKCS#1 or PKCS#8 PEM), nil when
	// certificate authentication is configured instead.
	PrivateKeyPEM []byte
	// PrivateKeyPath is the file it came from ("" for inline content).
	PrivateKeyPath string
	// Certificate is the client certificate for certificate authentication.
	Certificate *tls.Certificate
	// TrustStore holds the system roots plus the configured trust store; nil
	// when none is configured (use the system roots).
	TrustStore *x509.CertPool
	// InsecureSkipVerify disables TLS verification of the Symphony servers
	// (ssl.insecureSkipVerify; the caller warns at each start).
	InsecureSkipVerify bool

	// ConnectTimeout and ReadTimeout apply to the Symphony HTTP client; the
	// agent block's own values win over the global ones.
	ConnectTimeout, ReadTimeout time.Duration

	Datafeed DatafeedConfig
	Datahose DatahoseConfig
	Bridge   BridgeConfig
	NATS     NATSConfig
	HTTP     HTTPConfig
	Log      LogConfig

	// Warnings to log at start-up: BDK keys symbridge ignores (one entry),
	// key files readable by others, a read timeout shorter than the long poll.
	Warnings []string

	problems       []error             // found by Load, reported by Validate
	endpoints      map[string]endpoint // which keys supplied each component URL
	rsaConfigured  bool                // a private key is configured (even if unreadable)
	certConfigured bool                // a certificate is configured (even if unreadable)
}

// DatafeedConfig is the BDK's datafeed block.
type DatafeedConfig struct {
	Version          string // "v2" or "v1"
	Tag              string
	IncludeInvisible bool
	IDFilePath       string
	Retry            symphony.RetryConfig
}

// DatahoseConfig is the BDK's datahose block.
type DatahoseConfig struct {
	Tag        string
	EventTypes []string
	Scopes     []string
	Retry      symphony.RetryConfig
}

// BridgeConfig is the read-publish-ack loop's configuration.
type BridgeConfig struct {
	Source         string // "datafeed" or "datahose"
	Pod            string // the {pod} subject token
	Subject        string // subject template
	DeadLetter     string // dead-letter subject template
	PublishTimeout time.Duration
	SlowRetry      time.Duration // wait between reads the Agent refuses (4xx)
	MaxPending     int
	Readers        int // most concurrent readers of one feed
	DedupeEntries  int
	MaxBodyBytes   int64
}

// NATSConfig is the JetStream side.
type NATSConfig struct {
	URL       string
	CredsFile string
	NKeyFile  string
	Token     string
	User      string
	Password  string
	// PingInterval: two unanswered pings mark the connection dead, so a
	// paused or cut-off server is noticed within about 2x this.
	PingInterval time.Duration
	TLS          NATSTLSConfig
	Stream       StreamConfig
	Embedded     EmbeddedConfig
}

// NATSTLSConfig configures TLS to the NATS servers.
type NATSTLSConfig struct {
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool
}

// StreamConfig is the JetStream stream symbridge creates or verifies.
type StreamConfig struct {
	Name       string
	Subjects   []string
	Duplicates time.Duration
	MaxAge     time.Duration // 0 = unlimited
	Replicas   int
	MaxMsgSize int32 // 0 = server default, -1 = unlimited
}

// EmbeddedConfig is the in-process nats-server.
type EmbeddedConfig struct {
	Enabled bool
	Dir     string
	Listen  string
}

// HTTPConfig is the health endpoint server.
type HTTPConfig struct {
	Listen string // "" disables
}

// LogConfig configures slog.
type LogConfig struct {
	Level  string // debug, info, warn, error
	Format string // text, json
}

// endpoint names the keys that supplied a component URL's parts, so that
// Validate can name the one to fix.
type endpoint struct{ scheme, host, port string }

// alternatives are key groups of which one is used: the highest layer
// (file < environment < overrides) that sets any of them wins as a whole, so
// SYMBRIDGE_BOT__PRIVATEKEY__CONTENT replaces a path in the file. Two set in
// the same layer is a problem, as in the BDK.
var alternatives = [][]string{
	{"bot.privateKey.path", "bot.privateKey.content", "bot.privateKeyPath", "bot.privateKeyContent"},
	{"bot.certificate.path", "bot.certificate.content", "bot.certificatePath", "bot.certificateContent"},
	{"ssl.trustStore.path", "ssl.trustStore.content", "ssl.trustStorePath"},
}

// Load reads the configuration file at path ("" = none), then the SYMBRIDGE_*
// variables of environ (pass os.Environ(); placeholders are resolved from it
// too), then overrides keyed by dotted key paths (from command-line flags;
// values may be strings or Go values). Call [Config.Validate] before use.
func Load(path string, environ []string, overrides map[string]any) (*Config, error) {
	envVars := envMap(environ)
	var errs []error

	fileLayer, unusedBDK, err := loadFile(path, envVars)
	if err != nil {
		return nil, err
	}
	envLayer, err := loadEnv(environ)
	if err != nil {
		errs = append(errs, err)
	}
	overLayer, err := loadOverrides(overrides)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	c := &Config{}
	layers := []map[string]any{fileLayer, envLayer, overLayer}
	merged := koanf.New(".")
	for _, l := range layers {
		if err := merged.Load(confmap.Provider(l, "."), nil); err != nil {
			return nil, fmt.Errorf("merge configuration: %w", err)
		}
	}
	c.resolveAlternatives(layers, merged)

	v := values{v: map[string]any{}, set: map[string]bool{}}
	for i := range defs {
		d := &defs[i]
		raw := merged.Get(d.key)
		if isUnset(d, raw) {
			if d.def == "" {
				continue
			}
			raw = d.def
		} else {
			v.set[d.key] = true
		}
		val, err := decodeValue(d, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v.v[d.key] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	c.build(v)
	if len(unusedBDK) > 0 {
		c.Warnings = append([]string{fmt.Sprintf(
			"ignoring BDK keys that do not concern symbridge: %s", strings.Join(unusedBDK, ", "))}, c.Warnings...)
	}
	return c, nil
}

// loadFile reads the file into a flat map of known keys, placeholders
// resolved. It returns the BDK keys symbridge does not use, sorted.
func loadFile(path string, envVars map[string]string) (map[string]any, []string, error) {
	out := map[string]any{}
	if path == "" {
		return out, nil, nil
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	var unused []string
	flat := k.All()
	keys := make([]string, 0, len(flat))
	for key := range flat {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		val := flat[key]
		d, known := defByKey[key]
		if !known {
			if prefixes[key] && (val == nil || isEmptyMap(val)) {
				continue // e.g. "pod:" with nothing under it
			}
			if symbridgeSections[section(key)] {
				if c, ok := canonicalKey(key); ok {
					errs = append(errs, fmt.Errorf("%s: unknown key (did you mean %s?)", key, c))
				} else {
					errs = append(errs, fmt.Errorf("%s: unknown key", key))
				}
				continue
			}
			unused = append(unused, key)
			continue
		}
		resolved, err := expandValue(val, envVars)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.key, err))
			continue
		}
		out[key] = resolved
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("config file %s: %w", path, errors.Join(errs...))
	}
	return out, unused, nil
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func expandValue(v any, envVars map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		return expandPlaceholders(x, envVars)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			s, ok := it.(string)
			if !ok {
				out[i] = it
				continue
			}
			r, err := expandPlaceholders(s, envVars)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// singleUnderscore maps a mistaken spelling with "_" between segments
// (SYMBRIDGE_NATS_URL) to the right one, for the error message.
var singleUnderscore = func() map[string]string {
	m := map[string]string{}
	for _, d := range defs {
		n := EnvName(d.key)
		if alt := strings.ReplaceAll(n[len(EnvPrefix):], "__", "_"); alt != n[len(EnvPrefix):] {
			m[EnvPrefix+alt] = n
		}
	}
	return m
}()

// loadEnv reads the SYMBRIDGE_* variables into a flat map of known keys.
// An unknown variable is an error: it is our namespace, and a typo would
// otherwise be silently ignored.
func loadEnv(environ []string) (map[string]any, error) {
	var errs []error
	seen := map[string]string{}
	k := koanf.New(".")
	p := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, val string) (string, any) {
			if name == ConfigFileEnv {
				return "", nil
			}
			path := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
			key, ok := canonicalKey(path)
			if !ok {
				if right, ok := singleUnderscore[name]; ok {
					errs = append(errs, fmt.Errorf("environment %s: unknown key (did you mean %s? path segments are separated by \"__\")", name, right))
				} else {
					errs = append(errs, fmt.Errorf("environment %s: unknown key %q", name, path))
				}
				return "", nil
			}
			if prev, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("environment %s and %s: both set %s", prev, name, key))
				return "", nil
			}
			seen[key] = name
			if isUnset(defByKey[key], val) {
				return "", nil // SYMBRIDGE_X= for a number or list: leave the file's value
			}
			return key, val
		},
	})
	if err := k.Load(p, nil); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k.All(), nil
}

// loadOverrides canonicalises the override keys (any case) and rejects
// unknown ones.
func loadOverrides(overrides map[string]any) (map[string]any, error) {
	out := map[string]any{}
	var errs []error
	keys := make([]string, 0, len(overrides))
	for key := range overrides {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c, ok := canonicalKey(key)
		if !ok {
			errs = append(errs, fmt.Errorf("override %s: unknown key", key))
			continue
		}
		val := overrides[key]
		if isUnset(defByKey[c], val) {
			continue
		}
		out[c] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Round-trip through koanf like the other layers, so that every layer
	// reaches the merge in the same flat shape.
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(out, "."), nil); err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	return k.All(), nil
}

func present(v any) bool {
	s, ok := v.(string)
	if ok {
		return strings.TrimSpace(s) != ""
	}
	return v != nil
}

// resolveAlternatives keeps, for each group of alternative keys, only those
// of the highest layer that sets any of them.
func (c *Config) resolveAlternatives(layers []map[string]any, merged *koanf.Koanf) {
	for _, group := range alternatives {
		win := -1
		for i, l := range layers {
			for _, key := range group {
				if present(l[key]) {
					win = i
				}
			}
		}
		if win < 0 {
			continue
		}
		var set []string
		for _, key := range group {
			if present(layers[win][key]) {
				set = append(set, key)
			} else {
				merged.Delete(key)
			}
		}
		if len(set) > 1 {
			c.problems = append(c.problems, fmt.Errorf("%s: set only one of them", strings.Join(set, ", ")))
		}
	}
}

// values holds the decoded keys; set tells which were configured rather
// than defaulted.
type values struct {
	v   map[string]any
	set map[string]bool
}

func (v values) s(k string) string {
	x, _ := v.v[k].(string)
	return x
}
func (v values) i(k string) int {
	x, _ := v.v[k].(int)
	return x
}
func (v values) i64(k string) int64 {
	x, _ := v.v[k].(int64)
	return x
}
func (v values) b(k string) bool {
	x, _ := v.v[k].(bool)
	return x
}
func (v values) f(k string) float64 {
	x, _ := v.v[k].(float64)
	return x
}
func (v values) d(k string) time.Duration {
	x, _ := v.v[k].(time.Duration)
	return x
}
func (v values) l(k string) []string {
	x, _ := v.v[k].([]string)
	return slices.Clone(x)
}

// first returns the first key among keys that is set and not blank, with
// its value untouched (inline PEM content keeps its final newline).
func (v values) first(keys ...string) (string, string) {
	for _, k := range keys {
		if v.set[k] && strings.TrimSpace(v.s(k)) != "" {
			return k, v.s(k)
		}
	}
	return "", ""
}

func (c *Config) build(v values) {
	c.buildSymphony(v)
	c.buildAuth(v)

	c.Datafeed = DatafeedConfig{
		Version:          strings.ToLower(strings.TrimSpace(v.s("datafeed.version"))),
		Tag:              v.s("datafeed.tag"),
		IncludeInvisible: v.b("datafeed.includeInvisible"),
		IDFilePath:       v.s("datafeed.idFilePath"),
		Retry:            retryConfig(v, "datafeed.retry"),
	}
	c.Datahose = DatahoseConfig{
		Tag:        v.s("datahose.tag"),
		EventTypes: upperAll(v.l("datahose.eventTypes")),
		Scopes:     upperAll(v.l("datahose.scopes")),
		Retry:      retryConfig(v, "datahose.retry"),
	}
	if !v.set["datahose.tag"] {
		// The BDK's derivation (Python: from bot.username; Java: the same name
		// read from the pod), truncated to the datahose limit.
		tag := "datahose"
		if c.Username != "" {
			tag += "-" + c.Username
		}
		c.Datahose.Tag = truncate(tag, maxDatahoseTag)
	}

	c.Bridge = BridgeConfig{
		Source:         strings.ToLower(strings.TrimSpace(v.s("bridge.source"))),
		Pod:            v.s("bridge.pod"),
		Subject:        v.s("bridge.subject"),
		DeadLetter:     v.s("bridge.deadLetter"),
		PublishTimeout: v.d("bridge.publishTimeout"),
		SlowRetry:      v.d("bridge.slowRetry"),
		MaxPending:     v.i("bridge.maxPending"),
		Readers:        v.i("bridge.readers"),
		DedupeEntries:  v.i("bridge.dedupeEntries"),
		MaxBodyBytes:   v.i64("bridge.maxBodyBytes"),
	}
	if !v.set["bridge.pod"] {
		c.Bridge.Pod = podToken(c.endpointHost(v, "pod"))
	}

	c.NATS = NATSConfig{
		URL:          strings.TrimSpace(v.s("nats.url")),
		CredsFile:    v.s("nats.credsFile"),
		NKeyFile:     v.s("nats.nkeyFile"),
		Token:        v.s("nats.token"),
		User:         v.s("nats.user"),
		Password:     v.s("nats.password"),
		PingInterval: v.d("nats.pingInterval"),
		TLS: NATSTLSConfig{
			CAFile: v.s("nats.tls.caFile"), CertFile: v.s("nats.tls.certFile"), KeyFile: v.s("nats.tls.keyFile"),
			InsecureSkipVerify: v.b("nats.tls.insecureSkipVerify"),
		},
		Stream: StreamConfig{
			Name:       v.s("nats.stream.name"),
			Subjects:   v.l("nats.stream.subjects"),
			Duplicates: v.d("nats.stream.duplicates"),
			MaxAge:     v.d("nats.stream.maxAge"),
			Replicas:   v.i("nats.stream.replicas"),
			MaxMsgSize: int32(v.i("nats.stream.maxMsgSize")),
		},
		Embedded: EmbeddedConfig{
			Enabled: v.b("nats.embedded.enabled"),
			Dir:     v.s("nats.embedded.dir"),
			Listen:  v.s("nats.embedded.listen"),
		},
	}
	c.HTTP = HTTPConfig{Listen: strings.TrimSpace(v.s("http.listen"))}
	c.Log = LogConfig{
		Level:  strings.ToLower(strings.TrimSpace(v.s("log.level"))),
		Format: strings.ToLower(strings.TrimSpace(v.s("log.format"))),
	}
}

const (
	maxDatahoseTag = 80  // V5EventsReadBody.tag
	maxDatafeedTag = 100 // V5DatafeedCreateBody.tag
	longPoll       = 30 * time.Second
)

func retryConfig(v values, prefix string) symphony.RetryConfig {
	return symphony.RetryConfig{
		MaxAttempts: v.i(prefix + ".maxAttempts"),
		Initial:     v.d(prefix + ".initialIntervalMillis"),
		Multiplier:  v.f(prefix + ".multiplier"),
		Max:         v.d(prefix + ".maxIntervalMillis"),
	}
}

func upperAll(in []string) []string {
	for i := range in {
		in[i] = strings.ToUpper(in[i])
	}
	return in
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// podToken derives the {pod} subject token from the pod host: its first
// label ("acme" for acme.symphony.com), or the whole address with dashes for
// an IP address.
func podToken(host string) string {
	if host == "" {
		return ""
	}
	if net.ParseIP(host) != nil {
		return strings.NewReplacer(".", "-", ":", "-").Replace(host)
	}
	label, _, _ := strings.Cut(host, ".")
	return label
}

func (c *Config) endpointHost(v values, comp string) string {
	_, h := v.first(comp+".host", "host")
	return strings.TrimSpace(h)
}

// buildSymphony composes the component URLs, proxies and timeouts with the
// BDK's inheritance: a component's own value, else the global one, else the
// default (https, port 443, no context).
func (c *Config) buildSymphony(v values) {
	c.endpoints = map[string]endpoint{}
	c.ProxyURL = c.proxyURL(v, "")
	for _, comp := range components {
		var ep endpoint
		var scheme, host string
		ep.scheme, scheme = v.first(comp.key+".scheme", "scheme")
		scheme = strings.TrimSpace(scheme)
		if ep.scheme == "" {
			ep.scheme, scheme = "scheme", v.s("scheme")
		}
		ep.host, host = v.first(comp.key+".host", "host")
		host = strings.TrimSpace(host)
		if ep.host == "" {
			ep.host = comp.key + ".host"
		}
		port := v.i("port")
		ep.port = "port"
		if v.set[comp.key+".port"] {
			port, ep.port = v.i(comp.key+".port"), comp.key+".port"
		}
		ctxPath := v.s("context")
		if v.set[comp.key+".context"] {
			ctxPath = v.s(comp.key + ".context")
		}
		c.endpoints[comp.key] = ep

		var u string
		if host != "" {
			if strings.ContainsAny(host, "/@?#") {
				c.problems = append(c.problems, fmt.Errorf("%s: must be a host name, without scheme or path, got %q", ep.host, host))
			}
			u = strings.ToLower(scheme) + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + normaliseContext(ctxPath)
		}
		proxy := c.proxyURL(v, comp.key+".")
		if proxy == "" {
			proxy = c.ProxyURL
		}
		switch comp.key {
		case "pod":
			c.PodURL, c.PodProxyURL = u, proxy
		case "agent":
			c.AgentURL, c.AgentProxyURL = u, proxy
		case "keyManager":
			c.KeyManagerURL, c.KeyManagerProxyURL = u, proxy
		case "sessionAuth":
			c.SessionAuthURL, c.SessionAuthProxyURL = u, proxy
		}
	}

	c.ConnectTimeout = v.d("connectionTimeout")
	if v.set["agent.connectionTimeout"] {
		c.ConnectTimeout = v.d("agent.connectionTimeout")
	}
	c.ReadTimeout = v.d("readTimeout")
	rtKey := "readTimeout"
	if v.set["agent.readTimeout"] {
		c.ReadTimeout, rtKey = v.d("agent.readTimeout"), "agent.readTimeout"
	}
	if c.ReadTimeout > 0 && c.ReadTimeout <= longPoll {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s: %s is not longer than the Agent's %s long poll; reads that wait for events will time out and be retried",
			rtKey, c.ReadTimeout, longPoll))
	}
	c.InsecureSkipVerify = v.b("ssl.insecureSkipVerify")
}

// proxyURL composes the proxy of one block (prefix "" = global), user info
// included; "" when the block has no proxy host.
func (c *Config) proxyURL(v values, prefix string) string {
	_, host := v.first(prefix + "proxy.host")
	host = strings.TrimSpace(host)
	if host == "" {
		return ""
	}
	if !v.set[prefix+"proxy.port"] {
		c.problems = append(c.problems, fmt.Errorf("%sproxy.port: required when %sproxy.host is set", prefix, prefix))
		return ""
	}
	port := v.i(prefix + "proxy.port")
	if port < 1 || port > 65535 {
		c.problems = append(c.problems, fmt.Errorf("%sproxy.port: must be between 1 and 65535, got %d", prefix, port))
		return ""
	}
	u := "http://"
	if user := v.s(prefix + "proxy.username"); user != "" {
		u += userInfo(user, v.s(prefix+"proxy.password")) + "@"
	}
	return u + net.JoinHostPort(host, strconv.Itoa(port))
}

// normaliseContext gives a context path a leading '/' and no trailing '/'
// ("" and "/" both mean none).
func normaliseContext(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "/")
	if s == "" {
		return ""
	}
	return "/" + s
}

// buildAuth reads the bot's key or certificate and the trust store. File
// problems are recorded for Validate, so that Load still returns what it
// parsed.
func (c *Config) buildAuth(v values) {
	c.Username = strings.TrimSpace(v.s("bot.username"))

	if key, val := v.first("bot.privateKey.path", "bot.privateKeyPath"); key != "" {
		c.rsaConfigured = true
		c.PrivateKeyPath = val
		data, err := os.ReadFile(val)
		if err != nil {
			c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
		} else {
			c.PrivateKeyPEM = data
			c.warnPermissions(key, val)
			if err := checkRSAPrivateKeyPEM(data); err != nil {
				c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
			}
		}
	} else if key, val := v.first("bot.privateKey.content", "bot.privateKeyContent"); key != "" {
		c.rsaConfigured = true
		pemBytes, err := privateKeyContentPEM(val)
		if err != nil {
			c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
		} else {
			c.PrivateKeyPEM = pemBytes
		}
	}

	passKey, pass := "bot.certificate.password", v.s("bot.certificate.password")
	if !v.set[passKey] && v.set["bot.certificatePassword"] {
		passKey, pass = "bot.certificatePassword", v.s("bot.certificatePassword")
	}
	if key, val := v.first("bot.certificate.path", "bot.certificatePath"); key != "" {
		c.certConfigured = true
		data, err := os.ReadFile(val)
		if err != nil {
			c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
		} else {
			c.warnPermissions(key, val)
			c.setCertificate(data, pass, key, passKey)
		}
	} else if key, val := v.first("bot.certificate.content", "bot.certificateContent"); key != "" {
		c.certConfigured = true
		c.setCertificate(decodeContent(val), pass, key, passKey)
	}

	passKey, pass = "ssl.trustStore.password", v.s("ssl.trustStore.password")
	if !v.set[passKey] && v.set["ssl.trustStorePassword"] {
		passKey, pass = "ssl.trustStorePassword", v.s("ssl.trustStorePassword")
	}
	var data []byte
	var tsKey string
	if key, val := v.first("ssl.trustStore.path", "ssl.trustStorePath"); key != "" {
		tsKey = key
		var err error
		if data, err = os.ReadFile(val); err != nil {
			c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
			data = nil
		}
	} else if key, val := v.first("ssl.trustStore.content"); key != "" {
		tsKey, data = key, decodeContent(val)
	}
	if data != nil {
		certs, err := parseTrustStore(data, pass)
		switch {
		case errors.Is(err, errTrustStorePassword):
			c.problems = append(c.problems, fmt.Errorf("%s: %w", passKey, err))
		case err != nil:
			c.problems = append(c.problems, fmt.Errorf("%s: %w", tsKey, err))
		default:
			c.TrustStore = certPool(certs)
		}
	}
}

func (c *Config) setCertificate(data []byte, password, key, passKey string) {
	cert, err := parseCertificate(data, password)
	switch {
	case errors.Is(err, errCertificatePassword):
		c.problems = append(c.problems, fmt.Errorf("%s: %w", passKey, err))
	case err != nil:
		c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
	default:
		c.Certificate = cert
	}
}

// warnPermissions flags a secret file readable by group or others: not an
// error (a container may mount it so on purpose) but worth a line at start.
func (c *Config) warnPermissions(key, path string) {
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s: %s is readable by group or others (mode %#o); restrict it with chmod 600", key, path, mode))
	}
}

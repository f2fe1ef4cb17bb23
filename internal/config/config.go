// Package config loads symbridge's configuration: a team's existing Symphony
// BDK config.yaml (which must work unchanged) plus symbridge's own sections
// (bridge, nats, http, log, runtime), in three layers with koanf: the YAML (or JSON)
// file, then SYMBRIDGE_* environment variables, then overrides from the
// command line.
//
// The file is decoded with koanf into tagged structs (see [fileKeys]) whose
// tags also document every key ([Keys]).
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
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/symbridge/symbridge/internal/dedupe"
)

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
	fileLayer, unusedBDK, err := loadFile(path, envMap(environ))
	if err != nil {
		return nil, err
	}
	envLayer, envErr := loadEnv(environ)
	overLayer, overErr := loadOverrides(overrides)
	if err := errors.Join(envErr, overErr); err != nil {
		return nil, err
	}

	c := &Config{}
	layers := []map[string]any{fileLayer, envLayer, overLayer}
	c.resolveAlternatives(layers)
	set := map[string]any{} // what the layers set, later layers winning
	for _, l := range layers {
		maps.Copy(set, l)
	}
	all := map[string]any{}
	for _, d := range defs {
		if d.Default != "" {
			all[d.Key] = d.Default
		}
	}
	maps.Copy(all, set)
	merged := koanf.New(".")
	if err := merged.Load(confmap.Provider(all, "."), nil); err != nil {
		return nil, fmt.Errorf("merge configuration: %w", err)
	}
	var f fileKeys
	if err := merged.UnmarshalWithConf("", &f, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: decodeHook, ErrorUnused: true, MatchName: func(a, b string) bool { return a == b },
	}}); err != nil {
		return nil, errors.Join(keyErrors(err)...)
	}

	c.build(&f, func(k string) bool { _, ok := set[k]; return ok })
	if len(unusedBDK) > 0 {
		c.Warnings = append([]string{fmt.Sprintf(
			"ignoring BDK keys that do not concern symbridge: %s", strings.Join(unusedBDK, ", "))}, c.Warnings...)
	}
	for key := range fileLayer {
		if defByKey[key].Secret {
			c.warnPermissions("config file", path) // it holds a secret
			break
		}
	}
	return c, nil
}

// keyErrors turns mapstructure's errors into "key: must be ..." ones.
func keyErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, keyErrors(e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return []error{fmt.Errorf("%s: %w", de.Name(), de.Unwrap())}
	}
	return []error{err}
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
	for _, key := range sortedKeys(flat) {
		val := flat[key]
		switch _, known := defByKey[key]; {
		case !known && prefixes[key] && (val == nil || isEmptyMap(val)):
			continue // e.g. "pod:" with nothing under it
		case !known && symbridgeSections[section(key)]:
			if c, ok := canonicalKey(key); ok {
				errs = append(errs, fmt.Errorf("%s: unknown key (did you mean %s?)", key, c))
			} else {
				errs = append(errs, fmt.Errorf("%s: unknown key", key))
			}
		case !known:
			unused = append(unused, key)
		case isUnset(key, val):
		default:
			resolved, err := expandValue(val, envVars)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				continue
			}
			out[key] = resolved
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("config file %s: %w", path, errors.Join(errs...))
	}
	return out, unused, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
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
		if alt := strings.ReplaceAll(d.Env, "__", "_"); alt != d.Env {
			m[alt] = d.Env
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
			switch {
			case !ok && singleUnderscore[name] != "":
				errs = append(errs, fmt.Errorf("environment %s: unknown key (did you mean %s? path segments are separated by \"__\")", name, singleUnderscore[name]))
			case !ok:
				errs = append(errs, fmt.Errorf("environment %s: unknown key %q", name, path))
			case seen[key] != "":
				errs = append(errs, fmt.Errorf("environment %s and %s: both set %s", seen[key], name, key))
			case isUnset(key, val): // SYMBRIDGE_X= for a number or list: leave the file's value
				seen[key] = name
			default:
				seen[key] = name
				return key, val
			}
			return "", nil
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
	for _, key := range sortedKeys(overrides) {
		c, ok := canonicalKey(key)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("override %s: unknown key", key))
		case !isUnset(c, overrides[key]):
			out[c] = overrides[key]
		}
	}
	return out, errors.Join(errs...)
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
func (c *Config) resolveAlternatives(layers []map[string]any) {
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
				continue
			}
			for _, l := range layers {
				delete(l, key)
			}
		}
		if len(set) > 1 {
			c.problems = append(c.problems, fmt.Errorf("%s: set only one of them", strings.Join(set, ", ")))
		}
	}
}

const (
	maxDatahoseTag = 80  // V5EventsReadBody.tag
	maxDatafeedTag = 100 // V5DatafeedCreateBody.tag
	longPoll       = 30 * time.Second
	// baseMemory is the soft memory limit's share for the runtime, NATS
	// client buffers and messages in flight; reads in flight
	// (bridge.maxBodyBytes each) and the dedupe set come on top of it.
	baseMemory = 32 << 20
)

// build turns the decoded file into the effective configuration: derived
// defaults, the BDK's inheritance, key and certificate files read. set
// tells which keys a layer set (rather than a default).
func (c *Config) build(f *fileKeys, set func(string) bool) {
	c.Username = strings.TrimSpace(f.Bot.Username)
	c.buildSymphony(f, set)
	c.buildAuth(f, set)

	c.Datafeed = f.Datafeed.DatafeedConfig
	c.Datafeed.Version = strings.ToLower(strings.TrimSpace(c.Datafeed.Version))
	c.Datafeed.Retry = f.Datafeed.Retry.config()
	c.Datahose = f.Datahose.DatahoseConfig
	c.Datahose.EventTypes = upperAll(c.Datahose.EventTypes)
	c.Datahose.Scopes = upperAll(c.Datahose.Scopes)
	c.Datahose.Retry = f.Datahose.Retry.config()
	if !set("datahose.tag") {
		// The BDK's derivation (Python: from bot.username; Java: the same name
		// read from the pod), truncated to the datahose limit.
		tag := "datahose"
		if c.Username != "" {
			tag += "-" + c.Username
		}
		c.Datahose.Tag = tag[:min(len(tag), maxDatahoseTag)]
	}

	c.Bridge = f.Bridge
	c.Bridge.Source = strings.ToLower(strings.TrimSpace(c.Bridge.Source))
	if !set("bridge.pod") {
		_, host := first("pod.host", f.Pod.Host, "host", f.Host)
		c.Bridge.Pod = podToken(strings.TrimSpace(host))
	}
	c.NATS = f.NATS
	c.NATS.URL = strings.TrimSpace(c.NATS.URL)
	if key, path := first("nats.credsFile", c.NATS.CredsFile, "nats.nkeyFile", c.NATS.NKeyFile); key != "" {
		c.warnPermissions(key, path) // both set is a problem Validate reports
	}
	c.HTTP.Listen = strings.TrimSpace(f.HTTP.Listen)
	c.Log = LogConfig{Level: strings.ToLower(strings.TrimSpace(f.Log.Level)), Format: strings.ToLower(strings.TrimSpace(f.Log.Format))}

	c.Runtime = f.Runtime
	floor := c.MinMemoryLimit()
	if c.NATS.Embedded.Enabled && !set("runtime.maxProcs") {
		c.Runtime.MaxProcs = 0 // JetStream in the same process needs the CPUs
	}
	switch {
	case set("runtime.memoryLimit") && c.Runtime.MemoryLimit < floor:
		c.problems = append(c.problems, fmt.Errorf(
			"runtime.memoryLimit: must be at least %d (32 MiB + bridge.maxBodyBytes × bridge.readers + the dedupe set of bridge.dedupeEntries), got %d",
			floor, c.Runtime.MemoryLimit))
	case !set("runtime.memoryLimit") && !c.NATS.Embedded.Enabled:
		// Without a limit with the embedded nats-server, whose memory (the
		// stream's cache) this budget does not cover.
		c.Runtime.MemoryLimit = floor
	}
}

// MinMemoryLimit is the least soft memory limit the configuration runs in:
// [baseMemory], plus bridge.readers reads of bridge.maxBodyBytes in flight,
// plus the dedupe set full (its size per entry is internal/dedupe's, which
// measures it against the heap: dedupe.FullBytes).
func (c *Config) MinMemoryLimit() int64 {
	reads := int64(max(c.Bridge.Readers, 1))
	if c.Bridge.MaxBodyBytes > (math.MaxInt64-(1<<40))/reads {
		return math.MaxInt64 // absurd but accepted sizes: no finite floor
	}
	n := baseMemory + reads*max(c.Bridge.MaxBodyBytes, 0)
	if c.Bridge.DedupeEntries > 0 {
		n += dedupe.FullBytes(c.Bridge.DedupeEntries)
	}
	return n
}

func upperAll(in []string) []string {
	for i := range in {
		in[i] = strings.ToUpper(in[i])
	}
	return in
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

// buildSymphony composes the component URLs, proxies and timeouts with the
// BDK's inheritance: a component's own value, else the global one, else the
// default (https, port 443, no context).
func (c *Config) buildSymphony(f *fileKeys, set func(string) bool) {
	c.endpoints = map[string]endpoint{}
	c.ProxyURL = c.proxyURL("", f.Proxy, set)
	for _, comp := range []struct {
		key        string
		keys       *serverKeys
		url, proxy *string
	}{
		{"pod", &f.Pod, &c.PodURL, &c.PodProxyURL},
		{"agent", &f.Agent.serverKeys, &c.AgentURL, &c.AgentProxyURL},
		{"keyManager", &f.KeyManager, &c.KeyManagerURL, &c.KeyManagerProxyURL},
		{"sessionAuth", &f.SessionAuth, &c.SessionAuthURL, &c.SessionAuthProxyURL},
	} {
		k := comp.keys
		ep := endpoint{scheme: "scheme", host: comp.key + ".host", port: "port"}
		scheme, host, port, ctxPath := strings.TrimSpace(f.Scheme), strings.TrimSpace(f.Host), f.Port, f.Context
		if s := strings.TrimSpace(k.Scheme); s != "" {
			ep.scheme, scheme = comp.key+".scheme", s
		}
		if h := strings.TrimSpace(k.Host); h != "" {
			ep.host, host = comp.key+".host", h
		} else if host != "" {
			ep.host = "host"
		}
		if set(comp.key + ".port") {
			ep.port, port = comp.key+".port", k.Port
		}
		if set(comp.key + ".context") {
			ctxPath = k.Context
		}
		c.endpoints[comp.key] = ep
		if host != "" {
			if strings.ContainsAny(host, "/@?#") {
				c.problems = append(c.problems, fmt.Errorf("%s: must be a host name, without scheme or path, got %q", ep.host, host))
			}
			*comp.url = strings.ToLower(scheme) + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + normaliseContext(ctxPath)
		}
		if *comp.proxy = c.proxyURL(comp.key+".", k.Proxy, set); *comp.proxy == "" {
			*comp.proxy = c.ProxyURL
		}
	}

	c.ConnectTimeout, c.ReadTimeout = time.Duration(f.ConnectionTimeout), time.Duration(f.ReadTimeout)
	if set("agent.connectionTimeout") {
		c.ConnectTimeout = time.Duration(f.Agent.ConnectionTimeout)
	}
	rtKey := "readTimeout"
	if set("agent.readTimeout") {
		c.ReadTimeout, rtKey = time.Duration(f.Agent.ReadTimeout), "agent.readTimeout"
	}
	if c.ReadTimeout > 0 && c.ReadTimeout <= longPoll {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s: %s is not longer than the Agent's %s long poll; reads that wait for events will time out and be retried",
			rtKey, c.ReadTimeout, longPoll))
	}
	c.InsecureSkipVerify = f.SSL.InsecureSkipVerify
}

// proxyURL composes the proxy of one block (prefix "" = global), user info
// included; "" when the block has no proxy host.
func (c *Config) proxyURL(prefix string, p proxyKeys, set func(string) bool) string {
	host := strings.TrimSpace(p.Host)
	switch {
	case host == "":
		return ""
	case !set(prefix + "proxy.port"):
		c.problems = append(c.problems, fmt.Errorf("%sproxy.port: required when %sproxy.host is set", prefix, prefix))
		return ""
	case p.Port < 1 || p.Port > 65535:
		c.problems = append(c.problems, fmt.Errorf("%sproxy.port: must be between 1 and 65535, got %d", prefix, p.Port))
		return ""
	}
	u := "http://"
	if p.Username != "" {
		u += userInfo(p.Username, p.Password.Reveal()) + "@"
	}
	return u + net.JoinHostPort(host, strconv.Itoa(p.Port))
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

// first returns the first of the key/value pairs whose value is not blank,
// the value untouched (inline PEM content keeps its final newline).
func first(kv ...string) (key, val string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.TrimSpace(kv[i+1]) != "" {
			return kv[i], kv[i+1]
		}
	}
	return "", ""
}

// buildAuth reads the bot's key or certificate and the trust store. File
// problems are recorded for Validate, so that Load still returns what it
// parsed.
func (c *Config) buildAuth(f *fileKeys, set func(string) bool) {
	b, ts := &f.Bot, &f.SSL.TrustStore
	if key, val := first("bot.privateKey.path", b.PrivateKey.Path, "bot.privateKeyPath", b.PrivateKeyPath); key != "" {
		c.rsaConfigured, c.PrivateKeyPath = true, val
		if data := c.readFile(key, val, true); data != nil {
			c.PrivateKeyPEM = data
			c.problem(key, checkRSAPrivateKeyPEM(data))
		}
	} else if key, val := first("bot.privateKey.content", b.PrivateKey.Content.Reveal(), "bot.privateKeyContent", b.PrivateKeyContent.Reveal()); key != "" {
		c.rsaConfigured = true
		pemBytes, err := privateKeyContentPEM(val)
		c.PrivateKeyPEM = pemBytes
		c.problem(key, err)
	}

	passKey, pass := "bot.certificate.password", b.Certificate.Password.Reveal()
	if !set(passKey) && set("bot.certificatePassword") {
		passKey, pass = "bot.certificatePassword", b.CertificatePassword.Reveal()
	}
	if key, val := first("bot.certificate.path", b.Certificate.Path, "bot.certificatePath", b.CertificatePath); key != "" {
		c.certConfigured = true
		if data := c.readFile(key, val, true); data != nil {
			c.setCertificate(data, pass, key, passKey)
		}
	} else if key, val := first("bot.certificate.content", b.Certificate.Content.Reveal(), "bot.certificateContent", b.CertificateContent.Reveal()); key != "" {
		c.certConfigured = true
		c.setCertificate(decodeContent(val), pass, key, passKey)
	}

	passKey, pass = "ssl.trustStore.password", ts.Password.Reveal()
	if !set(passKey) && set("ssl.trustStorePassword") {
		passKey, pass = "ssl.trustStorePassword", f.SSL.TrustStorePassword.Reveal()
	}
	var data []byte
	tsKey, val := first("ssl.trustStore.path", ts.Path, "ssl.trustStorePath", f.SSL.TrustStorePath)
	if tsKey != "" {
		data = c.readFile(tsKey, val, false)
	} else if tsKey, val = first("ssl.trustStore.content", ts.Content); tsKey != "" {
		data = decodeContent(val)
	}
	if data != nil {
		certs, err := parseTrustStore(data, pass)
		switch {
		case errors.Is(err, errTrustStorePassword):
			c.problem(passKey, err)
		case err != nil:
			c.problem(tsKey, err)
		default:
			c.TrustStore = certPool(certs)
		}
	}
}

// problem records err (if any) for Validate, naming key.
func (c *Config) problem(key string, err error) {
	if err != nil {
		c.problems = append(c.problems, fmt.Errorf("%s: %w", key, err))
	}
}

// readFile reads the file a key names: nil and a problem when it cannot;
// a secret file is checked for its permissions.
func (c *Config) readFile(key, path string, secret bool) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		c.problem(key, err)
		return nil
	}
	if secret {
		c.warnPermissions(key, path)
	}
	return data
}

func (c *Config) setCertificate(data []byte, password, key, passKey string) {
	cert, err := parseCertificate(data, password)
	switch {
	case errors.Is(err, errCertificatePassword):
		c.problem(passKey, err)
	case err != nil:
		c.problem(key, err)
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

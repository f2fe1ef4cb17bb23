package config

import (
	"strings"
)

// EnvPrefix starts every environment variable symbridge reads.
const EnvPrefix = "SYMBRIDGE_"

// ConfigFileEnv is reserved for the command line to name the configuration
// file; [Load] ignores it instead of rejecting it as an unknown key.
const ConfigFileEnv = EnvPrefix + "CONFIG"

// KeyDoc documents one configuration key: its dotted path (as in the YAML
// file and in flag overrides), its environment spelling, its type, its default
// and what it does. [Keys] is the single place defaults are written: [Load]
// parses Default with the same code that parses a value from the file.
type KeyDoc struct {
	Key         string // dotted koanf path, e.g. "nats.stream.maxAge"
	Env         string // e.g. "SYMBRIDGE_NATS__STREAM__MAXAGE"
	Type        string // string, int, bool, float, duration, milliseconds, list
	Default     string // as it would be written in the file; "" = none or derived (see Description)
	Description string
	Secret      bool // never printed, never echoed in errors
}

type kind int

const (
	kString   kind = iota
	kInt           // int
	kInt64         // int64 (byte counts)
	kBool          // bool
	kFloat         // float64
	kDuration      // Go duration string: "5s", "35m"
	kMillis        // BDK integer milliseconds, converted to time.Duration
	kList          // YAML list or comma-separated string
)

func (k kind) String() string {
	switch k {
	case kInt, kInt64:
		return "int"
	case kBool:
		return "bool"
	case kFloat:
		return "float"
	case kDuration:
		return "duration"
	case kMillis:
		return "milliseconds"
	case kList:
		return "list"
	}
	return "string"
}

type keyDef struct {
	key, def, desc string
	kind           kind
	secret         bool
}

// components are the BDK's per-client server blocks; unset fields inherit the
// global scheme/host/port/context/proxy, as in the BDK.
var components = []struct{ key, what string }{
	{"pod", "pod (authentication, /login and /pod)"},
	{"agent", "Agent (the feeds)"},
	{"keyManager", "key manager (RSA /relay, certificate /keyauth)"},
	{"sessionAuth", "session authentication for certificate auth (/sessionauth)"},
}

// symbridgeSections are symbridge's own: an unknown key there is an error.
// Every other top-level key belongs to the BDK's file and is only warned about.
var symbridgeSections = map[string]bool{"bridge": true, "nats": true, "http": true, "log": true}

func retryKeys(prefix string) []keyDef {
	return []keyDef{
		{key: prefix + ".maxAttempts", kind: kInt, def: "-1", desc: "attempts before giving up on a failing read; -1 = forever; when a finite number runs out symbridge exits non-zero"},
		{key: prefix + ".initialIntervalMillis", kind: kMillis, def: "500", desc: "first backoff wait, in milliseconds (BDK key)"},
		{key: prefix + ".multiplier", kind: kFloat, def: "2", desc: "backoff growth factor"},
		{key: prefix + ".maxIntervalMillis", kind: kMillis, def: "300000", desc: "longest backoff wait, in milliseconds (BDK key)"},
	}
}

func proxyKeys(prefix, scope string) []keyDef {
	return []keyDef{
		{key: prefix + "proxy.host", desc: "HTTP proxy host for " + scope},
		{key: prefix + "proxy.port", kind: kInt, desc: "HTTP proxy port for " + scope + " (required with proxy.host)"},
		{key: prefix + "proxy.username", desc: "HTTP proxy user for " + scope},
		{key: prefix + "proxy.password", secret: true, desc: "HTTP proxy password for " + scope},
	}
}

// defs lists every key symbridge reads, in documentation order.
var defs = func() []keyDef {
	d := []keyDef{
		{key: "scheme", def: "https", desc: "global scheme of the Symphony servers: https or http (simulators)"},
		{key: "host", desc: "global host of the Symphony servers (pod, agent, key manager, session auth inherit it)"},
		{key: "port", kind: kInt, def: "443", desc: "global port (443 whatever the scheme, as in the BDK)"},
		{key: "context", desc: "global context path, e.g. /pod-context (normalised to a leading '/', no trailing '/')"},
	}
	d = append(d, proxyKeys("", "every Symphony server")...)
	d = append(d,
		keyDef{key: "connectionTimeout", kind: kMillis, def: "15000", desc: "TCP/TLS connect timeout, in milliseconds (BDK key)"},
		keyDef{key: "readTimeout", kind: kMillis, def: "60000", desc: "HTTP read timeout, in milliseconds (BDK key); must exceed the Agent's 30 s long poll"},
	)
	for _, c := range components {
		d = append(d,
			keyDef{key: c.key + ".scheme", desc: "scheme of the " + c.what + "; default: the global scheme"},
			keyDef{key: c.key + ".host", desc: "host of the " + c.what + "; default: the global host"},
			keyDef{key: c.key + ".port", kind: kInt, desc: "port of the " + c.what + "; default: the global port"},
			keyDef{key: c.key + ".context", desc: "context path of the " + c.what + "; default: the global context"},
		)
		d = append(d, proxyKeys(c.key+".", "the "+c.what+"; default: the global proxy")...)
	}
	d = append(d,
		keyDef{key: "agent.connectionTimeout", kind: kMillis, desc: "connect timeout for the Agent, in milliseconds; default: connectionTimeout"},
		keyDef{key: "agent.readTimeout", kind: kMillis, desc: "read timeout for the Agent, in milliseconds; default: readTimeout"},

		keyDef{key: "bot.username", desc: "service account username (the JWT subject)"},
		keyDef{key: "bot.privateKey.path", desc: "RSA private key file, PKCS#1 or PKCS#8 PEM"},
		keyDef{key: "bot.privateKey.content", secret: true, desc: "RSA private key, PEM text"},
		keyDef{key: "bot.privateKeyPath", desc: "deprecated BDK spelling of bot.privateKey.path"},
		keyDef{key: "bot.privateKeyContent", secret: true, desc: "deprecated BDK spelling of bot.privateKey.content"},
		keyDef{key: "bot.certificate.path", desc: "client certificate for certificate authentication: PKCS#12 (or PEM with certificate and key)"},
		keyDef{key: "bot.certificate.content", secret: true, desc: "client certificate content: base64 of the PKCS#12 file (as the BDK's byte[]) or PEM text"},
		keyDef{key: "bot.certificate.password", secret: true, desc: "password of the PKCS#12 client certificate"},
		keyDef{key: "bot.certificatePath", desc: "deprecated BDK spelling of bot.certificate.path"},
		keyDef{key: "bot.certificateContent", secret: true, desc: "deprecated BDK spelling of bot.certificate.content"},
		keyDef{key: "bot.certificatePassword", secret: true, desc: "deprecated BDK spelling of bot.certificate.password"},

		keyDef{key: "ssl.trustStore.path", desc: "extra trusted CAs, added to the system roots: PEM bundle, PKCS#12 or JKS"},
		keyDef{key: "ssl.trustStore.content", desc: "trust store content: PEM text, or base64 of a PKCS#12/JKS file"},
		keyDef{key: "ssl.trustStore.password", secret: true, desc: "trust store password (PKCS#12, JKS)"},
		keyDef{key: "ssl.trustStorePath", desc: "deprecated BDK spelling of ssl.trustStore.path"},
		keyDef{key: "ssl.trustStorePassword", secret: true, desc: "deprecated BDK spelling of ssl.trustStore.password"},
		keyDef{key: "ssl.insecureSkipVerify", kind: kBool, def: "false", desc: "symbridge key: do not verify the Symphony servers' TLS certificates (tests only; warned at each start)"},

		keyDef{key: "datafeed.version", def: "v2", desc: "v2, or v1 for old Agents (at-most-once: a v1 read removes the events)"},
		keyDef{key: "datafeed.tag", def: "symbridge", desc: "tag of symbridge's own datafeed v2, so that it never shares (and splits) the team bot's feed; at most 100 characters"},
		keyDef{key: "datafeed.includeInvisible", kind: kBool, def: "false", desc: "create the feed with includeInvisible (Agent 26.2.1+)"},
		keyDef{key: "datafeed.idFilePath", def: "./", desc: "directory (or file) of the v1 datafeed.id file"},
	)
	d = append(d, retryKeys("datafeed.retry")...)
	d = append(d,
		keyDef{key: "datahose.tag", desc: "datahose feed tag, 1-80 characters; default: datahose-<bot.username>"},
		keyDef{key: "datahose.eventTypes", kind: kList, desc: "event types to read, e.g. MESSAGESENT,ROOMCREATED; required when bridge.source is datahose"},
		keyDef{key: "datahose.scopes", kind: kList, desc: "optional scopes: INTERNAL, EXTERNAL, FEDERATED (omitted = all)"},
	)
	d = append(d, retryKeys("datahose.retry")...)
	d = append(d,
		keyDef{key: "bridge.source", def: "datafeed", desc: "datafeed (datafeed.version decides v2 or v1) or datahose"},
		keyDef{key: "bridge.pod", desc: "the {pod} subject token; default: the first label of the pod host"},
		keyDef{key: "bridge.subject", def: "symphony.{pod}.{eventType}.{streamType}", desc: "subject template"},
		keyDef{key: "bridge.deadLetter", def: "symphony.{pod}._invalid", desc: "subject template for events that cannot be mapped or stored"},
		keyDef{key: "bridge.publishTimeout", kind: kDuration, def: "5s", desc: "how long one JetStream publish-ack may take before the publish is retried"},
		keyDef{key: "bridge.slowRetry", kind: kDuration, def: "30s", desc: "wait between reads while the Agent refuses them (403, 404, other 4xx): never a busy loop, never a silent stop; /readyz fails meanwhile"},
		keyDef{key: "bridge.maxPending", kind: kInt, def: "4096", desc: "most asynchronous publishes awaiting their ack"},
		keyDef{key: "bridge.readers", kind: kInt, def: "2", desc: "most concurrent readers of the datafeed v2, each with its own ackId chain; added only while reads come back full (100 events), retired when the feed is drained; events of different batches are then stored in no particular order (1 = strictly sequential)"},
		keyDef{key: "bridge.dedupeEntries", kind: kInt, def: "262144", desc: "Msg-Ids remembered to skip redeliveries (0 disables; JetStream's duplicate window is the guarantee)"},
		keyDef{key: "bridge.maxBodyBytes", kind: kInt64, def: "67108864", desc: "largest Agent response body accepted, in bytes (64 MiB)"},

		keyDef{key: "nats.url", desc: "NATS server URL(s), comma-separated; required unless nats.embedded.enabled"},
		keyDef{key: "nats.credsFile", desc: "NATS credentials (.creds) file"},
		keyDef{key: "nats.nkeyFile", desc: "NATS NKey seed file"},
		keyDef{key: "nats.token", secret: true, desc: "NATS token"},
		keyDef{key: "nats.user", desc: "NATS user"},
		keyDef{key: "nats.password", secret: true, desc: "NATS password"},
		keyDef{key: "nats.pingInterval", kind: kDuration, def: "10s", desc: "how often the NATS connection is pinged; two unanswered pings mark it dead (a paused or cut-off server sends no TCP reset)"},
		keyDef{key: "nats.tls.caFile", desc: "CA bundle (PEM) to verify the NATS server"},
		keyDef{key: "nats.tls.certFile", desc: "client certificate (PEM) for NATS mutual TLS"},
		keyDef{key: "nats.tls.keyFile", desc: "client key (PEM) for NATS mutual TLS"},
		keyDef{key: "nats.tls.insecureSkipVerify", kind: kBool, def: "false", desc: "do not verify the NATS server certificate (tests only)"},
		keyDef{key: "nats.stream.name", def: "SYMPHONY", desc: "JetStream stream, created when missing"},
		keyDef{key: "nats.stream.subjects", kind: kList, def: "symphony.>", desc: "subjects of the stream when symbridge creates it; an existing stream must cover the bridge's subjects"},
		keyDef{key: "nats.stream.duplicates", kind: kDuration, def: "35m", desc: "duplicate window; covers the feed's 30-minute life"},
		keyDef{key: "nats.stream.maxAge", kind: kDuration, def: "168h", desc: "message retention (0 = unlimited)"},
		keyDef{key: "nats.stream.replicas", kind: kInt, def: "1", desc: "stream replicas, 1 to 5"},
		keyDef{key: "nats.stream.maxMsgSize", kind: kInt, def: "0", desc: "largest message the stream accepts, in bytes (0 = server default, -1 = unlimited)"},
		keyDef{key: "nats.embedded.enabled", kind: kBool, def: "false", desc: "run an in-process nats-server instead of connecting to nats.url (one unreplicated disk)"},
		keyDef{key: "nats.embedded.dir", def: "./symbridge-data", desc: "data directory of the embedded server"},
		keyDef{key: "nats.embedded.listen", def: "127.0.0.1:4222", desc: "listen address of the embedded server"},

		keyDef{key: "http.listen", def: ":8080", desc: "address of /healthz and /readyz; empty disables"},
		keyDef{key: "log.level", def: "info", desc: "debug, info, warn or error"},
		keyDef{key: "log.format", def: "text", desc: "text or json"},
	)
	return d
}()

var (
	defByKey   = map[string]*keyDef{}
	keyByLower = map[string]string{} // lower-cased path -> canonical path
	prefixes   = map[string]bool{}   // every proper prefix of a known key ("bot", "bot.privateKey")
)

func init() {
	for i := range defs {
		k := defs[i].key
		defByKey[k] = &defs[i]
		keyByLower[strings.ToLower(k)] = k
		for j := range k {
			if k[j] == '.' {
				prefixes[k[:j]] = true
			}
		}
	}
}

// EnvName is the environment spelling of a key: the prefix, then the path
// upper-cased with each '.' written "__" ("nats.stream.maxAge" ->
// "SYMBRIDGE_NATS__STREAM__MAXAGE"). camelCase boundaries are not marked, so
// the mapping back is made by matching the known keys case-insensitively:
// unambiguous because no two keys differ only in case.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// Keys returns the documentation of every key symbridge reads, in a stable
// order, for the command line to print and the README to document.
func Keys() []KeyDoc {
	out := make([]KeyDoc, 0, len(defs))
	for _, d := range defs {
		out = append(out, KeyDoc{
			Key: d.key, Env: EnvName(d.key), Type: d.kind.String(),
			Default: d.def, Description: d.desc, Secret: d.secret,
		})
	}
	return out
}

// canonicalKey maps a key spelled in any case to its canonical spelling.
func canonicalKey(k string) (string, bool) {
	c, ok := keyByLower[strings.ToLower(k)]
	return c, ok
}

func section(key string) string {
	s, _, _ := strings.Cut(key, ".")
	return s
}

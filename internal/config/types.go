package config

import (
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"time"

	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/bridge"
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
	// the URL's user info: print it only through Redacted/String. Each
	// component's proxy is its own proxy block, else ProxyURL.
	ProxyURL                                                            string
	PodProxyURL, AgentProxyURL, KeyManagerProxyURL, SessionAuthProxyURL string

	Username string
	// PrivateKeyPEM is the bot's RSA key (PKCS#1 or PKCS#8 PEM), nil when
	// certificate authentication is configured instead; PrivateKeyPath is
	// the file it came from ("" for inline content).
	PrivateKeyPEM  []byte
	PrivateKeyPath string
	Certificate    *tls.Certificate // for certificate authentication
	// TrustStore holds the system roots plus the configured trust store; nil
	// when none is configured (use the system roots).
	TrustStore                  *x509.CertPool
	InsecureSkipVerify          bool          // ssl.insecureSkipVerify; the caller warns at each start
	ConnectTimeout, ReadTimeout time.Duration // the agent's own values, else the global ones

	Datafeed DatafeedConfig
	Datahose DatahoseConfig
	Bridge   BridgeConfig
	NATS     NATSConfig
	HTTP     HTTPConfig
	Log      LogConfig
	Runtime  RuntimeConfig

	// Warnings to log at start-up: BDK keys symbridge ignores (one entry),
	// secret files readable by others, a read timeout shorter than the long poll.
	Warnings []string
	// SecretFiles are the secret files read (the bot's key or certificate)
	// with their permissions; a loose one also has its entry in Warnings.
	SecretFiles []SecretFile

	problems []error           // found by Load, reported by Validate
	source   map[string]string // key set by a layer or inherited -> the key as written
	// A key or certificate is configured, even if unreadable: Validate then
	// reports the file's problem rather than a missing key.
	rsaConfigured, certConfigured bool
}

// SecretFile is a secret file the configuration names.
type SecretFile struct {
	Key, Path string      // the key as written, and the file
	Mode      fs.FileMode // permission bits
	Warning   string      // "" when only the owner may read it; else the entry in Config.Warnings
}

// DatafeedConfig is the BDK's datafeed block.
type DatafeedConfig struct {
	Version          string               `koanf:"version" default:"v2" desc:"v2, or v1 for old Agents (at-most-once: a v1 read removes the events)"`
	Tag              string               `koanf:"tag" default:"symbridge" desc:"tag of symbridge's own datafeed v2, so that it never shares (and splits) the team bot's feed; at most 100 characters"`
	IncludeInvisible bool                 `koanf:"includeInvisible" default:"false" desc:"create the feed with includeInvisible (Agent 26.2.1+)"`
	IDFilePath       string               `koanf:"idFilePath" default:"./" desc:"directory (or file) of the v1 datafeed.id file"`
	Coordination     CoordinationConfig   `koanf:"coordination"`
	Retry            symphony.RetryConfig `koanf:"-"`
}

// CoordinationConfig is how the instances that read one account's datafeed
// v2 with one tag agree on one feed: a claim and a record in JetStream
// key-value buckets. It applies to datafeed v2 only.
type CoordinationConfig struct {
	Enabled bool   `koanf:"enabled" default:"true" desc:"datafeed v2: instances with the same bot and datafeed.tag agree through NATS key-value buckets on one feed, instead of each creating its own at start-up or after a 400 (without the buckets' permissions symbridge warns once and decides alone)"`
	Bucket  string `koanf:"bucket" default:"symbridge-feeds" desc:"NATS key-value bucket of the shared feeds' records; the claims are in a second bucket, this name followed by -claims; letters, digits, _ and -"`
}

// DatahoseConfig is the BDK's datahose block.
type DatahoseConfig struct {
	Tag        string               `koanf:"tag" desc:"datahose feed tag, 1-80 characters; default: datahose-<bot.username>"`
	EventTypes []string             `koanf:"eventTypes" desc:"event types to read, e.g. MESSAGESENT,ROOMCREATED; required when bridge.source is datahose"`
	Scopes     []string             `koanf:"scopes" desc:"optional scopes: INTERNAL, EXTERNAL, FEDERATED (omitted = all)"`
	Retry      symphony.RetryConfig `koanf:"-"`
}

// BridgeConfig is the read-publish-ack loop's configuration.
type BridgeConfig struct {
	Source         string        `koanf:"source" default:"datafeed" desc:"datafeed (datafeed.version decides v2 or v1) or datahose"`
	Pod            string        `koanf:"pod" desc:"the {pod} subject token; default: the first label of the pod host"`
	Subject        string        `koanf:"subject" default:"symphony.{pod}.{eventType}.{streamType}" desc:"subject template"`
	DeadLetter     string        `koanf:"deadLetter" default:"symphony.{pod}._invalid" desc:"subject template for events that cannot be mapped or stored"`
	PublishTimeout time.Duration `koanf:"publishTimeout" default:"5s" desc:"how long one JetStream publish-ack may take before the publish is retried"`
	SlowRetry      time.Duration `koanf:"slowRetry" default:"30s" desc:"wait between reads while the Agent refuses them (403, 404, other 4xx): never a busy loop, never a silent stop; /readyz fails meanwhile"`
	MaxPending     int           `koanf:"maxPending" default:"4096" desc:"most asynchronous publishes awaiting their ack"`
	Readers        int           `koanf:"readers" default:"2" desc:"most concurrent readers of the datafeed v2, each with its own ackId chain; added only while reads come back full (100 events), retired when the feed is drained; events of different batches are then stored in no particular order (1 = strictly sequential)"`
	DedupeEntries  int           `koanf:"dedupeEntries" default:"262144" desc:"Msg-Ids remembered to skip redeliveries (0 disables; JetStream's duplicate window is the guarantee)"`
	MaxBodyBytes   int64         `koanf:"maxBodyBytes" default:"67108864" desc:"largest Agent response body accepted, in bytes (64 MiB)"`
}

// NATSConfig is the JetStream side.
type NATSConfig struct {
	URL          string         `koanf:"url" desc:"NATS server URL(s), comma-separated; required unless nats.embedded.enabled"`
	CredsFile    string         `koanf:"credsFile" desc:"NATS credentials (.creds) file"`
	NKeyFile     string         `koanf:"nkeyFile" desc:"NATS NKey seed file"`
	Token        redact.Secret  `koanf:"token" desc:"NATS token"`
	User         string         `koanf:"user" desc:"NATS user"`
	Password     redact.Secret  `koanf:"password" desc:"NATS password"`
	PingInterval time.Duration  `koanf:"pingInterval" default:"10s" desc:"how often the NATS connection is pinged; two unanswered pings mark it dead (a paused or cut-off server sends no TCP reset)"`
	TLS          NATSTLSConfig  `koanf:"tls"`
	Stream       StreamConfig   `koanf:"stream"`
	Embedded     EmbeddedConfig `koanf:"embedded"`
}

// NATSTLSConfig configures TLS to the NATS servers.
type NATSTLSConfig struct {
	CAFile             string `koanf:"caFile" desc:"CA bundle (PEM) to verify the NATS server"`
	CertFile           string `koanf:"certFile" desc:"client certificate (PEM) for NATS mutual TLS"`
	KeyFile            string `koanf:"keyFile" desc:"client key (PEM) for NATS mutual TLS"`
	InsecureSkipVerify bool   `koanf:"insecureSkipVerify" default:"false" desc:"do not verify the NATS server certificate (tests only)"`
}

// StreamConfig is the JetStream stream symbridge creates or verifies.
type StreamConfig struct {
	Name       string        `koanf:"name" default:"SYMPHONY" desc:"JetStream stream, created when missing"`
	Subjects   []string      `koanf:"subjects" default:"symphony.>" desc:"subjects of the stream when symbridge creates it; an existing stream must cover the bridge's subjects"`
	Duplicates time.Duration `koanf:"duplicates" default:"35m" desc:"duplicate window; covers the feed's 30-minute life"`
	MaxAge     time.Duration `koanf:"maxAge" default:"168h" desc:"message retention (0 = unlimited)"`
	Replicas   int           `koanf:"replicas" default:"1" desc:"stream replicas, 1 to 5"`
	MaxMsgSize int32         `koanf:"maxMsgSize" default:"0" desc:"largest message the stream accepts, in bytes (0 = server default, -1 = unlimited)"`
}

// Bridge is the stream as pkg/bridge takes it: Validate checks it, run
// creates or verifies it.
func (s StreamConfig) Bridge() bridge.StreamConfig {
	return bridge.StreamConfig{Name: s.Name, Subjects: s.Subjects, Duplicates: s.Duplicates, MaxAge: s.MaxAge,
		Replicas: s.Replicas, MaxMsgSize: s.MaxMsgSize}
}

// EmbeddedConfig is the in-process nats-server.
type EmbeddedConfig struct {
	Enabled bool   `koanf:"enabled" default:"false" desc:"run an in-process nats-server instead of connecting to nats.url (one unreplicated disk)"`
	Dir     string `koanf:"dir" default:"./symbridge-data" desc:"data directory of the embedded server"`
	Listen  string `koanf:"listen" default:"127.0.0.1:4222" desc:"listen address of the embedded server"`
}

// HTTPConfig is the health endpoint server.
type HTTPConfig struct {
	Listen string `koanf:"listen" default:":8080" desc:"address of /healthz, /readyz and /metrics; the default binds every interface (127.0.0.1:8080 keeps it local); empty disables"`
}

// LogConfig configures slog.
type LogConfig struct {
	Level  string `koanf:"level" default:"info" desc:"debug, info, warn or error"`
	Format string `koanf:"format" default:"text" desc:"text or json"`
}

// RuntimeConfig is the Go runtime's tuning for `symbridge run`; the
// GOMAXPROCS, GOGC and GOMEMLIMIT environment variables win over it.
type RuntimeConfig struct {
	MaxProcs    int   `koanf:"maxProcs" default:"1" desc:"GOMAXPROCS (0 = Go's default, all CPUs; also the default with the embedded nats-server); the GOMAXPROCS environment variable wins"`
	GCPercent   int   `koanf:"gcPercent" default:"400" desc:"GOGC: heap growth between collections, in percent (-1 = off); the GOGC environment variable wins"`
	MemoryLimit int64 `koanf:"memoryLimit" desc:"soft memory limit in bytes; default and minimum: 32 MiB + bridge.maxBodyBytes × bridge.readers + the dedupe set's full size (no default limit with the embedded nats-server); the GOMEMLIMIT environment variable wins"`
}

// fileKeys is the shape of the file: the BDK's keys, then symbridge's
// sections. Its tags are the key reference (see [KeyDoc]).
type fileKeys struct {
	Scheme            string     `koanf:"scheme" default:"https" desc:"global scheme of the Symphony servers: https or http (simulators)"`
	Host              string     `koanf:"host" desc:"global host of the Symphony servers (pod, agent, key manager, session auth inherit it)"`
	Port              int        `koanf:"port" default:"443" desc:"global port (443 whatever the scheme, as in the BDK)"`
	Context           string     `koanf:"context" desc:"global context path, e.g. /pod-context (normalised to a leading '/', no trailing '/')"`
	Proxy             proxyKeys  `koanf:"proxy" of:"every Symphony server"`
	ConnectionTimeout millis     `koanf:"connectionTimeout" default:"15000" desc:"TCP/TLS connect timeout, in milliseconds (BDK key)"`
	ReadTimeout       millis     `koanf:"readTimeout" default:"60000" desc:"HTTP read timeout, in milliseconds (BDK key); must exceed the Agent's 30 s long poll"`
	Pod               serverKeys `koanf:"pod" of:"pod (authentication, /login and /pod)"`
	Agent             struct {
		serverKeys        `koanf:",squash"`
		ConnectionTimeout millis `koanf:"connectionTimeout" desc:"connect timeout for the Agent, in milliseconds; default: connectionTimeout"`
		ReadTimeout       millis `koanf:"readTimeout" desc:"read timeout for the Agent, in milliseconds; default: readTimeout"`
	} `koanf:"agent" of:"Agent (the feeds)"`
	KeyManager  serverKeys `koanf:"keyManager" of:"key manager (RSA /relay, certificate /keyauth)"`
	SessionAuth serverKeys `koanf:"sessionAuth" of:"session authentication for certificate auth (/sessionauth)"`
	Bot         struct {
		Username   string `koanf:"username" desc:"service account username (the JWT subject)"`
		PrivateKey struct {
			Path    string        `koanf:"path" desc:"RSA private key file, PKCS#1 or PKCS#8 PEM"`
			Content redact.Secret `koanf:"content" desc:"RSA private key, PEM text"`
		} `koanf:"privateKey"`
		Certificate struct {
			Path     string        `koanf:"path" desc:"client certificate for certificate authentication: PKCS#12 (or PEM with certificate and key)"`
			Content  redact.Secret `koanf:"content" desc:"client certificate content: base64 of the PKCS#12 file (as the BDK's byte[]) or PEM text"`
			Password redact.Secret `koanf:"password" desc:"password of the PKCS#12 client certificate"`
		} `koanf:"certificate"`
	} `koanf:"bot"`
	SSL struct {
		TrustStore struct {
			Path     string        `koanf:"path" desc:"extra trusted CAs, added to the system roots: PEM bundle, PKCS#12 or JKS"`
			Content  string        `koanf:"content" desc:"trust store content: PEM text, or base64 of a PKCS#12/JKS file"`
			Password redact.Secret `koanf:"password" desc:"trust store password (PKCS#12, JKS)"`
		} `koanf:"trustStore"`
		InsecureSkipVerify bool `koanf:"insecureSkipVerify" default:"false" desc:"symbridge key: do not verify the Symphony servers' TLS certificates (tests only; warned at each start)"`
	} `koanf:"ssl"`
	Datafeed struct {
		DatafeedConfig `koanf:",squash"`
		Retry          retryKeys `koanf:"retry"`
	} `koanf:"datafeed"`
	Datahose struct {
		DatahoseConfig `koanf:",squash"`
		Retry          retryKeys `koanf:"retry"`
	} `koanf:"datahose"`
	Bridge  BridgeConfig  `koanf:"bridge"`
	NATS    NATSConfig    `koanf:"nats"`
	HTTP    HTTPConfig    `koanf:"http"`
	Log     LogConfig     `koanf:"log"`
	Runtime RuntimeConfig `koanf:"runtime"`
}

// serverKeys is a component's block; unset fields inherit the global
// scheme/host/port/context/proxy, as in the BDK.
type serverKeys struct {
	Scheme  string    `koanf:"scheme" desc:"scheme of the {of}; default: the global scheme"`
	Host    string    `koanf:"host" desc:"host of the {of}; default: the global host"`
	Port    int       `koanf:"port" desc:"port of the {of}; default: the global port"`
	Context string    `koanf:"context" desc:"context path of the {of}; default: the global context"`
	Proxy   proxyKeys `koanf:"proxy" of:"the {of}; default: the global proxy"`
}

type proxyKeys struct {
	Host     string        `koanf:"host" desc:"HTTP proxy host for {of}"`
	Port     int           `koanf:"port" desc:"HTTP proxy port for {of} (required with proxy.host)"`
	Username string        `koanf:"username" desc:"HTTP proxy user for {of}"`
	Password redact.Secret `koanf:"password" desc:"HTTP proxy password for {of}"`
}

type retryKeys struct {
	MaxAttempts           int     `koanf:"maxAttempts" default:"-1" desc:"attempts before giving up on a failing read; -1 = forever; when a finite number runs out symbridge exits non-zero"`
	InitialIntervalMillis millis  `koanf:"initialIntervalMillis" default:"500" desc:"first backoff wait, in milliseconds (BDK key)"`
	Multiplier            float64 `koanf:"multiplier" default:"2" desc:"backoff growth factor"`
	MaxIntervalMillis     millis  `koanf:"maxIntervalMillis" default:"300000" desc:"longest backoff wait, in milliseconds (BDK key)"`
}

func (r retryKeys) config() symphony.RetryConfig {
	return symphony.RetryConfig{MaxAttempts: r.MaxAttempts, Initial: time.Duration(r.InitialIntervalMillis),
		Multiplier: r.Multiplier, Max: time.Duration(r.MaxIntervalMillis)}
}

package symphonytest

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/symbridge/symbridge/internal/defaults"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Defaults applied by [New] to zero fields of [Config]. They are the values
// Symphony documents (30 s visibility timeout and long poll, 30-minute feed
// TTL, 20 datafeed v2 feeds, 5 datahose feeds, 5 datafeed v1 feeds).
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultFeedIdleTTL       = 30 * time.Minute
	DefaultMaxFeeds          = 20
	DefaultMaxDatahoseFeeds  = 5
	DefaultMaxV1Feeds        = 5
	DefaultLongPoll          = 30 * time.Second
	DefaultMaxBatch          = 100
	DefaultAgentVersion      = "Agent-25.8.1-Linux-5.15.0"
	// MaxJWTLifetime is how far in the future the pod accepts a login JWT's
	// exp claim (the BDKs use 240 s to absorb clock skew).
	MaxJWTLifetime = 5 * time.Minute
)

// Config configures an [Agent]. Zero values take the documented defaults.
type Config struct {
	// Username is the service account allowed to log in (the JWT's sub and
	// the client certificate's CN). Empty accepts any username, each one
	// being its own account with its own feeds (agent-sim for several bots).
	Username string
	// PublicKey verifies the RS512 signature of login JWTs. Nil skips the
	// signature check (the JWT must still be a well-formed RS512 JWT with a
	// valid sub and exp): convenient for demos, never for tests of auth.
	PublicKey *rsa.PublicKey
	// ClientCAs verifies client certificates for /sessionauth and /keyauth
	// over HTTPS. Nil disables certificate authentication (403).
	ClientCAs *x509.CertPool
	// UserID is the bot's user id in /pod/v2/sessioninfo and in the session
	// token. Zero derives a stable id from the username.
	UserID int64

	// SessionTTL is how long session and key-manager tokens live; agent
	// calls with an expired token get 401. Zero: tokens never expire.
	SessionTTL time.Duration
	// VisibilityTimeout is how long a handed-out batch stays in flight
	// before its events go back to the queue when not acked.
	VisibilityTimeout time.Duration
	// FeedIdleTTL expires a feed nobody read for that long (reads then get
	// 400 and the feed disappears from the list). Negative: never.
	FeedIdleTTL time.Duration
	// MaxFeeds limits the datafeed v2 feeds of one account: a read of a feed
	// created beyond the limit gets 403 (the spec documents the limit on the
	// read) until older feeds are deleted or expire.
	MaxFeeds int
	// MaxDatahoseFeeds limits the datahose feeds of one account: a read that
	// would create one more gets 403.
	MaxDatahoseFeeds int
	// MaxV1Feeds limits the datafeed v1 feeds of one account: create gets
	// 503 ("max number of data feeds reached", as the spec says).
	MaxV1Feeds int
	// V1QueueSize expires a datafeed v1 feed whose unread events exceed it,
	// like the Agent's agent.limits.datafeed.queueSize (250 there). Zero:
	// unlimited.
	V1QueueSize int
	// LongPoll is how long a read with nothing to deliver is held before it
	// returns an empty batch (datafeed v1: 204).
	LongPoll time.Duration
	// MaxBatch is the largest number of events one read returns.
	MaxBatch int
	// AgentVersion is the version GET /agent/v1/info reports.
	AgentVersion string
	// SKD makes session tokens carry canUseSimplifiedKeyDelivery: agent
	// calls then need no keyManagerToken.
	SKD bool
	// Faults is the initial fault-injection schedule; see [Agent.SetFaults].
	Faults *Faults
}

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SessionTTL", c.SessionTTL}, {"VisibilityTimeout", c.VisibilityTimeout}, {"LongPoll", c.LongPoll}} {
		if d.v < 0 {
			return fmt.Errorf("symphonytest: %s: must not be negative, got %v", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxFeeds", c.MaxFeeds}, {"MaxDatahoseFeeds", c.MaxDatahoseFeeds}, {"MaxV1Feeds", c.MaxV1Feeds},
		{"V1QueueSize", c.V1QueueSize}, {"MaxBatch", c.MaxBatch}} {
		if n.v < 0 {
			return fmt.Errorf("symphonytest: %s: must not be negative, got %d", n.name, n.v)
		}
	}
	if c.Faults != nil {
		if err := c.Faults.Validate(); err != nil {
			return fmt.Errorf("symphonytest: Faults: %w", err)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	c.VisibilityTimeout = defaults.Positive(c.VisibilityTimeout, DefaultVisibilityTimeout)
	c.FeedIdleTTL = cmp.Or(c.FeedIdleTTL, DefaultFeedIdleTTL) // negative: feeds never expire
	c.MaxFeeds = defaults.Positive(c.MaxFeeds, DefaultMaxFeeds)
	c.MaxDatahoseFeeds = defaults.Positive(c.MaxDatahoseFeeds, DefaultMaxDatahoseFeeds)
	c.MaxV1Feeds = defaults.Positive(c.MaxV1Feeds, DefaultMaxV1Feeds)
	c.LongPoll = defaults.Positive(c.LongPoll, DefaultLongPoll)
	c.MaxBatch = defaults.Positive(c.MaxBatch, DefaultMaxBatch)
	c.AgentVersion = cmp.Or(c.AgentVersion, DefaultAgentVersion)
}

// FeedKind says which API a feed belongs to.
type FeedKind string

// Feed kinds.
const (
	KindDatafeed FeedKind = "datafeed" // datafeed v2, listed with type "fanout"
	KindDatahose FeedKind = "datahose" // datahose, listed with type "datahose"
	KindV1       FeedKind = "v1"       // legacy datafeed v1 (never listed)
)

// FeedInfo describes one live feed (see [Agent.Feeds]).
type FeedInfo struct {
	ID               string
	Kind             FeedKind
	Account          string
	Tag              string   // datafeed v2 and datahose
	EventTypes       []string // datahose, sorted
	Scopes           []string // datahose, as requested (not applied)
	IncludeInvisible bool     // datafeed v2
	CreatedAt        time.Time
	LastRead         time.Time
	Queued           int   // events waiting to be handed out
	InFlight         int   // events handed out and not yet acked
	InFlightBatches  int   // batches (ackIds) not yet acked
	Readers          int   // reads in progress right now
	Delivered        int64 // event deliveries, redeliveries included
	Acked            int64 // events acknowledged
}

// Stats counts what the Agent did. All counters only grow.
type Stats struct {
	Auths          int64 // successful pod logins (RSA and certificate)
	KMAuths        int64 // successful key-manager logins (RSA and certificate)
	CertAuths      int64 // of the above, certificate logins
	AuthFailures   int64 // logins answered 401 or 403
	Unauthorized   int64 // agent calls answered 401 (missing/expired token)
	SessionsIssued int64

	Lists                int64 // GET /agent/v5/datafeeds answered with a list
	HeldLists            int64 // of which held by HoldLists (counted on arrival)
	FeedsCreated         int64 // datafeed v2 feeds created
	DatahoseFeedsCreated int64 // datahose feeds created by a read
	V1FeedsCreated       int64
	FeedsDeleted         int64
	FeedsExpired         int64 // idle TTL, ExpireFeed, V1QueueSize or an injected expiry
	FeedLimitRefusals    int64 // 403 (v2, datahose) or 503 (v1) because of a feed limit

	Reads       int64 // reads answered with a batch, empty or not (all APIs)
	EmptyReads  int64 // reads that returned no event
	Acks        int64 // ackIds acknowledging an in-flight batch
	RepeatAcks  int64 // ackIds whose batch was already acked or requeued
	BadAckIDs   int64 // unknown or malformed ackIds (400)
	BadRequests int64 // other 400 answers to malformed requests

	EventsEmitted   int64 // events given to Emit or EmitMalformed (valid JSON)
	InvalidEmits    int64 // values given to Emit that were not JSON (dropped)
	EventsUnrouted  int64 // emitted events that matched no feed
	EventsQueued    int64 // event copies queued into feeds
	EventsDelivered int64 // event deliveries, redeliveries included
	EventsAcked     int64 // events removed by an ack (v2, datahose)
	EventsConsumed  int64 // events removed by a datafeed v1 read (no ack)
	Redeliveries    int64 // events put back in a queue by the visibility timeout
	// EventsDropped counts events Symphony threw away with their feed:
	// queued or in flight when the feed was deleted, expired or recreated.
	EventsDropped int64

	// Faults counts injected faults by kind.
	Faults map[FaultKind]int64
}

// Agent is a simulated Symphony Agent, pod and key manager. It is safe for
// concurrent use. Create it with [New]; serve [Agent.Handler] yourself or call
// [Agent.Start] / [Agent.StartTLS]; [Agent.Close] releases held long polls
// and stops the servers it started.
type Agent struct {
	cfg    Config
	secret []byte // signs session tokens (HS512); never leaves the process
	mux    *http.ServeMux
	served atomic.Pointer[http.Handler] // mux, possibly wrapped by Use
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	feeds    map[string]*feed
	usedIDs  map[string]bool
	seq      uint64
	sessions map[string]*session
	stats    Stats
	onAck    func(feedID string, events [][]byte)
	hold     *ListHold // armed by HoldLists

	fmu    sync.Mutex
	faults faultState

	srvMu   sync.Mutex
	servers []*httptest.Server
	closed  bool
}

// New returns an Agent with cfg's zero fields set to their defaults. Invalid
// values (see [Config.Validate]) are treated as zero.
func New(cfg Config) *Agent {
	cfg.SessionTTL = max(cfg.SessionTTL, 0)
	cfg.MaxV1Feeds, cfg.V1QueueSize = max(cfg.MaxV1Feeds, 0), max(cfg.V1QueueSize, 0)
	if cfg.Faults != nil && cfg.Faults.Validate() != nil {
		cfg.Faults = nil
	}
	cfg.setDefaults()
	a := &Agent{
		cfg:      cfg,
		secret:   randomBytes(32),
		done:     make(chan struct{}),
		feeds:    make(map[string]*feed),
		usedIDs:  make(map[string]bool),
		sessions: make(map[string]*session),
		stats:    Stats{Faults: make(map[FaultKind]int64)},
	}
	if cfg.Faults != nil {
		a.faults.set(*cfg.Faults)
	}
	a.mux = a.routes()
	var h http.Handler = a.mux
	a.served.Store(&h)
	return a
}

// Use wraps the handler that [Agent.Handler], [Agent.Start] and
// [Agent.StartTLS] serve, e.g. with the spec validator's Middleware. Call it before
// serving; wrappers added later run outermost.
func (a *Agent) Use(mw func(http.Handler) http.Handler) {
	h := mw(*a.served.Load())
	a.served.Store(&h)
}

// Config returns the effective configuration (defaults applied).
func (a *Agent) Config() Config { return a.cfg }

// Handler serves every endpoint under one base URL (wrapped by [Agent.Use]).
func (a *Agent) Handler() http.Handler { return *a.served.Load() }

// Start serves the Agent over plain HTTP on a loopback port and returns its
// base URL (use it for pod, agent, key manager and session auth alike).
func (a *Agent) Start() string {
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Start()
	a.addServer(srv)
	return srv.URL
}

// StartTLS serves the Agent over HTTPS on a loopback port. cert nil uses a
// self-signed certificate for 127.0.0.1. Client certificates are requested
// (not required) and verified against Config.ClientCAs for certificate
// authentication. It returns the base URL and a pool that trusts the server.
func (a *Agent) StartTLS(cert *tls.Certificate) (string, *x509.CertPool) {
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.TLS = a.ServerTLSConfig(cert)
	srv.StartTLS()
	a.addServer(srv)
	roots := x509.NewCertPool()
	if cert != nil && cert.Leaf != nil {
		roots.AddCert(cert.Leaf)
	} else if cert != nil && len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			roots.AddCert(leaf)
		}
	} else {
		roots.AddCert(srv.Certificate())
	}
	return srv.URL, roots
}

// ServerTLSConfig returns a TLS server configuration for serving
// [Agent.Handler] yourself: it requests client certificates and verifies them
// against Config.ClientCAs. cert nil leaves Certificates empty.
func (a *Agent) ServerTLSConfig(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	if a.cfg.ClientCAs != nil {
		c.ClientAuth = tls.VerifyClientCertIfGiven
		c.ClientCAs = a.cfg.ClientCAs
	} else {
		c.ClientAuth = tls.RequestClientCert
	}
	return c
}

func (a *Agent) addServer(srv *httptest.Server) {
	a.srvMu.Lock()
	defer a.srvMu.Unlock()
	if a.closed {
		srv.Close()
		return
	}
	a.servers = append(a.servers, srv)
}

// Close releases every held long poll at once (they answer an empty batch)
// and every list held by [Agent.HoldLists], and stops the servers started by Start and StartTLS. It is idempotent.
func (a *Agent) Close() {
	a.once.Do(func() { close(a.done) })
	a.mu.Lock()
	if a.hold != nil {
		a.releaseHoldLocked(a.hold) // held lists are answered, like held long polls
	}
	a.mu.Unlock()
	a.srvMu.Lock()
	servers := a.servers
	a.servers, a.closed = nil, true
	a.srvMu.Unlock()
	for _, s := range servers {
		s.Close() // waits for in-flight requests, which the closed done channel releases
	}
}

// OnAck registers fn to be called each time a read carries an ackId the feed
// issued, with the feed id and the events of the batch that ackId covers
// (empty for an empty batch). fn runs synchronously before the read goes on,
// outside the Agent's locks, so a test can check that the events are already
// stored downstream. It is also called for an ackId whose batch was already
// acked or requeued (a client retrying a read). Not called for datafeed v1.
func (a *Agent) OnAck(fn func(feedID string, events [][]byte)) {
	a.mu.Lock()
	a.onAck = fn
	a.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(time.Now())
	s := a.stats
	s.Faults = make(map[FaultKind]int64, len(a.stats.Faults))
	for k, v := range a.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// Feeds describes the live feeds of every account, oldest first.
func (a *Agent) Feeds() []FeedInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.sweepLocked(now)
	out := make([]FeedInfo, 0, len(a.feeds))
	for _, f := range a.sortedFeedsLocked() {
		f.requeueExpiredLocked(a, now)
		out = append(out, f.info())
	}
	return out
}

// ExpireFeed makes a feed expire now, as if its TTL had run out: reads get
// 400, it leaves the list and what it held is counted as dropped. It
// reports whether the feed was live.
func (a *Agent) ExpireFeed(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.feeds[id]
	if !ok {
		return false
	}
	a.removeFeedLocked(f, true)
	return true
}

// ExpireSessions expires every session and key-manager token issued so far:
// the next agent call with them gets 401 and the client must log in again.
// Feeds survive, as they do on Symphony.
func (a *Agent) ExpireSessions() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sessions {
		s.expired = true
	}
}

// Emit queues events into every live feed: every datafeed v2 and v1 feed,
// and every datahose feed whose eventTypes include the event's type. Each
// event must be a JSON value (normally an object); values that are not JSON
// are dropped and counted in Stats.InvalidEmits, since they would corrupt the
// whole response. The bytes are delivered unchanged.
func (a *Agent) Emit(events ...[]byte) { a.emit(false, events) }

// EmitMalformed queues events like [Agent.Emit] but marks them as
// deliberately malformed (for example an event whose "type" is a number):
// responses carrying them are exempt from the spec validator's checks (package spec).
func (a *Agent) EmitMalformed(events ...[]byte) { a.emit(true, events) }

func (a *Agent) emit(malformed bool, events [][]byte) {
	// Validate, copy and type the events before taking the lock: the
	// benchmark emits while the bridge it measures reads, and a read must
	// not wait behind parsing.
	type emitted struct {
		raw []byte
		typ string
	}
	valid := make([]emitted, 0, len(events))
	var invalid int64
	for _, raw := range events {
		raw = append([]byte(nil), raw...)
		// The bridge's own decoder is several times cheaper than
		// json.Valid plus encoding/json and validates just as strictly;
		// events it refuses (deliberately malformed ones) take the slow
		// path, which accepts any valid JSON.
		ev := symphony.ParseEvent(raw)
		typ := ev.Type
		if ev.Err != nil {
			if !json.Valid(raw) {
				invalid++
				continue
			}
			typ = eventType(raw)
		}
		valid = append(valid, emitted{raw: raw, typ: typ})
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.InvalidEmits += invalid
	now := time.Now()
	a.sweepLocked(now)
	feeds := a.sortedFeedsLocked()
	for _, e := range valid {
		a.stats.EventsEmitted++
		routed := false
		for _, f := range feeds {
			if f.gone || (f.kind == KindDatahose && !f.typeSet[e.typ]) {
				continue
			}
			f.queue = append(f.queue, &qevent{raw: e.raw, malformed: malformed})
			a.stats.EventsQueued++
			routed = true
			if f.kind == KindV1 && a.cfg.V1QueueSize > 0 && len(f.queue) > a.cfg.V1QueueSize {
				a.removeFeedLocked(f, true)
				continue
			}
			f.wake()
		}
		if !routed {
			a.stats.EventsUnrouted++
		}
	}
}

func eventType(raw []byte) string {
	var v struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Type
}

func (a *Agent) sortedFeedsLocked() []*feed {
	fs := make([]*feed, 0, len(a.feeds))
	for _, f := range a.feeds {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].seq < fs[j].seq })
	return fs
}

// sweepLocked expires the feeds nobody read for FeedIdleTTL. A feed with a
// read in progress is being read, so it is never idle.
func (a *Agent) sweepLocked(now time.Time) {
	if a.cfg.FeedIdleTTL < 0 {
		return
	}
	for _, f := range a.feeds {
		if f.readers == 0 && now.Sub(f.lastRead) > a.cfg.FeedIdleTTL {
			a.removeFeedLocked(f, true)
		}
	}
}

// removeFeedLocked deletes or expires a feed: what it still held is lost,
// as on Symphony.
func (a *Agent) removeFeedLocked(f *feed, expired bool) {
	if f.gone {
		return
	}
	f.gone = true
	delete(a.feeds, f.id)
	dropped := len(f.queue)
	for _, b := range f.batches {
		if b.state == batchInFlight {
			dropped += len(b.events)
		}
	}
	a.stats.EventsDropped += int64(dropped)
	f.queue = nil
	if expired {
		a.stats.FeedsExpired++
	} else {
		a.stats.FeedsDeleted++
	}
	f.wake()
}

// errClosed is returned internally when the Agent closes during a wait.
var errClosed = errors.New("agent closed")

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

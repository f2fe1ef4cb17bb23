package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/leakcheck"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

// credRecorder is Agent middleware that keeps every credential a client
// presented: the login JWTs of the authentication requests and the tokens in
// the sessionToken and keyManagerToken headers.
type credRecorder struct {
	mu    sync.Mutex
	jwts  map[string]bool
	heads map[string]bool
}

func (c *credRecorder) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		var login struct {
			Token string `json:"token"`
		}
		c.mu.Lock()
		if strings.HasSuffix(r.URL.Path, "/authenticate") && json.Unmarshal(body, &login) == nil && login.Token != "" {
			c.jwts[login.Token] = true
		}
		for _, h := range []string{"sessionToken", "keyManagerToken"} {
			if v := r.Header.Get(h); v != "" {
				c.heads[v] = true
			}
		}
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *credRecorder) loginJWTs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for k := range c.jwts {
			if !yield(k) {
				return
			}
		}
	})
}

func (c *credRecorder) headerTokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.heads {
		out = append(out, k)
	}
	return out
}

// newRecordedAgent is newAgent with a credRecorder in front of the
// validator (the Agent serves the handler wrapped at Start).
func newRecordedAgent(t *testing.T, cfg symphonytest.Config) (*symphonytest.Agent, *url.URL, *credRecorder) {
	t.Helper()
	v := spec.ForTest(t)
	cfg.Username = testBot
	a := symphonytest.New(cfg)
	a.Use(func(next http.Handler) http.Handler { return v.Middleware(next, nil) })
	rec := &credRecorder{jwts: map[string]bool{}, heads: map[string]bool{}}
	a.Use(rec.middleware)
	u, err := url.Parse(a.Start())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		for _, f := range v.Failures() {
			t.Errorf("OpenAPI validation: %v", f)
		}
	})
	return a, u, rec
}

// scraper GETs /healthz, /readyz and /metrics over and over while the bridge
// runs, keeping every distinct body: what a monitoring system would see.
type scraper struct {
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	bodies map[string]bool
	counts map[string]int // 200 answers by path
}

func startScraper(addr string) *scraper {
	s := &scraper{stop: make(chan struct{}), done: make(chan struct{}), bodies: map[string]bool{}, counts: map[string]int{}}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() { // owned by the test: close(s.stop) ends it, s.done says it ended
		defer close(s.done)
		for {
			for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
				resp, err := client.Get("http://" + addr + p)
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				s.mu.Lock()
				s.bodies[fmt.Sprintf("GET %s %d\n%s", p, resp.StatusCode, body)] = true
				if resp.StatusCode == http.StatusOK {
					s.counts[p]++
				}
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

// finish stops the scraper (once) and returns what it saw.
func (s *scraper) finish() (bodies string, counts map[string]int) {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]string, 0, len(s.bodies))
	for b := range s.bodies {
		all = append(all, b)
	}
	return strings.Join(all, "\n"), maps.Clone(s.counts)
}

// okCounts returns how many 200 answers each path gave so far.
func (s *scraper) okCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestNoSecretLeaks_FullSession runs `symbridge run` at debug level, with
// text and JSON logs, through an authentication failure that is retried
// (a 503 from the key manager's login), two session expiries refreshed after a 401,
// a NATS connection with a password or a token, health and metrics scrapes
// all along and a shutdown; then searches every line it printed, the error
// it returned and every health and metrics body for any 12-character piece
// of the private key, of every token the Agent issued, of every login JWT
// and of the NATS secret. It also checks that the search would have found a
// piece of each, had one been there.
func TestNoSecretLeaks_FullSession(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, format, nats string }{
		{"text logs, NATS user and password", "text", "password"},
		{"json logs, NATS token", "json", "token"},
		{"text logs, NATS credentials in the URL", "text", "url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bot, _ := keys(t)
			agent, agentURL, rec := newRecordedAgent(t, symphonytest.Config{
				PublicKey: &bot.PublicKey, LongPoll: time.Second, VisibilityTimeout: time.Second,
				// The pod login is only slowed down; the key manager login
				// after it answers 503 once.
				Faults: &symphonytest.Faults{
					Targets: []symphonytest.Target{symphonytest.TargetAuth},
					Next:    []symphonytest.FaultKind{symphonytest.FaultLatency, symphonytest.FaultServerError},
					Latency: 10 * time.Millisecond,
					Status:  http.StatusServiceUnavailable,
				},
			})

			natsSecret := randomSecret(t, "nats-secret-")
			var srv *natstest.Server
			var clientOpt nats.Option
			natsURL := ""
			edits := []string{"level: info", "level: debug", "format: json", "format: " + tc.format}
			switch tc.nats {
			case "password":
				srv = natstest.RunServer(t, natstest.WithUserPassword("bridge", natsSecret))
				clientOpt = nats.UserInfo("bridge", natsSecret)
				natsURL = srv.URL()
				edits = append(edits, "nats:\n", "nats:\n  user: bridge\n  password: "+natsSecret+"\n")
			case "token":
				srv = natstest.RunServer(t, natstest.WithToken(natsSecret))
				clientOpt = nats.Token(natsSecret)
				natsURL = srv.URL()
				edits = append(edits, "nats:\n", "nats:\n  token: "+natsSecret+"\n")
			case "url":
				srv = natstest.RunServer(t, natstest.WithUserPassword("bridge", natsSecret))
				clientOpt = nats.UserInfo("bridge", natsSecret)
				natsURL = strings.Replace(srv.URL(), "nats://", "nats://bridge:"+natsSecret+"@", 1)
			}
			path := writeConfig(t, agentURL, natsURL, edits...)
			keyPEM, err := os.ReadFile(filepath.Join(filepath.Dir(path), "bot.pem"))
			if err != nil {
				t.Fatal(err)
			}

			r := startRun(t, path)
			var addr string
			natstest.WaitFor(t, 20*time.Second, func() error {
				if addr = healthAddr(r.stderr.String()); addr != "" {
					return nil
				}
				return fmt.Errorf("no health address in the logs yet")
			})
			sc := startScraper(addr)
			defer sc.finish() // on failure; finish is idempotent

			js, err := jetstream.New(natstest.Connect(t, srv, clientOpt))
			if err != nil {
				t.Fatal(err)
			}
			waitReading(t, agent)
			gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 5})
			total := 0
			emit := func(n int) {
				agent.Emit(gen.Mix(n)...)
				total += n
				waitStored(t, js, total)
				waitAcked(t, agent, total) // by a read that passed authorization
			}
			emit(10)
			for range 2 { // the Agent answers 401; the bridge logs in again
				before := agent.Stats()
				agent.ExpireSessions()
				emit(10)
				natstest.WaitFor(t, 10*time.Second, func() error {
					// Both logins done: an expiry between them would expire the
					// new session token too (one refresh per request, then 401).
					if s := agent.Stats(); s.Unauthorized <= before.Unauthorized || s.Auths <= before.Auths || s.KMAuths <= before.KMAuths {
						return fmt.Errorf("no 401 and new logins yet: %d 401s, %d pod and %d key manager logins", s.Unauthorized, s.Auths, s.KMAuths)
					}
					return nil
				})
			}
			natstest.WaitFor(t, 10*time.Second, func() error {
				if c := sc.okCounts(); c["/readyz"] == 0 || c["/metrics"] == 0 || c["/healthz"] == 0 {
					return fmt.Errorf("scrapes answered 200 so far: %v", c)
				}
				return nil
			})
			if err := r.stop(t); err != nil {
				t.Errorf("run after cancellation: %v, want nil", err)
			}
			scraped, counts := sc.finish()

			// The session went through what it should have.
			st := agent.Stats()
			if st.Faults[symphonytest.FaultServerError] != 1 {
				t.Errorf("injected login 503s: %d, want 1", st.Faults[symphonytest.FaultServerError])
			}
			if !regexp.MustCompile(`start-up step failed; retrying.*key manager.*503`).MatchString(r.stderr.String()) {
				t.Error("no retried key manager 503 in the logs")
			}
			if st.Auths < 3 || st.Unauthorized < 2 {
				t.Errorf("logins %d, 401s %d: want at least 3 and 2", st.Auths, st.Unauthorized)
			}
			if !strings.Contains(r.stderr.String(), "DEBUG") && !strings.Contains(r.stderr.String(), `"level":"DEBUG"`) {
				t.Error("no debug line in the logs: the run was not at debug level")
			}
			if !strings.Contains(scraped, "symbridge_") {
				t.Error("no metrics in the /metrics bodies")
			}
			t.Logf("%d log bytes, %d distinct health/metrics bodies, 200s by path %v, %d logins, %d 401s",
				len(r.stderr.String()), strings.Count(scraped, "GET /"), counts, st.Auths, st.Unauthorized)

			secrets := sessionSecrets(t, agent, rec, keyPEM, natsSecret)
			haystack := r.output([]string{scraped})
			assertNoLeak(t, haystack, secrets...)
			assertCheckerWorks(t, haystack, secrets)
		})
	}
}

// waitAcked waits until the bridge's feed has acknowledged n events: the
// ack travels on the next read, so that read was authorised.
func waitAcked(t *testing.T, agent *symphonytest.Agent, n int) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		for _, f := range agent.Feeds() {
			if f.Kind == symphonytest.KindDatafeed && f.Acked == int64(n) {
				return nil
			}
		}
		return fmt.Errorf("acked: %+v, want %d", agent.Feeds(), n)
	})
}

// sessionSecrets gathers every secret of a session and checks there are as
// many as the session should have produced.
func sessionSecrets(t *testing.T, agent *symphonytest.Agent, rec *credRecorder, keyPEM []byte, more ...string) []string {
	t.Helper()
	body := leakcheck.PEMBody(keyPEM)
	if len(body) < 1000 {
		t.Fatalf("PEM body of %d bytes: not an RSA key", len(body))
	}
	issued, jwts := agent.IssuedTokens(), rec.loginJWTs()
	for _, h := range rec.headerTokens() {
		if !slices.Contains(issued, h) {
			t.Errorf("a request carried a token the Agent did not issue")
		}
	}
	t.Logf("secrets: the private key, %d issued tokens, %d login JWTs, %d others", len(issued), len(jwts), len(more))
	return slices.Concat([]string{body}, issued, jwts, more)
}

// assertCheckerWorks proves the search is not vacuous: a piece of each
// secret, put in the middle of the real output, is found.
func assertCheckerWorks(t *testing.T, haystack string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if len(s) < leakcheck.WindowLen {
			t.Errorf("secret %d is shorter than a window", i)
			continue
		}
		off := len(s) / 3
		piece := s[off : off+leakcheck.WindowLen]
		mid := len(haystack) / 2
		planted := haystack[:mid] + ` err="token ` + piece + `"` + haystack[mid:]
		if found := leakcheck.Find(planted, secrets...); len(found) == 0 {
			t.Errorf("the checker misses a planted 12-byte piece of secret %d", i)
		}
	}
}

// TestNoSecretLeaks_CredentialsRejected: a run whose key the pod rejects
// exits with status 1 and prints no piece of the key or of the JWT it
// signed, at debug level, in either log format.
func TestNoSecretLeaks_CredentialsRejected(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			_, other := keys(t)
			agent, agentURL, rec := newRecordedAgent(t, symphonytest.Config{PublicKey: &other.PublicKey, LongPoll: time.Second})
			natsSecret := randomSecret(t, "nats-secret-")
			srv := natstest.RunServer(t, natstest.WithToken(natsSecret))
			path := writeConfig(t, agentURL, srv.URL(), "level: info", "level: debug", "format: json", "format: "+format,
				"nats:\n", "nats:\n  token: "+natsSecret+"\n")
			keyPEM, err := os.ReadFile(filepath.Join(filepath.Dir(path), "bot.pem"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := &running{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, stopped: true}
			r.err = run(ctx, []string{"run", "--config", path}, nil, r.stdout, r.stderr)
			if r.err == nil || ctx.Err() != nil {
				t.Fatalf("run with a rejected key: %v (ctx %v); want a prompt error", r.err, ctx.Err())
			}
			if code := exitCode(r.err, io.Discard); code != 1 {
				t.Errorf("exit code %d, want 1 (error %v)", code, r.err)
			}
			if len(rec.loginJWTs()) == 0 {
				t.Fatal("no login JWT recorded: the run never tried to log in")
			}
			secrets := sessionSecrets(t, agent, rec, keyPEM, natsSecret)
			haystack := r.output(nil)
			assertNoLeak(t, haystack, secrets...)
			assertCheckerWorks(t, haystack, secrets)
		})
	}
}

package symphony_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/testshared"

	"github.com/golang-jwt/jwt/v5"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// The helpers here are a deliberately small stand-in for the pod, key
// manager and Agent: enough auth to exercise the client, with per-test
// handlers for the feeds. The full simulator lives in symphonytest.

const stubUser = "bridge-bot"

// testBotKey is one RSA key for the whole test binary (generation is
// slow): the simulator's bot key.
func testBotKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, _, err := symphonytest.BotKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// stubSymphony serves pod and key manager RSA authentication and the Agent
// info on one httptest server; tests add their Agent handlers to Mux.
type stubSymphony struct {
	t   *testing.T
	Srv *httptest.Server
	Mux *http.ServeMux

	PodAuths, KMAuths, InfoCalls, Unauthorized atomic.Int32

	mu         sync.Mutex
	gen        int
	session    string
	km         string
	skdClaim   bool
	version    string
	podStatus  int
	kmStatus   int
	infoStatus int
	lastClaims jwt.MapClaims
	lastAlg    string
	lastJWT    string
	lastKMHdr  []string
	overrides  map[string]http.HandlerFunc
	// issued: every token the stub handed out and every JWT it received,
	// for the leak tests.
	issued []string
}

// Override replaces one of the stub's own handlers (pattern as registered).
func (s *stubSymphony) Override(pattern string, h http.HandlerFunc) {
	s.set(func(s *stubSymphony) { s.overrides[pattern] = h })
}

// handle registers a stub handler that a test may Override.
func (s *stubSymphony) handle(pattern string, h http.HandlerFunc) {
	s.Mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		o := s.overrides[pattern]
		s.mu.Unlock()
		if o != nil {
			o(w, r)
			return
		}
		h(w, r)
	})
}

func newStub(t *testing.T) *stubSymphony {
	t.Helper()
	s := &stubSymphony{t: t, Mux: http.NewServeMux(), version: "Agent-23.9.2-Linux", overrides: map[string]http.HandlerFunc{}}
	s.handle("POST /login/pubkey/authenticate", func(w http.ResponseWriter, r *http.Request) {
		s.PodAuths.Add(1)
		if st := s.status(&s.podStatus); st != 0 {
			writeJSON(w, st, map[string]any{"code": st, "message": "pod says no"})
			return
		}
		if !s.verifyJWT(w, r) {
			return
		}
		s.mu.Lock()
		s.gen++
		s.session = s.newSessionToken()
		tok := s.session
		s.issued = append(s.issued, tok)
		s.mu.Unlock()
		writeJSON(w, 200, map[string]string{"name": "sessionToken", "token": tok})
	})
	s.handle("POST /relay/pubkey/authenticate", func(w http.ResponseWriter, r *http.Request) {
		s.KMAuths.Add(1)
		if st := s.status(&s.kmStatus); st != 0 {
			writeJSON(w, st, map[string]any{"code": st, "message": "KeyManager is not registered in the pod"})
			return
		}
		if !s.verifyJWT(w, r) {
			return
		}
		s.mu.Lock()
		s.km = fmt.Sprintf("km-token-%d-very-secret", s.gen)
		tok := s.km
		s.issued = append(s.issued, tok)
		s.mu.Unlock()
		writeJSON(w, 200, map[string]string{"name": "keyManagerToken", "token": tok})
	})
	s.handle("GET /agent/v1/info", func(w http.ResponseWriter, r *http.Request) {
		s.InfoCalls.Add(1)
		if st := s.status(&s.infoStatus); st != 0 {
			writeJSON(w, st, map[string]any{"code": st, "message": "down"})
			return
		}
		s.mu.Lock()
		v := s.version
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"version": v, "url": s.Srv.URL + "/agent", "onPrem": true})
	})
	s.Srv = httptest.NewServer(s.Mux)
	t.Cleanup(s.Srv.Close)
	return s
}

func (s *stubSymphony) status(p *int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *p
}

func (s *stubSymphony) set(f func(s *stubSymphony)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// newSessionToken: an opaque token, or a JWT with the SKD claim (signed with
// a throwaway HMAC key: the client reads it unverified).
func (s *stubSymphony) newSessionToken() string {
	if !s.skdClaim {
		return fmt.Sprintf("session-token-%d-very-secret", s.gen)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": stubUser, "userId": 7696581394433, "canUseSimplifiedKeyDelivery": true, "gen": s.gen,
	}).SignedString([]byte("pod-signing-key"))
	if err != nil {
		panic(err)
	}
	return tok
}

func (s *stubSymphony) verifyJWT(w http.ResponseWriter, r *http.Request) bool {
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"code": 400, "message": "bad body"})
		return false
	}
	s.set(func(s *stubSymphony) { s.issued = append(s.issued, body.Token) })
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(body.Token, claims, func(*jwt.Token) (any, error) {
		return &testBotKey(s.t).PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS512"}), jwt.WithExpirationRequired(), jwt.WithSubject(stubUser))
	if err != nil {
		writeJSON(w, 401, map[string]any{"code": 401, "message": "Invalid token " + body.Token})
		return false
	}
	s.mu.Lock()
	s.lastClaims, s.lastAlg, s.lastJWT = claims, tok.Method.Alg(), body.Token
	s.mu.Unlock()
	return true
}

// Expire makes the current tokens invalid (the pod's session ended).
func (s *stubSymphony) Expire() { s.set(func(s *stubSymphony) { s.session = "expired" }) }

// authorized answers 401 and returns false unless r carries the current
// tokens. Under simplified key delivery the key manager header must be absent.
func (s *stubSymphony) authorized(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	sess, km := s.session, s.km
	s.lastKMHdr = r.Header.Values("keyManagerToken")
	s.mu.Unlock()
	got := r.Header.Get("sessionToken")
	kmOK := r.Header.Get("keyManagerToken") == km || km == ""
	if got == "" || got != sess || !kmOK {
		s.Unauthorized.Add(1)
		writeJSON(w, 401, map[string]any{"code": 401, "message": "Invalid session " + got})
		return false
	}
	return true
}

func (s *stubSymphony) config() symphony.ClientConfig {
	return symphony.ClientConfig{
		PodURL:        s.Srv.URL,
		AgentURL:      s.Srv.URL,
		KeyManagerURL: s.Srv.URL,
		Username:      stubUser,
		PrivateKeyPEM: pkcs1PEM(testBotKey(s.t)),
	}
}

func (s *stubSymphony) client(mod ...func(*symphony.ClientConfig)) *symphony.Client {
	s.t.Helper()
	cfg := s.config()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := symphony.NewClient(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// secrets are every token and JWT the stub handed out or received.
func (s *stubSymphony) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []string{s.session, s.km, s.lastJWT}
}

// allSecrets are every token and JWT the stub ever handed out or received.
func (s *stubSymphony) allSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(t *testing.T, r *http.Request, v any) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read request body: %v", err)
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Errorf("request body %q: %v", b, err)
	}
}

const oneEvent = `{"id":"e1","type":"MESSAGESENT","timestamp":1700000000000,` +
	`"initiator":{"user":{"userId":344147139494862}},` +
	`"payload":{"messageSent":{"message":{"messageId":"m1","stream":{"streamId":"s1","streamType":"ROOM"}}}}}`

func eventList(ackID string, events ...string) string {
	b, _ := json.Marshal(ackID)
	list := "["
	for i, e := range events {
		if i > 0 {
			list += ","
		}
		list += e
	}
	return `{"events":` + list + `],"ackId":` + string(b) + `}`
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// readShared reads a file of ../shared next to the repository (reference
// samples and specs), for the conformance subtests: a plain clone skips
// them, and under CI, which always has it, its absence fails the test.
func readShared(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testshared.Path(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// within fails the test if f does not return within d.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %s", d)
	}
}

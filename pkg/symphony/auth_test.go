package symphony_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// registerRead adds a datafeed v2 read handler that needs valid tokens.
func registerRead(s *stubSymphony, onRead func(w http.ResponseWriter, r *http.Request)) {
	s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice a client that goes away
		// (it watches the connection only once the body is consumed).
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !s.authorized(w, r) {
			return
		}
		if onRead != nil {
			onRead(w, r)
			return
		}
		writeRaw(w, 200, eventList("ack-1", oneEvent))
	})
}

func registerList(s *stubSymphony, ids ...string) {
	s.Mux.HandleFunc("GET /agent/v5/datafeeds", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		feeds := []map[string]string{}
		for _, id := range ids {
			feeds = append(feeds, map[string]string{"id": id, "type": "fanout"})
		}
		writeJSON(w, 200, feeds)
	})
}

func TestAuthenticate_JWT(t *testing.T) {
	for _, tc := range []struct {
		name string
		pem  func(t *testing.T) []byte
	}{
		{"PKCS1", func(t *testing.T) []byte { return pkcs1PEM(testBotKey(t)) }},
		{"PKCS8", func(t *testing.T) []byte { return pkcs8PEM(t, testBotKey(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			c := s.client(func(cfg *symphony.ClientConfig) { cfg.PrivateKeyPEM = tc.pem(t) })
			before := time.Now()
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			// The stub verified the signature with the public key, RS512 only,
			// sub = username and exp required; check the claims exactly.
			s.mu.Lock()
			claims, alg := s.lastClaims, s.lastAlg
			s.mu.Unlock()
			if alg != "RS512" {
				t.Errorf("alg = %q, want RS512", alg)
			}
			if len(claims) != 2 || claims["sub"] != stubUser {
				t.Errorf("claims = %v, want exactly sub=%q and exp", claims, stubUser)
			}
			exp, err := claims.GetExpirationTime()
			if err != nil || exp == nil {
				t.Fatalf("exp: %v", err)
			}
			lo, hi := before.Add(239*time.Second).Truncate(time.Second), time.Now().Add(241*time.Second)
			if exp.Before(lo) || exp.After(hi) {
				t.Errorf("exp = %s, want now+240s (between %s and %s)", exp, lo, hi)
			}
			if s.PodAuths.Load() != 1 || s.KMAuths.Load() != 1 {
				t.Errorf("pod auths %d, key manager auths %d; want 1 and 1", s.PodAuths.Load(), s.KMAuths.Load())
			}
			if c.SimplifiedKeyDelivery() {
				t.Error("SimplifiedKeyDelivery() = true for an opaque session token")
			}
		})
	}
}

func TestAuthenticate_Errors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pod, km   int
		wantClass symphony.Class
		wantIs    error
	}{
		{"pod 401 is fatal", 401, 0, symphony.ClassFatal, symphony.ErrAuthRejected},
		{"key manager 401 is fatal", 0, 401, symphony.ClassFatal, symphony.ErrAuthRejected},
		{"pod 503 is transient", 503, 0, symphony.ClassRetry, symphony.ErrAuthUnavailable},
		{"pod 500 is transient", 500, 0, symphony.ClassRetry, symphony.ErrAuthUnavailable},
		{"pod 403 is transient", 403, 0, symphony.ClassRetry, symphony.ErrAuthUnavailable},
		{"key manager not ready (400) is transient", 0, 400, symphony.ClassRetry, symphony.ErrAuthUnavailable},
		{"key manager 502 is transient", 0, 502, symphony.ClassRetry, symphony.ErrAuthUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			s.set(func(s *stubSymphony) { s.podStatus, s.kmStatus = tc.pod, tc.km })
			err := s.client().Authenticate(context.Background())
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			if got := symphony.Classify(err); got != tc.wantClass {
				t.Errorf("Classify(%v) = %s, want %s", err, got, tc.wantClass)
			}
			var apiErr *symphony.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != max(tc.pod, tc.km) {
				t.Errorf("err = %v, want an *APIError with status %d", err, max(tc.pod, tc.km))
			}
			want := symphony.EndpointPod
			if tc.km != 0 {
				want = symphony.EndpointKeyManager
			}
			var authErr *symphony.AuthError
			if !errors.As(err, &authErr) || authErr.Endpoint != want {
				t.Errorf("err = %v, want an *AuthError at the %s", err, want)
			} else if authErr.Error() != authErr.Err.Error() {
				t.Errorf("AuthError changes the message: %q, wrapped %q", authErr.Error(), authErr.Err.Error())
			}
		})
	}
}

func TestAuthenticate_NetworkErrorIsTransient(t *testing.T) {
	s := newStub(t)
	c := s.client()
	s.Srv.Close()
	err := c.Authenticate(context.Background())
	if !errors.Is(err, symphony.ErrAuthUnavailable) || symphony.Classify(err) != symphony.ClassRetry {
		t.Fatalf("err = %v (class %s), want ErrAuthUnavailable / retry", err, symphony.Classify(err))
	}
}

func TestSimplifiedKeyDelivery(t *testing.T) {
	for _, tc := range []struct {
		name       string
		claim      bool
		version    string
		infoStatus int
		wantSKD    bool
	}{
		{"claim and 24.12", true, "Agent-24.12.0-Linux", 0, true},
		{"claim and 25.8", true, "Agent-25.8.1", 0, true},
		{"claim and 24.11", true, "Agent-24.11.3", 0, false},
		{"claim and 2.55", true, "Agent-2.55.0-SNAPSHOT-Linux-4.4.86+", 0, false},
		{"claim and unparsable version", true, "dev-build", 0, false},
		{"claim but agent info fails", true, "Agent-25.8.1", 503, false},
		{"no claim, new agent", false, "Agent-26.3.0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			s.set(func(s *stubSymphony) { s.skdClaim, s.version, s.infoStatus = tc.claim, tc.version, tc.infoStatus })
			registerRead(s, nil)
			c := s.client()
			f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
			registerList(s, "feed1_f")
			if _, err := f.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Read(context.Background(), ""); err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := c.SimplifiedKeyDelivery(); got != tc.wantSKD {
				t.Errorf("SimplifiedKeyDelivery() = %v, want %v", got, tc.wantSKD)
			}
			wantKM := int32(1)
			if tc.wantSKD {
				wantKM = 0
			}
			if got := s.KMAuths.Load(); got != wantKM {
				t.Errorf("key manager authentications = %d, want %d", got, wantKM)
			}
			s.mu.Lock()
			hdr := s.lastKMHdr
			s.mu.Unlock()
			if tc.wantSKD && len(hdr) != 0 {
				t.Errorf("keyManagerToken header sent under SKD: %d values", len(hdr))
			}
			if !tc.wantSKD && (len(hdr) != 1 || hdr[0] == "") {
				t.Errorf("keyManagerToken header = %d values, want one", len(hdr))
			}
			if !tc.claim && s.InfoCalls.Load() != 0 {
				t.Errorf("agent info called %d times without the SKD claim", s.InfoCalls.Load())
			}
		})
	}
}

func TestReauthenticateOn401(t *testing.T) {
	s := newStub(t)
	registerRead(s, nil)
	c := s.client()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	registerList(s, "feed1_f")
	ctx := context.Background()
	if _, err := f.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if s.PodAuths.Load() != 1 {
		t.Fatalf("pod auths after open = %d, want 1", s.PodAuths.Load())
	}
	s.Expire()
	b, err := f.Read(ctx, "")
	if err != nil {
		t.Fatalf("Read after expiry: %v", err)
	}
	if len(b.Events) != 1 || b.AckID != "ack-1" {
		t.Errorf("batch = %d events, ackId %q", len(b.Events), b.AckID)
	}
	if got := s.PodAuths.Load(); got != 2 {
		t.Errorf("pod auths = %d, want 2 (exactly one re-authentication)", got)
	}
	if got := s.KMAuths.Load(); got != 2 {
		t.Errorf("key manager auths = %d, want 2", got)
	}
	if got := s.Unauthorized.Load(); got != 1 {
		t.Errorf("401 answers = %d, want 1", got)
	}
}

func TestReauthenticate_Persistent401IsReturned(t *testing.T) {
	s := newStub(t)
	s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]any{"code": 401, "message": "no"})
	})
	registerList(s, "feed1_f")
	c := s.client()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	if _, err := f.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.Read(context.Background(), "")
	var apiErr *symphony.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("err = %v, want the 401 *APIError", err)
	}
	if got := s.PodAuths.Load(); got != 2 {
		t.Errorf("pod auths = %d, want 2 (one re-authentication, no loop)", got)
	}
	if !strings.Contains(err.Error(), "feed1_f") {
		t.Errorf("error %q does not name the feed", err)
	}
}

// TestReauthenticate_Concurrent: readers hit by the same expired token must
// re-authenticate once between them, not once each.
func TestReauthenticate_Concurrent(t *testing.T) {
	const readers = 8
	s := newStub(t)
	var (
		mu      sync.Mutex
		waiting int
		release = make(chan struct{})
	)
	s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		valid := r.Header.Get("sessionToken") == s.session
		s.mu.Unlock()
		if !valid {
			// Hold every stale request until all readers are here, so they
			// all get their 401 for the same token.
			mu.Lock()
			waiting++
			if waiting == readers {
				close(release)
			}
			mu.Unlock()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
				t.Error("not all readers arrived")
			}
		}
		if !s.authorized(w, r) {
			return
		}
		writeRaw(w, 200, eventList("ack", oneEvent))
	})
	registerList(s, "feed1_f")
	c := s.client()
	ctx := context.Background()
	feeds := make([]*symphony.DatafeedV2, readers)
	for i := range feeds {
		feeds[i] = symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
		if _, err := feeds[i].Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.Expire()
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Go(func() {
			if _, err := f.Read(ctx, ""); err != nil {
				t.Errorf("Read: %v", err)
			}
		})
	}
	wg.Wait()
	if got := s.PodAuths.Load(); got != 2 {
		t.Errorf("pod auths = %d, want 2 (%d readers share one re-authentication)", got, readers)
	}
	if got := s.Unauthorized.Load(); got != readers {
		t.Errorf("401 answers = %d, want %d", got, readers)
	}
}

func TestParsePrivateKey_Errors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	good := pkcs1PEM(testBotKey(t))
	garbled := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("definitely not DER, secret-ish bytes")})
	for _, tc := range []struct {
		name string
		pem  []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM private key block"},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "not RSA"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"garbled PKCS1", garbled, "not a valid PKCS#1"},
		{"certificate only", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "no PEM private key block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := symphony.ClientConfig{PodURL: "https://p", AgentURL: "https://a", KeyManagerURL: "https://k", Username: "u", PrivateKeyPEM: tc.pem}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "PrivateKeyPEM:") {
				t.Fatalf("Validate() = %v, want a PrivateKeyPEM error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-ish") || strings.Contains(err.Error(), string(good[40:60])) {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
	// A certificate before the key in one file is skipped.
	withCert := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), good...)
	cfg := symphony.ClientConfig{PodURL: "https://p", AgentURL: "https://a", KeyManagerURL: "https://k", Username: "u", PrivateKeyPEM: withCert}
	if err := cfg.Validate(); err != nil {
		t.Errorf("certificate then key: %v", err)
	}
}

package symphony_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"
)

func TestClientConfig_Validate(t *testing.T) {
	base := func() symphony.ClientConfig {
		return symphony.ClientConfig{
			PodURL: "https://pod.example.com:443", AgentURL: "https://agent.example.com:8443/ctx",
			KeyManagerURL: "https://km.example.com", Username: "bot", PrivateKeyPEM: pkcs1PEM(testBotKey(t)),
		}
	}
	cert := &tls.Certificate{Certificate: [][]byte{{1}}, PrivateKey: testBotKey(t)}
	for _, tc := range []struct {
		name  string
		mod   func(*symphony.ClientConfig)
		field string // "" = valid
	}{
		{"valid RSA", func(*symphony.ClientConfig) {}, ""},
		{"valid http simulator", func(c *symphony.ClientConfig) { c.PodURL = "http://127.0.0.1:1234" }, ""},
		{"valid certificate", func(c *symphony.ClientConfig) {
			c.PrivateKeyPEM, c.Certificate, c.SessionAuthURL = nil, cert, "https://pod.example.com:8444"
		}, ""},
		{"no pod", func(c *symphony.ClientConfig) { c.PodURL = "" }, "PodURL"},
		{"agent without scheme", func(c *symphony.ClientConfig) { c.AgentURL = "agent.example.com" }, "AgentURL"},
		{"key manager ftp", func(c *symphony.ClientConfig) { c.KeyManagerURL = "ftp://km" }, "KeyManagerURL"},
		{"pod with credentials", func(c *symphony.ClientConfig) { c.PodURL = "https://u:p@pod" }, "PodURL"},
		{"no username", func(c *symphony.ClientConfig) { c.Username = " " }, "Username"},
		{"no credentials", func(c *symphony.ClientConfig) { c.PrivateKeyPEM = nil }, "PrivateKeyPEM, Certificate"},
		{"both credentials", func(c *symphony.ClientConfig) { c.Certificate = cert }, "PrivateKeyPEM, Certificate"},
		{"certificate without session auth", func(c *symphony.ClientConfig) { c.PrivateKeyPEM, c.Certificate = nil, cert }, "SessionAuthURL"},
		{"certificate without key", func(c *symphony.ClientConfig) {
			c.PrivateKeyPEM, c.Certificate, c.SessionAuthURL = nil, &tls.Certificate{Certificate: [][]byte{{1}}}, "https://s"
		}, "Certificate"},
		{"read timeout under the long poll", func(c *symphony.ClientConfig) { c.ReadTimeout = 30 * time.Second }, "ReadTimeout"},
		{"negative connect timeout", func(c *symphony.ClientConfig) { c.ConnectTimeout = -time.Second }, "ConnectTimeout"},
		{"negative body cap", func(c *symphony.ClientConfig) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
		{"proxy without host", func(c *symphony.ClientConfig) { c.ProxyURL = "proxy:3128" }, "ProxyURL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field+":")):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.field)
			}
		})
	}
}

func TestClientConfig_SecretsNotPrinted(t *testing.T) {
	key := pkcs1PEM(testBotKey(t))
	cfg := symphony.ClientConfig{PodURL: "https://p", AgentURL: "https://a", KeyManagerURL: "https://k", Username: "bot", PrivateKeyPEM: key}
	body := string(key[40:80])
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(s, body) || strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("printed config holds the key: %s", s)
		}
	}
	cfg.ProxyURL = "http://user:hunter2@proxy:3128:bad"
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %v, want an error without the proxy password", err)
	}
}

// TestSecretsNotInErrors: servers that echo what they received must not
// make a token, the JWT or the key show up in an error.
func TestSecretsNotInErrors(t *testing.T) {
	s := newStub(t)
	var status atomic.Int32
	status.Store(401)
	s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		msg := "bad tokens " + r.Header.Get("sessionToken") + " / " + r.Header.Get("keyManagerToken")
		writeJSON(w, int(status.Load()), map[string]any{"code": status.Load(), "message": msg})
	})
	registerList(s, "feed1_f")
	c := s.client()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	ctx := context.Background()
	if _, err := f.Open(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(err error) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		for _, secret := range append(s.secrets(), string(pkcs1PEM(testBotKey(t))[40:80])) {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains a secret", err)
			}
		}
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("error %q: the echoed token was expected as [redacted]", err)
		}
	}
	_, err := f.Read(ctx, "")
	check(err)
	status.Store(500)
	_, err = f.Read(ctx, "")
	check(err)

	// The pod echoing the JWT in its 401.
	s2 := newStub(t)
	s2.Override("POST /login/pubkey/authenticate", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Token string }
		readJSON(t, r, &body)
		s2.set(func(s *stubSymphony) { s.lastJWT = body.Token })
		writeJSON(w, 401, map[string]any{"code": 401, "message": "Invalid token " + body.Token})
	})
	err = s2.client().Authenticate(ctx)
	if !errors.Is(err, symphony.ErrAuthRejected) {
		t.Fatalf("err = %v, want ErrAuthRejected", err)
	}
	check(err)
}

func TestAPIError_FromSymphonyBody(t *testing.T) {
	s := newStub(t)
	long := strings.Repeat("x", 500)
	s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 503, map[string]any{"code": 4242, "message": "busy\n" + long})
	})
	registerList(s, "feed1_f")
	f := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	_, err := f.Read(context.Background(), "")
	var apiErr *symphony.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.StatusCode != 503 || apiErr.Code != 4242 || apiErr.RetryAfter != 7*time.Second {
		t.Errorf("APIError = %+v", apiErr)
	}
	if len(apiErr.Message) > 210 || strings.Contains(apiErr.Message, "\n") || !strings.HasPrefix(apiErr.Message, "busy x") {
		t.Errorf("message not cut to one short line: %q", apiErr.Message)
	}
	if !strings.Contains(err.Error(), "read datafeed v2 feed1_f") {
		t.Errorf("error %q does not name the operation and feed", err)
	}
	if symphony.Classify(err) != symphony.ClassRetry {
		t.Errorf("Classify = %s, want retry", symphony.Classify(err))
	}
}

func TestBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
	}{
		{"body over the cap", func(w http.ResponseWriter, r *http.Request) {
			writeRaw(w, 200, eventList("a", strings.Repeat(oneEvent+",", 20)+oneEvent))
		}},
		{"truncated JSON", func(w http.ResponseWriter, r *http.Request) {
			writeRaw(w, 200, eventList("a", oneEvent)[:60])
		}},
		{"connection cut mid-body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"events":[`))
			// returning early makes the server close the connection
		}},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			writeRaw(w, 200, "<html>proxy error</html>")
		}},
		{"no ackId", func(w http.ResponseWriter, r *http.Request) {
			writeRaw(w, 200, `{"events":[]}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t)
			registerRead(s, tc.handler)
			registerList(s, "feed1_f")
			c := s.client(func(cfg *symphony.ClientConfig) { cfg.MaxBodyBytes = 2048 })
			_, err := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{}).Read(context.Background(), "")
			if !errors.Is(err, symphony.ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			if symphony.Classify(err) != symphony.ClassRetry {
				t.Errorf("Classify = %s, want retry", symphony.Classify(err))
			}
			if !strings.Contains(err.Error(), "feed1_f") {
				t.Errorf("error %q does not name the feed", err)
			}
		})
	}
}

func TestBodyCap_ExactLimitPasses(t *testing.T) {
	s := newStub(t)
	body := eventList("a", oneEvent)
	registerRead(s, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, body) })
	registerList(s, "feed1_f")
	c := s.client(func(cfg *symphony.ClientConfig) { cfg.MaxBodyBytes = int64(len(body)) })
	if _, err := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{}).Read(context.Background(), ""); err != nil {
		t.Fatalf("body of exactly MaxBodyBytes: %v", err)
	}
}

func TestReadCanceledDuringLongPoll(t *testing.T) {
	s := newStub(t)
	entered := make(chan struct{}, 1)
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	registerList(s, "feed1_f")
	f := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-entered
		cancel()
	}()
	var err error
	start := time.Now()
	within(t, 5*time.Second, func() { _, err = f.Read(ctx, "") })
	if !errors.Is(err, context.Canceled) || symphony.Classify(err) != symphony.ClassCanceled {
		t.Fatalf("err = %v (class %s), want context.Canceled", err, symphony.Classify(err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

// TestTricklingServerIsCutOff: a server sending one byte at a time cannot
// hold a read past the request deadline.
func TestTricklingServerIsCutOff(t *testing.T) {
	s := newStub(t)
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			_ = rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	registerList(s, "feed1_f")
	c := s.client()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	if _, err := f.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	symphony.SetRequestTimeoutForTest(c, 300*time.Millisecond)
	var err error
	within(t, 5*time.Second, func() { _, err = f.Read(context.Background(), "") })
	if err == nil || symphony.Classify(err) != symphony.ClassRetry || !strings.Contains(err.Error(), "no complete response") {
		t.Fatalf("err = %v (class %s), want a transient deadline error", err, symphony.Classify(err))
	}
}

// TestAgentInfoAndSessionInfo decodes /agent/v1/info and
// /pod/v2/sessioninfo bodies written here; its "samples" subtest, a
// conformance test, decodes the BDKs' real ones from ../shared.
func TestAgentInfoAndSessionInfo(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		checkAgentAndSessionInfo(t,
			[]byte(`{"hostname":"agent-1","version":"Agent-2.55.0-SNAPSHOT-Linux-4.4.86+","url":"https://agent.example.com/agent","onPrem":true}`),
			[]byte(`{"id":7696581394433,"username":"admin@symphony.com","displayName":"Symphony Admin","roles":["INDIVIDUAL"],"avatars":[]}`))
	})
	t.Run("samples", func(t *testing.T) {
		agentInfo := readShared(t, "symphony-samples", "bdk-python", "agent_info.json")
		botInfo := readShared(t, "symphony-samples", "bdk-java", "bot_info.json")
		checkAgentAndSessionInfo(t, agentInfo, botInfo)
	})
}

// checkAgentAndSessionInfo serves agentInfo and botInfo, which describe
// Agent-2.55.0-SNAPSHOT and the user 7696581394433, admin@symphony.com.
func checkAgentAndSessionInfo(t *testing.T, agentInfo, botInfo []byte) {
	s := newStub(t)
	s.Override("GET /agent/v1/info", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("sessionToken") != "" {
			t.Error("agent info sent a session token")
		}
		writeRaw(w, 200, string(agentInfo))
	})
	s.Mux.HandleFunc("GET /pod/v2/sessioninfo", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		valid := r.Header.Get("sessionToken") == s.session
		s.mu.Unlock()
		if !valid || r.Header.Get("keyManagerToken") != "" {
			t.Error("sessioninfo wants the session token only")
		}
		writeRaw(w, 200, string(botInfo))
	})
	c := s.client()
	ctx := context.Background()
	info, err := c.AgentInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "Agent-2.55.0-SNAPSHOT-Linux-4.4.86+" || info.VersionAtLeast(24, 12) || !info.VersionAtLeast(2, 55) || info.VersionAtLeast(2, 56) {
		t.Errorf("AgentInfo = %+v", info)
	}
	u, err := c.SessionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != 7696581394433 || u.Username != "admin@symphony.com" || u.DisplayName != "Symphony Admin" {
		t.Errorf("SessionInfo = %+v", u)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	s := newStub(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed to %s with sessionToken=%v", r.URL, r.Header.Get("sessionToken") != "")
	}))
	defer other.Close()
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	registerList(s, "feed1_f")
	_, err := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{}).Read(context.Background(), "")
	var apiErr *symphony.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want an *APIError 307", err)
	}
}

func TestTLS_RootCAs(t *testing.T) {
	s := newStub(t)
	registerRead(s, nil)
	registerList(s, "feed1_f")
	srv := httptest.NewUnstartedServer(s.Mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	at := func(cfg *symphony.ClientConfig) {
		cfg.PodURL, cfg.AgentURL, cfg.KeyManagerURL = srv.URL, srv.URL, srv.URL
	}

	ctx := context.Background()
	c := s.client(at, func(cfg *symphony.ClientConfig) { cfg.RootCAs = pool })
	b, err := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{}).Read(ctx, "")
	if err != nil || len(b.Events) != 1 {
		t.Fatalf("Read over TLS with RootCAs: %d events, %v", len(b.Events), err)
	}

	// Default verification rejects the unknown CA, transiently.
	err = s.client(at).Authenticate(ctx)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || symphony.Classify(err) != symphony.ClassRetry {
		t.Errorf("without RootCAs: %v (class %s), want an unknown-authority error", err, symphony.Classify(err))
	}
	// Only when asked.
	if err := s.client(at, func(cfg *symphony.ClientConfig) { cfg.InsecureSkipVerify = true }).Authenticate(ctx); err != nil {
		t.Errorf("InsecureSkipVerify: %v", err)
	}
}

// TestCertificateAuth: certificate authentication presents the client
// certificate to session auth and the key manager (mutual TLS), and
// nowhere else.
func TestCertificateAuth(t *testing.T) {
	ca, caKey := newTestCA(t)
	clientCert := newClientCert(t, ca, caKey, stubUser)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca)

	var sessionAuths, keyAuths atomic.Int32
	authMux := http.NewServeMux()
	cn := func(r *http.Request) string {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return ""
		}
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	authMux.HandleFunc("POST /sessionauth/v1/authenticate", func(w http.ResponseWriter, r *http.Request) {
		sessionAuths.Add(1)
		if cn(r) != stubUser {
			writeJSON(w, 401, map[string]any{"message": "who are you"})
			return
		}
		writeJSON(w, 200, map[string]string{"name": "sessionToken", "token": "cert-session-token-123"})
	})
	authMux.HandleFunc("POST /keyauth/v1/authenticate", func(w http.ResponseWriter, r *http.Request) {
		keyAuths.Add(1)
		if cn(r) != stubUser {
			writeJSON(w, 401, map[string]any{"message": "who are you"})
			return
		}
		writeJSON(w, 200, map[string]string{"name": "keyManagerToken", "token": "cert-km-token-456"})
	})
	authSrv := httptest.NewUnstartedServer(authMux)
	authSrv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	authSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	authSrv.StartTLS()
	defer authSrv.Close()

	agentMux := http.NewServeMux()
	agentMux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		if cn(r) != "" {
			t.Error("client certificate presented to the Agent")
		}
		if r.Header.Get("sessionToken") != "cert-session-token-123" || r.Header.Get("keyManagerToken") != "cert-km-token-456" {
			writeJSON(w, 401, map[string]any{"message": "bad tokens"})
			return
		}
		writeRaw(w, 200, eventList("a1", oneEvent))
	})
	agentMux.HandleFunc("GET /agent/v5/datafeeds", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []map[string]string{{"id": "cert_f"}})
	})
	agentSrv := httptest.NewTLSServer(agentMux)
	defer agentSrv.Close()

	roots := x509.NewCertPool()
	roots.AddCert(authSrv.Certificate())
	roots.AddCert(agentSrv.Certificate())
	cfg := symphony.ClientConfig{
		PodURL: agentSrv.URL, AgentURL: agentSrv.URL, KeyManagerURL: authSrv.URL, SessionAuthURL: authSrv.URL,
		Username: stubUser, Certificate: &clientCert, RootCAs: roots,
	}
	c, err := symphony.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	b, err := f.Read(context.Background(), "")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if b.FeedID != "cert_f" || len(b.Events) != 1 || sessionAuths.Load() != 1 || keyAuths.Load() != 1 {
		t.Errorf("feed %q, %d events, %d session auths, %d key auths", b.FeedID, len(b.Events), sessionAuths.Load(), keyAuths.Load())
	}

	// A certificate the servers do not trust is refused by the TLS
	// handshake: transient (it may be a server-side trust store problem).
	otherCA, otherKey := newTestCA(t)
	stranger := newClientCert(t, otherCA, otherKey, stubUser)
	cfg.Certificate = &stranger
	c2, err := symphony.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Authenticate(context.Background()); err == nil || symphony.Classify(err) != symphony.ClassRetry {
		t.Errorf("untrusted certificate: %v (class %s)", err, symphony.Classify(err))
	}
}

func newTestCA(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key := testBotKey(t) // key reuse is fine for a test CA
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "test CA " + fmt.Sprint(time.Now().UnixNano())},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func newClientCert(t *testing.T, ca *x509.Certificate, caKey *rsa.PrivateKey, cn string) tls.Certificate {
	t.Helper()
	key := testBotKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

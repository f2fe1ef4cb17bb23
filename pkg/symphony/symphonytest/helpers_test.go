package symphonytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testshared"

	"github.com/golang-jwt/jwt/v5"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

const testUser = "bridge-bot"

var (
	keyOnce          sync.Once
	botKey, otherKey *rsa.PrivateKey
)

// keys returns the bot's key pair and an unrelated one, generated once
// (1024 bits: enough for tests, and fast to generate under -race).
func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if botKey, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			t.Fatalf("generate key: %v", err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			t.Fatalf("generate key: %v", err)
		}
	})
	return botKey, otherKey
}

// loginJWT signs a login JWT like the BDK does (RS512, sub, exp).
func loginJWT(t testing.TB, key *rsa.PrivateKey, sub string, exp time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(exp).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// specDir and samplesDir are for the conformance tests (listed in
// .ci/conformance-tests): without ../shared they are skipped. Every other
// test runs the simulator behind spec.ForTest, which validates nothing on a
// plain clone.
func specDir(t testing.TB) string {
	t.Helper()
	return testshared.Path(t, spec.SharedDir)
}

func samplesDir(t testing.TB) string {
	t.Helper()
	return testshared.Path(t, "symphony-samples")
}

// sim is an Agent served over real HTTP behind the OpenAPI validator (nil,
// checking nothing, without ../shared: spec.ForTest).
type sim struct {
	*Agent
	v   *spec.Validator
	url string
}

// newSim starts an Agent behind a spec.Validator; at cleanup it closes the Agent
// and fails the test on any validation failure.
func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	if cfg.Username == "" {
		cfg.Username = testUser
	}
	if cfg.PublicKey == nil {
		k, _ := keys(t)
		cfg.PublicKey = &k.PublicKey
	}
	if cfg.LongPoll == 0 {
		cfg.LongPoll = 100 * time.Millisecond
	}
	v := spec.ForTest(t)
	a := New(cfg)
	a.Use(func(h http.Handler) http.Handler { return v.Middleware(h, nil) })
	url := a.Start()
	t.Cleanup(func() {
		a.Close()
		for _, f := range v.Failures() {
			t.Errorf("OpenAPI validation: %v", f)
		}
	})
	return &sim{Agent: a, v: v, url: url}
}

// client is a plain net/http client of the simulator.
type client struct {
	t       *testing.T
	base    string
	hc      *http.Client
	session string
	km      string
}

func newClient(t *testing.T, base string) *client {
	return &client{t: t, base: base, hc: &http.Client{Timeout: 20 * time.Second}}
}

type response struct {
	status int
	header http.Header
	body   []byte
	err    error // transport or body read error
}

func (c *client) do(ctx context.Context, method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.session != "" {
		req.Header.Set("sessionToken", c.session)
	}
	if c.km != "" {
		req.Header.Set("keyManagerToken", c.km)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data, err: err}
}

func (c *client) call(method, path string, body any) response {
	c.t.Helper()
	return c.do(context.Background(), method, path, body)
}

// must performs a call and checks its status.
func (c *client) must(want int, method, path string, body any) response {
	c.t.Helper()
	r := c.call(method, path, body)
	if r.err != nil || r.status != want {
		c.t.Fatalf("%s %s: status %d err %v (want %d): %s", method, path, r.status, r.err, want, r.body)
	}
	return r
}

// login authenticates on the pod and the key manager with the bot's key.
func (c *client) login() {
	c.t.Helper()
	k, _ := keys(c.t)
	var tok struct{ Name, Token string }
	r := c.must(200, "POST", "/login/pubkey/authenticate", map[string]string{"token": loginJWT(c.t, k, testUser, 240*time.Second)})
	decode(c.t, r.body, &tok)
	c.session = tok.Token
	r = c.must(200, "POST", "/relay/pubkey/authenticate", map[string]string{"token": loginJWT(c.t, k, testUser, 240*time.Second)})
	decode(c.t, r.body, &tok)
	c.km = tok.Token
}

func decode(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

type readBody struct {
	Events []json.RawMessage `json:"events"`
	AckID  string            `json:"ackId"`
}

func (c *client) createFeed(body any) string {
	c.t.Helper()
	var df struct{ ID, Type string }
	decode(c.t, c.must(201, "POST", "/agent/v5/datafeeds", body).body, &df)
	return df.ID
}

func (c *client) read(feedID, ackID string) readBody {
	c.t.Helper()
	var l readBody
	r := c.must(200, "POST", "/agent/v5/datafeeds/"+feedID+"/read", map[string]any{"ackId": ackID, "updatePresence": true})
	decode(c.t, r.body, &l)
	return l
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	natstest.WaitFor(t, within, func() error {
		if cond() {
			return nil
		}
		return errors.New("waiting for " + what)
	})
}

func serials(t testing.TB, events []json.RawMessage) []int64 {
	t.Helper()
	out := make([]int64, 0, len(events))
	for _, e := range events {
		n, ok := SerialOf(e)
		if !ok {
			t.Fatalf("event without serial: %s", e)
		}
		out = append(out, n)
	}
	return out
}

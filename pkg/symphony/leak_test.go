package symphony_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/symbridge/symbridge/internal/leakcheck"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Read handler modes of TestNoSecretLeaks_Session.
const (
	leakOK          = iota
	leakEcho500     // Symphony's JSON error echoing the tokens, whole and in pieces
	leakEchoHTML    // an HTML error page echoing them
	leakEchoBody200 // a 200 whose body and Content-Type are a token
	leakEcho401     // a 401 echoing the session token (re-authentication follows)
)

// TestNoSecretLeaks_Session runs a whole client session (authentication,
// reads, a 401 and its refresh, echoing servers, rejected credentials) and
// searches every error and every printed form of the configuration and the
// client for any 12-character piece of the private key, of every session
// token, key manager token and JWT involved.
func TestNoSecretLeaks_Session(t *testing.T) {
	for _, skd := range []bool{false, true} {
		t.Run(fmt.Sprintf("simplified key delivery %v", skd), func(t *testing.T) {
			testNoSecretLeaks(t, skd)
		})
	}
}

func testNoSecretLeaks(t *testing.T, skd bool) {
	s := newStub(t)
	if skd {
		s.set(func(s *stubSymphony) { s.skdClaim, s.version = true, "Agent-25.8.1" })
	}
	var mode atomic.Int32
	var echoed atomic.Value // the last message a server echoed, to check the checker
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		tok, km := r.Header.Get("sessionToken"), r.Header.Get("keyManagerToken")
		msg := fmt.Sprintf("session %s km %s piece %s end %s", tok, km, tok[3:min(len(tok), 40)], tok[len(tok)/2:])
		echoed.Store(msg)
		switch mode.Load() {
		case leakEcho500:
			writeJSON(w, 500, map[string]any{"code": 500, "message": msg})
		case leakEchoHTML:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html><body>%s</body></html>", msg)
		case leakEchoBody200:
			w.Header().Set("Content-Type", "application/"+tok)
			_, _ = w.Write([]byte(tok))
		case leakEcho401:
			writeJSON(w, 401, map[string]any{"code": 401, "message": "expired " + msg})
		default:
			writeRaw(w, 200, eventList("ack-1", oneEvent))
		}
	})
	registerList(s, "feed1_f")

	cfg := s.config()
	c, err := symphony.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Only printed: a proxy would take the requests away from the stub.
	const proxyPassword = "proxy-secret-pw"
	proxied := cfg
	proxied.ProxyURL = "http://proxy-user:" + proxyPassword + "@proxy.example:3128"
	pc, err := symphony.NewClient(proxied)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	collect := func(err error) {
		t.Helper()
		if err == nil {
			return
		}
		out = append(out, err.Error(), fmt.Sprintf("%v|%+v|%#v|%s|%q", err, err, err, err, err))
		var apiErr *symphony.APIError
		if errors.As(err, &apiErr) {
			out = append(out, fmt.Sprintf("%v|%+v|%#v", apiErr, *apiErr, apiErr))
		}
	}
	printed := func() {
		out = append(out, cfg.String(), cfg.GoString(), c.String(), c.GoString(),
			fmt.Sprintf("%v|%+v|%#v|%s", cfg, cfg, cfg, cfg),
			fmt.Sprintf("%v|%+v|%#v|%s", &cfg, &cfg, &cfg, &cfg),
			fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c),
			fmt.Sprintf("%v|%+v", *c, *c),
			fmt.Sprintf("%v|%+v|%#v|%s", proxied, proxied, proxied, proxied),
			fmt.Sprintf("%v|%+v|%#v|%s|%+v", pc, pc, pc, pc, *pc))
	}
	ctx := context.Background()
	f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
	read := func(want int, wantClass symphony.Class) {
		t.Helper()
		mode.Store(int32(want))
		b, err := f.Read(ctx, "")
		if want == leakOK || want == leakEcho401 {
			if err != nil || len(b.Events) != 1 {
				t.Fatalf("read (mode %d): %v", want, err)
			}
			return
		}
		if err == nil || symphony.Classify(err) != wantClass {
			t.Fatalf("read (mode %d): err %v, want class %s", want, err, wantClass)
		}
		collect(err)
	}

	printed()
	if err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	printed()
	read(leakOK, 0)
	s.Expire() // the next read gets a 401 and re-authenticates
	read(leakOK, 0)
	read(leakEcho500, symphony.ClassRetry)
	read(leakEchoHTML, symphony.ClassRetry)
	read(leakEchoBody200, symphony.ClassRetry)
	// A 401 echoing the token: refreshed, and the retried read (still in
	// this mode) answers 401 again, which is returned.
	mode.Store(leakEcho401)
	_, err = f.Read(ctx, "")
	collect(err)
	if !strings.Contains(fmt.Sprint(err), "401") {
		t.Fatalf("read after two 401s: %v", err)
	}
	printed()

	// Credentials rejected: the pod, then the key manager, echo the JWT
	// (whole, and cut) in their 401.
	echoJWT := func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Token string }
		readJSON(t, r, &body)
		s.set(func(s *stubSymphony) { s.issued = append(s.issued, body.Token) })
		msg := "Invalid token " + body.Token + " (" + body.Token[10:50] + ")"
		echoed.Store(msg)
		writeJSON(w, 401, map[string]any{"code": 401, "message": msg})
	}
	s.Override("POST /login/pubkey/authenticate", echoJWT)
	s.Expire()
	mode.Store(leakOK)
	_, err = f.Read(ctx, "")
	if !errors.Is(err, symphony.ErrAuthRejected) || symphony.Classify(err) != symphony.ClassFatal {
		t.Fatalf("read with the pod rejecting the JWT: %v", err)
	}
	collect(err)
	collect(c.Authenticate(ctx))
	if !skd { // under SKD the key manager is not asked
		s.Override("POST /login/pubkey/authenticate", nil)
		s.Override("POST /relay/pubkey/authenticate", echoJWT)
		err = c.Authenticate(ctx)
		if !errors.Is(err, symphony.ErrAuthRejected) {
			t.Fatalf("authenticate with the key manager rejecting the JWT: %v", err)
		}
		collect(err)
	}
	printed()

	secrets := append(s.allSecrets(), proxyPassword,
		leakcheck.PEMBody(cfg.PrivateKeyPEM), leakcheck.PEMBody(pkcs8PEM(t, testBotKey(t))))
	if len(s.allSecrets()) < 4 {
		t.Fatalf("only %d secrets recorded: the session did not run", len(s.allSecrets()))
	}
	// The checker must see what the servers echoed, or finding nothing
	// below would prove nothing.
	if msg, _ := echoed.Load().(string); len(leakcheck.Find(msg, secrets...)) == 0 {
		t.Fatalf("the leak checker found no secret in the echoed message %q", msg)
	}
	all := strings.Join(out, "\n")
	if !strings.Contains(all, "[redacted]") {
		t.Error("no [redacted] in the errors: the echoing servers were not exercised")
	}
	for _, o := range out {
		if found := leakcheck.Find(o, secrets...); found != nil {
			t.Errorf("secret material %q in %q", found, o)
		}
	}
}

// TestRedaction_Pieces: a server message holding a token cut, split or
// glued to other text is blanked out wherever 12 bytes of the token appear.
func TestRedaction_Pieces(t *testing.T) {
	s := newStub(t)
	var msg atomic.Value
	registerRead(s, func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("sessionToken")
		msg.Store(tok)
		writeJSON(w, 500, map[string]any{"message": "a" + tok[:13] + " " + tok[13:] + "z " + tok[5:17] + " " + tok[:11]})
	})
	registerList(s, "feed1_f")
	_, err := symphony.NewDatafeedV2(s.client(), symphony.DatafeedOptions{}).Read(context.Background(), "")
	tok, _ := msg.Load().(string)
	var apiErr *symphony.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v", err)
	}
	// The last piece is 11 bytes, under the window: kept.
	want := "a[redacted] [redacted]z [redacted] " + tok[:11]
	if apiErr.Message != want {
		t.Errorf("Message = %q, want %q", apiErr.Message, want)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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

// natsMode is one way a NATS server asks symbridge to prove who it is.
type natsMode struct {
	server []natstest.Option
	client []nats.Option // for the test's own connection, to check the stream
	good   string        // nats.* YAML lines (indented by 2) that the server accepts
	bad    string        // lines it refuses
	reason *regexp.Regexp
	// secrets must appear in no output, error or log line.
	secrets []string
}

// natsModes builds every mode, each with fresh credentials and certificates.
func natsModes() map[string]func(t *testing.T) natsMode {
	authViolation := regexp.MustCompile(`(?i)authorization violation`)
	return map[string]func(t *testing.T) natsMode{
		"user and password": func(t *testing.T) natsMode {
			const pass, wrong = "nats-pass-3f9c1d7e2b", "wrong-pass-8a6e4c2f1d"
			return natsMode{
				server:  []natstest.Option{natstest.WithUserPassword("bridge", pass)},
				client:  []nats.Option{nats.UserInfo("bridge", pass)},
				good:    "  user: bridge\n  password: " + pass + "\n",
				bad:     "  user: bridge\n  password: " + wrong + "\n",
				reason:  authViolation,
				secrets: []string{pass, wrong},
			}
		},
		"token": func(t *testing.T) natsMode {
			const tok, wrong = "nats-token-5d2a9e7c4b1f", "wrong-token-1c7e3a9d5f"
			return natsMode{
				server:  []natstest.Option{natstest.WithToken(tok)},
				client:  []nats.Option{nats.Token(tok)},
				good:    "  token: " + tok + "\n",
				bad:     "  token: " + wrong + "\n",
				reason:  authViolation,
				secrets: []string{tok, wrong},
			}
		},
		"nkey": func(t *testing.T) natsMode {
			user, stranger := natstest.NewNkeyUser(t), natstest.NewNkeyUser(t)
			opt, err := nats.NkeyOptionFromSeed(user.SeedFile)
			if err != nil {
				t.Fatal(err)
			}
			return natsMode{
				server:  []natstest.Option{natstest.WithNkeyUsers(user.PublicKey)},
				client:  []nats.Option{opt},
				good:    "  nkeyFile: " + user.SeedFile + "\n",
				bad:     "  nkeyFile: " + stranger.SeedFile + "\n",
				reason:  authViolation,
				secrets: []string{string(user.Seed), string(stranger.Seed)},
			}
		},
		"creds file": func(t *testing.T) natsMode {
			tr := natstest.NewTrust(t)
			secrets := append(credsSecrets(tr.Creds), credsSecrets(tr.StrangerCreds)...)
			if len(secrets) != 4 {
				t.Fatalf("found %d JWTs and seeds in the two creds files, want 4", len(secrets))
			}
			return natsMode{
				server:  []natstest.Option{tr.Option()},
				client:  []nats.Option{nats.UserCredentials(tr.CredsFile)},
				good:    "  credsFile: " + tr.CredsFile + "\n",
				bad:     "  credsFile: " + tr.StrangerCredsFile + "\n",
				reason:  authViolation,
				secrets: secrets,
			}
		},
		"TLS": func(t *testing.T) natsMode {
			p := natstest.NewPKI(t)
			return natsMode{
				server:  []natstest.Option{natstest.WithTLS(p, false)},
				client:  []nats.Option{nats.RootCAs(p.CAFile)},
				good:    "  tls:\n    caFile: " + p.CAFile + "\n",
				bad:     "", // the system roots do not know the test CA
				reason:  regexp.MustCompile(`(?i)certificate signed by unknown authority`),
				secrets: []string{leakcheck.PEMBody(p.ServerKeyPEM)},
			}
		},
		"mutual TLS": func(t *testing.T) natsMode {
			p := natstest.NewPKI(t)
			return natsMode{
				server: []natstest.Option{natstest.WithTLS(p, true)},
				client: []nats.Option{nats.RootCAs(p.CAFile), nats.ClientCert(p.ClientCertFile, p.ClientKeyFile)},
				good: "  tls:\n    caFile: " + p.CAFile + "\n    certFile: " + p.ClientCertFile +
					"\n    keyFile: " + p.ClientKeyFile + "\n",
				bad:     "  tls:\n    caFile: " + p.CAFile + "\n", // no client certificate
				reason:  regexp.MustCompile(`(?i)certificate required|client certificate|bad certificate`),
				secrets: []string{leakcheck.PEMBody(p.ClientKeyPEM), leakcheck.PEMBody(p.ServerKeyPEM)},
			}
		},
	}
}

// credsSecrets returns the parts of a creds file that are secret: the user
// JWT is a bearer credential only with its seed, but neither belongs in a log.
func credsSecrets(creds []byte) []string {
	var out []string
	for _, line := range strings.Split(string(creds), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "SU") || strings.HasPrefix(line, "eyJ") {
			out = append(out, line)
		}
	}
	return out
}

// TestNATSSecurity: for each authentication mode and TLS setting a NATS
// server may demand, `symbridge run` configured with the matching nats.*
// keys bridges events; configured with wrong credentials (or no CA, or no
// client certificate) it stops promptly with exit status 1 and a reason that
// names the problem, and no secret appears in anything it printed.
func TestNATSSecurity(t *testing.T) {
	t.Parallel()
	for name, mk := range natsModes() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := mk(t)
			srv := natstest.RunServer(t, m.server...)
			t.Run("accepted", func(t *testing.T) {
				bot, _ := keys(t)
				agent, agentURL := newAgent(t, &bot.PublicKey, 2*time.Second)
				path := writeConfig(t, agentURL, srv.URL(), "nats:\n", "nats:\n"+m.good, "level: info", "level: debug")
				r := startRun(t, path)
				waitReading(t, agent)
				events := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 11}).Mix(10)
				agent.Emit(events...)
				js, err := jetstream.New(natstest.Connect(t, srv, m.client...))
				if err != nil {
					t.Fatal(err)
				}
				waitStored(t, js, len(events))
				if err := r.stop(t); err != nil {
					t.Errorf("run after cancellation: %v, want nil\nlogs:\n%s", err, r.stderr.String())
				}
				assertNoLeak(t, r.output(nil), m.secrets...)
			})
			t.Run("refused", func(t *testing.T) {
				_, agentURL := newAgent(t, nil, 2*time.Second)
				path := writeConfig(t, agentURL, srv.URL(), "nats:\n", "nats:\n"+m.bad, "level: info", "level: debug")
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var stdout, stderr testlog.Buffer
				start := time.Now()
				err := run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr)
				if err == nil || ctx.Err() != nil {
					t.Fatalf("run refused by NATS: err %v after %s; want a prompt error\nlogs:\n%s",
						err, time.Since(start).Round(time.Millisecond), stderr.String())
				}
				t.Logf("run: %v (after %s)", err, time.Since(start).Round(time.Millisecond))
				if !m.reason.MatchString(err.Error()) {
					t.Errorf("error %q does not give the reason (want %s)", err, m.reason)
				}
				var printed strings.Builder
				if code := exitCode(err, &printed); code != 1 {
					t.Errorf("exit code %d, want 1", code)
				}
				r := &running{stdout: &stdout, stderr: &stderr}
				assertNoLeak(t, r.output([]string{err.Error(), printed.String()}), m.secrets...)
			})
		})
	}
}

// running is a `symbridge run` in a goroutine of the test.
type running struct {
	cancel         context.CancelFunc
	done           chan error
	stdout, stderr *testlog.Buffer
	err            error
	stopped        bool
}

// startRun starts `symbridge run --config path`; it is stopped at cleanup
// if the test did not stop it.
func startRun(t *testing.T, path string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}}
	go func() { r.done <- run(ctx, []string{"run", "--config", path}, nil, r.stdout, r.stderr) }()
	t.Cleanup(func() {
		if !r.stopped {
			_ = r.stop(t)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", r.stderr.String())
		}
	})
	return r
}

// stop cancels the run and returns what run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	r.stopped = true
	select {
	case r.err = <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of cancellation")
		return nil
	}
}

// output is everything the run printed and returned, plus extra texts.
func (r *running) output(extra []string) string {
	parts := []string{r.stdout.String(), r.stderr.String()}
	if r.err != nil {
		var printed strings.Builder
		exitCode(r.err, &printed)
		parts = append(parts, r.err.Error(), printed.String())
	}
	return strings.Join(append(parts, extra...), "\n")
}

func waitReading(t *testing.T, agent *symphonytest.Agent) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		for _, f := range agent.Feeds() {
			if f.Kind == symphonytest.KindDatafeed && f.Readers > 0 {
				return nil
			}
		}
		return errors.New("the bridge is not reading its feed yet")
	})
}

func waitStored(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		s, err := js.Stream(t.Context(), "SYMPHONY")
		if err != nil {
			return err
		}
		info, err := s.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(n) {
			return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, n)
		}
		return nil
	})
}

// assertNoLeak fails the test for every piece of a secret found in out.
func assertNoLeak(t *testing.T, out string, secrets ...string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Error("nothing captured: the leak check would prove nothing")
	}
	for _, leak := range leakcheck.Find(out, secrets...) {
		t.Errorf("secret material in the output: %q", leak)
	}
}

// TestPrivateKeyPermissionWarning: a private key file readable by group or
// others is worth a warning at start (not an error: a container may mount
// it so); a 0600 one is not.
func TestPrivateKeyPermissionWarning(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o600} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			bot, _ := keys(t)
			agent, agentURL := newAgent(t, &bot.PublicKey, time.Second)
			srv := natstest.RunServer(t)
			path := writeConfig(t, agentURL, srv.URL())
			keyFile := filepath.Join(filepath.Dir(path), "bot.pem")
			if err := os.Chmod(keyFile, mode); err != nil {
				t.Fatal(err)
			}
			r := startRun(t, path)
			waitReading(t, agent) // start-up is over: every warning is out
			if err := r.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			var warning string
			for _, line := range strings.Split(r.stderr.String(), "\n") {
				if strings.Contains(line, "readable by group or others") {
					warning = line
				}
			}
			wantWarning := mode&0o077 != 0
			switch {
			case wantWarning && warning == "":
				t.Errorf("key file mode %v: no permission warning in the logs:\n%s", mode, r.stderr.String())
			case wantWarning:
				for _, want := range []string{`"level":"WARN"`, "bot.privateKey.path", keyFile, "chmod 600"} {
					if !strings.Contains(warning, want) {
						t.Errorf("warning %s lacks %q", warning, want)
					}
				}
			case warning != "":
				t.Errorf("key file mode %v: unexpected warning %s", mode, warning)
			}
		})
	}
}

// newTLSAgent starts a simulated Agent over HTTPS with a certificate for
// 127.0.0.1 signed by p's CA, behind the OpenAPI validator; configure
// changes its configuration first (e.g. ClientCAs for certificate
// authentication).
func newTLSAgent(t *testing.T, p *natstest.PKI, configure ...func(*symphonytest.Config)) (*symphonytest.Agent, *url.URL) {
	t.Helper()
	v := spec.ForTest(t)
	bot, _ := keys(t)
	cfg := symphonytest.Config{Username: testBot, PublicKey: &bot.PublicKey, LongPoll: time.Second, VisibilityTimeout: time.Second}
	for _, f := range configure {
		f(&cfg)
	}
	a := symphonytest.New(cfg)
	a.Use(func(next http.Handler) http.Handler { return v.Middleware(next, nil) })
	base, _ := a.StartTLS(&p.ServerCert)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		for _, f := range v.Failures() {
			t.Errorf("OpenAPI validation: %v", f)
		}
	})
	return a, u
}

// TestAgentTLS: the Agent's certificate is verified by default. Signed by a
// CA the system does not know, start-up does not get past authentication
// and says why (in the logs and on /readyz); the CA in ssl.trustStore makes
// it work; ssl.insecureSkipVerify makes it work too, with a warning at each
// start, like nats.tls.insecureSkipVerify for NATS over TLS.
func TestAgentTLS(t *testing.T) {
	t.Parallel()
	p := natstest.NewPKI(t)
	https := []string{"scheme: http\n", "scheme: https\n"}

	t.Run("unknown CA", func(t *testing.T) {
		// A certificate symbridge does not trust will not become trusted by
		// waiting: start-up stops with exit 1 and says what to change.
		t.Parallel()
		_, agentURL := newTLSAgent(t, p)
		srv := natstest.RunServer(t)
		path := writeConfig(t, agentURL, srv.URL(), https...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var stdout, stderr testlog.Buffer
		err := run(ctx, []string{"run", "--config", path}, nil, &stdout, &stderr)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("run against an untrusted Agent certificate: err %v, ctx %v; want a prompt error", err, ctx.Err())
		}
		if !regexp.MustCompile(`authenticate.*certificate signed by unknown authority.*ssl.trustStore`).MatchString(err.Error()) {
			t.Errorf("error %q does not name the certificate problem and the fix", err)
		}
		if code := exitCode(err, io.Discard); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if strings.Contains(stderr.String(), "reading datafeed") {
			t.Error("the bridge read the feed of an Agent whose certificate it could not verify")
		}
	})

	for _, tc := range []struct {
		name, ssl, warning string
	}{
		{"trust store", "ssl:\n  trustStore:\n    path: " + p.CAFile + "\n", ""},
		{"insecureSkipVerify", "ssl:\n  insecureSkipVerify: true\n", "ssl.insecureSkipVerify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agent, agentURL := newTLSAgent(t, p)
			srv := natstest.RunServer(t)
			path := writeConfig(t, agentURL, srv.URL(), append(https, "bridge:\n", tc.ssl+"bridge:\n")...)
			js := natstest.JetStream(t, srv)
			for start := 1; start <= 2; start++ { // the warning comes at every start
				r := startRun(t, path)
				waitReading(t, agent)
				agent.Emit(symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: int64(start)}).Mix(5)...)
				waitStored(t, js, 5*start)
				if err := r.stop(t); err != nil {
					t.Fatalf("run %d: %v", start, err)
				}
				assertWarning(t, r.stderr.String(), "ssl.insecureSkipVerify", tc.warning != "")
			}
		})
	}
}

// TestNATSInsecureSkipVerify: nats.tls.insecureSkipVerify connects to a
// server whose certificate does not verify, and warns at each start; tail
// warns too, and check reports the warning on a line of its own.
func TestNATSInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	p := natstest.NewPKI(t)
	bot, _ := keys(t)
	agent, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	srv := natstest.RunServer(t, natstest.WithTLS(p, false))
	path := writeConfig(t, agentURL, srv.URL(), "nats:\n", "nats:\n  tls:\n    insecureSkipVerify: true\n")
	js, err := jetstream.New(natstest.Connect(t, srv, nats.RootCAs(p.CAFile)))
	if err != nil {
		t.Fatal(err)
	}
	for start := 1; start <= 2; start++ {
		r := startRun(t, path)
		waitReading(t, agent)
		agent.Emit(symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: int64(start)}).Mix(5)...)
		waitStored(t, js, 5*start)
		if err := r.stop(t); err != nil {
			t.Fatalf("run %d: %v", start, err)
		}
		assertWarning(t, r.stderr.String(), "nats.tls.insecureSkipVerify", true)
	}

	var tailLogs testlog.Buffer
	if err := run(t.Context(), []string{"tail", "--config", path, "--count", "1"}, nil, io.Discard, &tailLogs); err != nil {
		t.Errorf("tail: %v\n%s", err, tailLogs.String())
	}
	assertWarning(t, tailLogs.String(), "nats.tls.insecureSkipVerify", true)

	res := lines(t, runCheck(t, "--config", path).stdout)
	if !slices.ContainsFunc(res, func(c checkResult) bool {
		return c.Name == "config" && c.Status == statusWarn && strings.HasPrefix(c.Detail, "nats.tls.insecureSkipVerify: ")
	}) {
		t.Errorf("check reports no nats.tls.insecureSkipVerify warning: %+v", res)
	}
	if c := find(t, res, "nats"); c.Status != statusOK {
		t.Errorf("check's nats line: %+v, want ok", c)
	}
}

// assertWarning checks that exactly one WARN line of the JSON logs starts
// with prefix (want) or that none mentions it (!want).
func assertWarning(t *testing.T, logs, prefix string, want bool) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, prefix) {
			continue
		}
		if !want {
			t.Errorf("unexpected line mentioning %s: %s", prefix, line)
			continue
		}
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, `"msg":"`+prefix) {
			n++
		}
	}
	if want && n != 1 {
		t.Errorf("%d WARN lines starting with %s, want 1 per start:\n%s", n, prefix, logs)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// The filters of writeConfig's bridge (the default templates; {pod} is a
// wildcard in a filter).
const eventFilter, deadFilter = "symphony.*.*.*", "symphony.*._invalid"

// checkRun is one `symbridge check`: its exit code and output.
type checkRun struct {
	code           int
	err            error
	stdout, stderr string
}

func runCheck(t *testing.T, args ...string) checkRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr testlog.Buffer
	start := time.Now()
	err := run(ctx, append([]string{"check"}, args...), nil, &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("check did not finish within 60s: %v", err)
	}
	r := checkRun{code: exitCode(err, io.Discard), err: err, stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("check %v: exit %d after %s\n%s", args, r.code, time.Since(start).Round(time.Millisecond), r.stdout)
	return r
}

// checkLine matches one line of check's text output.
var checkLine = regexp.MustCompile(`^(ok|WARN|FAIL|skip) +([a-z ]+): (.*)$`)

// lines parses the text output into its results, in order (a name may
// repeat: "secret file", "config" warnings); a line that is not a check's
// fails the test.
func lines(t *testing.T, out string) []checkResult {
	t.Helper()
	status := map[string]string{"ok": statusOK, "WARN": statusWarn, "FAIL": statusFail, "skip": statusSkip}
	var res []checkResult
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(l, "        ") && len(res) > 0 { // continuation of a multi-line detail
			res[len(res)-1].Detail += "\n" + strings.TrimSpace(l)
			continue
		}
		m := checkLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a check line: %q", l)
		}
		detail, fix, _ := strings.Cut(m[3], " — fix: ")
		res = append(res, checkResult{Name: m[2], Status: status[m[1]], Detail: detail, Fix: fix})
	}
	return res
}

// find returns the first result named name.
func find(t *testing.T, res []checkResult, name string) checkResult {
	t.Helper()
	for _, r := range res {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", name, res)
	return checkResult{}
}

// feedState is what check must not change on the Agent: the feeds and the
// read and create counters.
type feedState struct {
	ids           []string
	reads         int64
	created       int64
	deleted       int64
	delivered     int64
	datahoseFeeds int64
}

func agentFeedState(a *symphonytest.Agent) feedState {
	var s feedState
	for _, f := range a.Feeds() {
		s.ids = append(s.ids, f.ID)
		s.delivered += f.Delivered
	}
	st := a.Stats()
	s.reads, s.created, s.deleted, s.datahoseFeeds = st.Reads, st.FeedsCreated, st.FeedsDeleted, st.DatahoseFeedsCreated
	return s
}

// openFeed creates (or reuses) the bot's datafeed v2 with tag through the
// real client, as a running bridge or the team's bot would.
func openFeed(t *testing.T, agent *url.URL, key *rsa.PrivateKey, tag string) string {
	t.Helper()
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	base := agent.String()
	c, err := symphony.NewClient(symphony.ClientConfig{PodURL: base, AgentURL: base, KeyManagerURL: base, Username: testBot, PrivateKeyPEM: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	res, err := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{Tag: tag}).Open(t.Context())
	if err != nil {
		t.Fatalf("open feed %s: %v", tag, err)
	}
	return res.FeedID
}

// closedPort is a local TCP address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// passingCheck runs check on path and wants exit 0 with every line ok; it
// returns the lines' results and names.
func passingCheck(t *testing.T, path string) (res []checkResult, names []string) {
	t.Helper()
	r := runCheck(t, "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %d (%v), want 0\nstderr: %s", r.code, r.err, r.stderr)
	}
	res = lines(t, r.stdout)
	for _, c := range res {
		names = append(names, c.Name)
		if c.Status != statusOK {
			t.Errorf("%s: %s %q, want ok", c.Name, c.Status, c.Detail)
		}
	}
	return res, names
}

// TestCheckPasses: against a working Agent and JetStream, check prints one
// ok line per dependency and exits 0; it creates no feed, reads none and
// leaves the stream uncreated. With the bridge's feed, another feed and the
// stream already there, it names the feed run would reuse, warns about the
// other one and still exits 0, the Agent's feeds unchanged.
func TestCheckPasses(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)

	t.Run("fresh", func(t *testing.T) {
		t.Parallel()
		agent, agentURL := newAgent(t, &bot.PublicKey, time.Second)
		srv := natstest.RunServer(t)
		path := writeConfig(t, agentURL, srv.URL())
		before := agentFeedState(agent)
		res, names := passingCheck(t, path)
		want := []string{"config", "secret file", "agent", "pod", "key manager", "feed", "nats", "jetstream", "stream", "coordination"}
		if !slices.Equal(names, want) {
			t.Errorf("checks %v, want %v", names, want)
		}
		for name, re := range map[string]string{
			"agent":        `reachable; version Agent-`,
			"pod":          `authenticated as ` + testBot + ` with the RSA key; session of user id \d+`,
			"feed":         `no feed with tag "symbridge" yet; run creates one`,
			"nats":         `connected to nats://127\.0\.0\.1:\d+ \(server 2\.\d+`,
			"jetstream":    `enabled; account limits: storage no account limit \(0 B used\), memory .*, streams .* \(0 used\)`,
			"stream":       `SYMPHONY does not exist; run creates it with subjects symphony\.>, duplicate window 35m,.*captures ` + regexp.QuoteMeta(eventFilter+", "+deadFilter),
			"coordination": `^buckets symbridge-feeds and symbridge-feeds-claims missing; run creates them$`,
			"secret file":  `bot\.privateKey\.path: .*bot\.pem readable by its owner only \(mode 0600\)`,
		} {
			if d := find(t, res, name).Detail; !regexp.MustCompile(re).MatchString(d) {
				t.Errorf("%s: %q does not match %s", name, d, re)
			}
		}
		if after := agentFeedState(agent); !equalFeedState(before, after) {
			t.Errorf("check changed the Agent's feeds: before %+v, after %+v", before, after)
		}
		if _, err := natstest.JetStream(t, srv).Stream(t.Context(), "SYMPHONY"); err != jetstream.ErrStreamNotFound {
			t.Errorf("stream lookup after check: %v, want not found (check must not create it)", err)
		}
	})

	t.Run("--nats-url", func(t *testing.T) {
		// The flag wins over nats.url, as for run.
		t.Parallel()
		_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
		srv := natstest.RunServer(t)
		r := runCheck(t, "--config", writeConfig(t, agentURL, "nats://"+closedPort(t)), "--nats-url", srv.URL())
		if n := find(t, lines(t, r.stdout), "nats"); r.code != 0 || n.Status != statusOK || !strings.Contains(n.Detail, srv.URL()) {
			t.Errorf("exit %d, nats %+v; want 0 and connected to %s", r.code, n, srv.URL())
		}
	})

	t.Run("loose key file", func(t *testing.T) {
		// A warning, as at run's start: exit 0.
		t.Parallel()
		_, agentURL := newAgent(t, &bot.PublicKey, time.Second)
		path := writeConfig(t, agentURL, natstest.RunServer(t).URL())
		keyFile := filepath.Join(filepath.Dir(path), "bot.pem")
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, "--config", path)
		if r.code != 0 {
			t.Fatalf("exit %d (%v), want 0", r.code, r.err)
		}
		res := lines(t, r.stdout)
		w := find(t, res, "secret file")
		if w.Status != statusWarn || !strings.Contains(w.Detail, "readable by group or others (mode 0644)") || w.Fix != "chmod 600 "+keyFile {
			t.Errorf("secret file: %+v; want a warning with the chmod", w)
		}
		for _, c := range res {
			if c.Name == "config" && c.Status != statusOK {
				t.Errorf("the permission warning is repeated as %+v", c)
			}
		}
	})

	t.Run("existing feeds and stream", func(t *testing.T) {
		t.Parallel()
		agent, agentURL := newAgent(t, &bot.PublicKey, time.Second)
		srv := natstest.RunServer(t)
		mine := openFeed(t, agentURL, bot, "symbridge")
		other := openFeed(t, agentURL, bot, "team-bot")
		agent.Emit(symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 3}).Mix(5)...)
		js := natstest.JetStream(t, srv)
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "SYMPHONY", Subjects: []string{"symphony.>"},
			Duplicates: 35 * time.Minute, MaxAge: 168 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		path := writeConfig(t, agentURL, srv.URL())
		cfg, err := config.Load(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		coord, err := newKVCoordinator(t.Context(), js, kvCoordConfig{Bucket: "symbridge-feeds"})
		if err != nil {
			t.Fatal(err)
		}
		if err := coord.Record(t.Context(), symphony.FeedKey(cfg.PodURL, cfg.Username, cfg.Datafeed.Tag), symphony.FeedRecord{ID: mine, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
		before := agentFeedState(agent)
		if len(before.ids) != 2 || before.reads != 0 {
			t.Fatalf("set-up: feeds %v, %d reads", before.ids, before.reads)
		}
		r := runCheck(t, "--config", path)
		if r.code != 0 {
			t.Fatalf("exit %d (%v), want 0 (a warning does not fail)", r.code, r.err)
		}
		res := lines(t, r.stdout)
		if d := find(t, res, "feed").Detail; !strings.Contains(d, "run reuses feed "+mine) {
			t.Errorf("feed: %q does not name the feed %s run would reuse", d, mine)
		}
		w := find(t, res, "other feeds")
		if w.Status != statusWarn || !strings.Contains(w.Detail, "feeds: "+other+" (") {
			t.Errorf("other feeds: %+v; want a warning naming %s only", w, other)
		}
		if s := find(t, res, "stream"); s.Status != statusOK || !strings.Contains(s.Detail, "SYMPHONY exists") {
			t.Errorf("stream: %+v", s)
		}
		if s := find(t, res, "coordination"); s.Status != statusOK || !strings.Contains(s.Detail, "the instances share feed "+mine) {
			t.Errorf("coordination: %+v; want the recorded feed %s", s, mine)
		}
		if after := agentFeedState(agent); !equalFeedState(before, after) {
			t.Errorf("check changed the Agent's feeds or read one: before %+v, after %+v", before, after)
		}
		for _, f := range agent.Feeds() {
			if f.Queued != 5 || f.Delivered != 0 {
				t.Errorf("feed %s: %d queued, %d delivered; want the 5 events untouched", f.ID, f.Queued, f.Delivered)
			}
		}
	})
}

func equalFeedState(a, b feedState) bool {
	return slices.Equal(a.ids, b.ids) && a.reads == b.reads && a.created == b.created && a.deleted == b.deleted &&
		a.delivered == b.delivered && a.datahoseFeeds == b.datahoseFeeds
}

// TestCheckFailures: each broken dependency fails its own line with the
// fix, exit 1; the checks that do not depend on it still run; those that do
// are skipped. An invalid configuration lists every problem, exit 2.
func TestCheckFailures(t *testing.T) {
	t.Parallel()
	bot, other := keys(t)
	p := natstest.NewPKI(t)
	type setup struct {
		agent *url.URL
		nats  string
		edits []string
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) setup
		code  int
		fail  string            // the failing check
		want  string            // regexp its detail and fix match
		after map[string]string // other checks' expected statuses
	}{
		{
			name: "wrong key",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &other.PublicKey, time.Second) // the pod knows another key
				return setup{agent: u, nats: natstest.RunServer(t).URL()}
			},
			code: 1, fail: "pod",
			want:  `authentication rejected.*401.*fix: check bot\.username and that bot\.privateKey matches the public key`,
			after: map[string]string{"agent": statusOK, "key manager": statusSkip, "feed": statusSkip, "nats": statusOK, "stream": statusOK},
		},
		{
			name: "untrusted certificate",
			setup: func(t *testing.T) setup {
				_, u := newTLSAgent(t, p) // signed by a CA that ssl.trustStore does not hold
				return setup{agent: u, nats: natstest.RunServer(t).URL(), edits: []string{"scheme: http\n", "scheme: https\n"}}
			},
			code: 1, fail: "agent",
			want:  `certificate signed by unknown authority.*fix: add the CA that issued the server's certificate to ssl\.trustStore`,
			after: map[string]string{"pod": statusFail, "key manager": statusSkip, "feed": statusSkip, "nats": statusOK},
		},
		{
			name: "unreachable NATS",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				return setup{agent: u, nats: "nats://" + closedPort(t)}
			},
			code: 1, fail: "nats",
			want:  `nats://127\.0\.0\.1:\d+: .*(refused|no servers).*fix: check nats\.url`,
			after: map[string]string{"pod": statusOK, "feed": statusOK, "jetstream": statusSkip, "stream": statusSkip},
		},
		{
			name: "JetStream disabled",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				srv := natstest.RunServer(t, func(o *server.Options) { o.JetStream = false })
				return setup{agent: u, nats: srv.URL()}
			},
			code: 1, fail: "jetstream",
			want:  `(?i)jetstream not enabled.*fix: enable JetStream`,
			after: map[string]string{"nats": statusOK, "stream": statusSkip},
		},
		{
			name: "stream does not cover the subjects",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				srv := natstest.RunServer(t)
				createStream(t, srv, jetstream.StreamConfig{Name: "SYMPHONY", Subjects: []string{"symphony.other.>", "symphony.acme.x.*"}, Duplicates: time.Hour})
				return setup{agent: u, nats: srv.URL()}
			},
			code: 1, fail: "stream",
			want:  `SYMPHONY exists: subjects symphony\.other\.>, symphony\.acme\.x\.\*.*does not capture ` + regexp.QuoteMeta(eventFilter+", "+deadFilter) + `.*fix: add the subjects to the stream`,
			after: map[string]string{"nats": statusOK, "jetstream": statusOK, "pod": statusOK},
		},
		{
			name: "configured subjects do not cover the bridge's",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				return setup{agent: u, nats: natstest.RunServer(t).URL(), edits: []string{"nats:\n", "nats:\n  stream:\n    subjects: [events.>]\n"}}
			},
			code: 1, fail: "stream",
			want: `SYMPHONY does not exist.*does not capture .*fix: add them to nats\.stream\.subjects`,
		},
		{
			name: "duplicate window too short",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				srv := natstest.RunServer(t)
				createStream(t, srv, jetstream.StreamConfig{Name: "SYMPHONY", Subjects: []string{"symphony.>"}, Duplicates: 5 * time.Minute})
				return setup{agent: u, nats: srv.URL()}
			},
			code: 1, fail: "stream",
			want: `duplicate window 5m is shorter than 30m.*fix: nats stream edit SYMPHONY --dupe-window 35m$`,
		},
		{
			name: "replicas differ",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				srv := natstest.RunServer(t)
				createStream(t, srv, jetstream.StreamConfig{Name: "SYMPHONY", Subjects: []string{"symphony.>"}, Duplicates: 35 * time.Minute})
				return setup{agent: u, nats: srv.URL(), edits: []string{"nats:\n", "nats:\n  stream:\n    replicas: 3\n"}}
			},
			code: 1, fail: "stream",
			want: `it has 1 replica\(s\), nats\.stream\.replicas asks for 3.*fix: set nats\.stream\.replicas to 1`,
		},
		{
			name: "invalid configuration",
			setup: func(t *testing.T) setup {
				_, u := newAgent(t, &bot.PublicKey, time.Second)
				return setup{agent: u, nats: "nats://127.0.0.1:1", edits: []string{
					"datafeed:\n", "datafeed:\n  version: v9\n", "bridge:\n", "bridge:\n  readers: 0\n"}}
			},
			code: 2, fail: "config",
			want: `2 problem\(s\)\n.*datafeed\.version.*\n.*bridge\.readers.*fix: correct the keys named`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.setup(t)
			path := writeConfig(t, s.agent, s.nats, s.edits...)
			r := runCheck(t, "--config", path)
			if r.code != tc.code {
				t.Errorf("exit %d (%v), want %d", r.code, r.err, tc.code)
			}
			res := lines(t, r.stdout)
			f := find(t, res, tc.fail)
			if f.Status != statusFail {
				t.Errorf("%s: %s, want fail", tc.fail, f.Status)
			}
			if got := f.Detail + " — fix: " + f.Fix; !regexp.MustCompile(`(?s)` + tc.want).MatchString(got) {
				t.Errorf("%s: %q does not match %s", tc.fail, got, tc.want)
			}
			for name, want := range tc.after {
				if got := find(t, res, name).Status; got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
			failed := 0
			for _, c := range res {
				if c.Status == statusFail {
					failed++
				}
			}
			if tc.code == 2 && len(res) != 1 {
				t.Errorf("an invalid configuration checked %d things, want only the configuration", len(res))
			}
			if failed == 0 {
				t.Error("no failed line")
			}
		})
	}
}

func createStream(t *testing.T, srv *natstest.Server, cfg jetstream.StreamConfig) {
	t.Helper()
	if _, err := natstest.JetStream(t, srv).CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// TestCheckJSON: --json prints one document with the same checks, statuses
// and fixes as the text, and the same exit code; a configuration error too.
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	_, other := keys(t)
	_, agentURL := newAgent(t, &other.PublicKey, time.Second) // rejects the bot's key: a failing run
	srv := natstest.RunServer(t)
	for _, tc := range []struct {
		name  string
		edits []string
		code  int
	}{
		{"dependency failure", nil, 1},
		{"invalid configuration", []string{"datafeed:\n", "datafeed:\n  version: v9\n"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, agentURL, srv.URL(), tc.edits...)
			text := runCheck(t, "--config", path)
			js := runCheck(t, "--config", path, "--json")
			if text.code != tc.code || js.code != tc.code {
				t.Errorf("exit codes: text %d, json %d; want %d", text.code, js.code, tc.code)
			}
			var doc checkReport
			dec := json.NewDecoder(strings.NewReader(js.stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("--json output is not the document: %v\n%s", err, js.stdout)
			}
			if doc.OK {
				t.Error(`"ok": true in a failing check`)
			}
			want := lines(t, text.stdout)
			if len(doc.Checks) != len(want) {
				t.Fatalf("%d checks in JSON, %d lines in text", len(doc.Checks), len(want))
			}
			for i, c := range doc.Checks {
				w := want[i]
				if c.Name != w.Name || c.Status != w.Status || c.Fix != w.Fix || firstLine(c.Detail) != firstLine(w.Detail) {
					t.Errorf("check %d: JSON %+v, text %+v", i, c, w)
				}
				if !slices.Contains([]string{statusOK, statusWarn, statusFail, statusSkip}, c.Status) {
					t.Errorf("check %d: status %q", i, c.Status)
				}
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestCheckNoSecretLeaks: at debug level, passing and with a rejected key,
// in text and JSON, check prints no piece of the private key, of a login
// JWT, of a token the Agent issued or of the NATS password (given in
// nats.url too).
func TestCheckNoSecretLeaks(t *testing.T) {
	t.Parallel()
	bot, other := keys(t)
	for _, tc := range []struct {
		name string
		pub  *rsa.PublicKey
		code int
	}{{"passing", &bot.PublicKey, 0}, {"key rejected", &other.PublicKey, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agent, agentURL, rec := newRecordedAgent(t, symphonytest.Config{PublicKey: tc.pub, LongPoll: time.Second})
			natsSecret := randomSecret(t, "nats-secret-")
			srv := natstest.RunServer(t, natstest.WithUserPassword("bridge", natsSecret))
			natsURL := strings.Replace(srv.URL(), "nats://", "nats://bridge:"+natsSecret+"@", 1)
			path := writeConfig(t, agentURL, natsURL, "level: info", "level: debug")
			keyPEM, err := os.ReadFile(filepath.Join(filepath.Dir(path), "bot.pem"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, args := range [][]string{{"--config", path}, {"--config", path, "--json"}} {
				r := runCheck(t, args...)
				if r.code != tc.code {
					t.Errorf("check %v: exit %d (%v), want %d", args, r.code, r.err, tc.code)
				}
				var printed strings.Builder
				exitCode(r.err, &printed)
				fmt.Fprintln(&out, r.stdout, r.stderr, printed.String())
			}
			if len(rec.loginJWTs()) == 0 {
				t.Fatal("no login JWT recorded: check never tried to log in")
			}
			secrets := sessionSecrets(t, agent, rec, keyPEM, natsSecret)
			assertNoLeak(t, out.String(), secrets...)
			assertCheckerWorks(t, out.String(), secrets)
		})
	}
}

// writeCertConfig writes writeConfig's file for an Agent served over HTTPS
// with p's server certificate (p's CA in ssl.trustStore), for bot username,
// authenticating with the client certificate in certFile (PKCS#12 with
// password, or PEM with password "") instead of writeConfig's RSA key.
func writeCertConfig(t *testing.T, agent *url.URL, natsURL string, p *natstest.PKI, username, certFile, password string) string {
	t.Helper()
	path := writeConfig(t, agent, natsURL,
		"scheme: http\n", "scheme: https\nssl:\n  trustStore:\n    path: "+p.CAFile+"\n",
		"username: "+testBot+"\n", "username: "+username+"\n")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := regexp.MustCompile(`(?m)^  privateKey:\n    path: .*\n`)
	if !rsaKey.Match(data) {
		t.Fatalf("no bot.privateKey.path in\n%s", data)
	}
	cert := "  certificate:\n    path: " + certFile + "\n"
	if password != "" {
		cert += "    password: " + password + "\n"
	}
	if err := os.WriteFile(path, rsaKey.ReplaceAllLiteral(data, []byte(cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCertFile writes p's client certificate (CN "symbridge") and its key
// to a file of the test: PKCS#12 encrypted with password, or PEM (the
// certificate, then the key) when password is "".
func clientCertFile(t *testing.T, p *natstest.PKI, password string) string {
	t.Helper()
	dir := t.TempDir()
	if password == "" {
		var data []byte
		for _, f := range []string{p.ClientCertFile, p.ClientKeyFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		path := filepath.Join(dir, "bot.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pair, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pkcs12.Modern.Encode(pair.PrivateKey, pair.Leaf, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bot.p12")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckCertificate: with bot.certificate instead of an RSA key, check
// authenticates with the client certificate at session auth and at the key
// manager, over HTTPS, and says so on a session auth line of its own.
// A certificate the Agent refuses (issued by a CA it does not trust, or to
// another user) fails that line with the fix, exit 1; the checks that need
// the session are skipped, the others still run.
func TestCheckCertificate(t *testing.T) {
	t.Parallel()
	p := natstest.NewPKI(t)            // the Agent's server certificate, and the bot's client certificate (CN symbridge)
	stranger := natstest.NewPKI(t)     // a CA the Agent does not trust
	const certUser = "symbridge"       // the CN of natstest's client certificates
	const password = "p12-password-42" // of the PKCS#12 file
	trusting := func(c *symphonytest.Config) { c.ClientCAs = p.Pool }

	t.Run("passes", func(t *testing.T) {
		t.Parallel()
		agent, agentURL := newTLSAgent(t, p, trusting, func(c *symphonytest.Config) { c.Username = certUser })
		certFile := clientCertFile(t, p, password)
		path := writeCertConfig(t, agentURL, natstest.RunServer(t).URL(), p, certUser, certFile, password)
		before := agentFeedState(agent)
		res, names := passingCheck(t, path)
		// The configuration file holds the certificate's password: a
		// secret file too.
		want := []string{"config", "secret file", "secret file", "agent", "session auth", "pod", "key manager", "feed", "nats", "jetstream", "stream", "coordination"}
		if !slices.Equal(names, want) {
			t.Errorf("checks %v, want %v", names, want)
		}
		certLine := `bot.certificate.path: ` + certFile + ` readable by its owner only (mode 0600)`
		if !slices.ContainsFunc(res, func(c checkResult) bool { return c.Name == "secret file" && c.Detail == certLine }) {
			t.Errorf("no secret file line %q", certLine)
		}
		who := `authenticated as ` + certUser + ` with the certificate`
		for name, re := range map[string]string{
			"agent":        `^https://127\.0\.0\.1:\d+ reachable, TLS certificate trusted \(system roots \+ ssl\.trustStore\)`,
			"session auth": `^https://127\.0\.0\.1:\d+, TLS certificate trusted \(system roots \+ ssl\.trustStore\): ` + who + `$`,
			"pod":          who + `; session of user id \d+`,
			"key manager":  `^https://127\.0\.0\.1:\d+, TLS certificate trusted .*: authenticated$`,
			"feed":         `no feed with tag "symbridge" yet; run creates one`,
		} {
			if d := find(t, res, name).Detail; !regexp.MustCompile(re).MatchString(d) {
				t.Errorf("%s: %q does not match %s", name, d, re)
			}
		}
		// Both logins were certificate logins: no RSA key was involved.
		if st := agent.Stats(); st.Auths != 1 || st.KMAuths != 1 || st.CertAuths != 2 || st.AuthFailures != 0 {
			t.Errorf("Agent logins: %d pod, %d key manager, %d by certificate, %d failed; want 1, 1, 2, 0",
				st.Auths, st.KMAuths, st.CertAuths, st.AuthFailures)
		}
		if after := agentFeedState(agent); !equalFeedState(before, after) {
			t.Errorf("check changed the Agent's feeds: before %+v, after %+v", before, after)
		}
	})

	for _, tc := range []struct {
		name      string
		agentUser string            // the account the Agent knows
		certFile  func() string     // the bot's certificate file
		password  string            // its password
		want      string            // regexp the session auth line's detail and fix match
		failures  int64             // logins the Agent answered 401/403
		statuses  map[string]string // other checks' expected statuses
	}{
		{
			// The Agent ends the TLS handshake: no login answer at all.
			name: "certificate from an untrusted CA", agentUser: certUser,
			certFile: func() string { return clientCertFile(t, stranger, "") },
			want:     `remote error: tls: unknown certificate authority — fix: check that bot\.certificate is the bot's certificate \(CN bot\.username\), issued by a CA the pod trusts`,
		},
		{
			name: "certificate of another user", agentUser: testBot,
			certFile: func() string { return clientCertFile(t, p, password) }, password: password,
			want:     `HTTP 403 Forbidden.* — fix: check that bot\.certificate is the bot's certificate \(CN bot\.username\)`,
			failures: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agent, agentURL := newTLSAgent(t, p, trusting, func(c *symphonytest.Config) { c.Username = tc.agentUser })
			path := writeCertConfig(t, agentURL, natstest.RunServer(t).URL(), p, tc.agentUser, tc.certFile(), tc.password)
			r := runCheck(t, "--config", path)
			if r.code != 1 {
				t.Errorf("exit %d (%v), want 1", r.code, r.err)
			}
			res := lines(t, r.stdout)
			f := find(t, res, "session auth")
			if got := f.Detail + " — fix: " + f.Fix; f.Status != statusFail || !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("session auth: %s %q; want fail matching %s", f.Status, got, tc.want)
			}
			for name, want := range map[string]string{"agent": statusOK, "pod": statusSkip, "key manager": statusSkip, "feed": statusSkip, "nats": statusOK, "stream": statusOK} {
				if got := find(t, res, name).Status; got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
			if d, want := find(t, res, "pod").Detail, "not tried: authentication at session auth failed"; d != want {
				t.Errorf("pod: %q, want %q", d, want)
			}
			if st := agent.Stats(); st.Auths != 0 || st.CertAuths != 0 || st.AuthFailures != tc.failures {
				t.Errorf("Agent logins: %d succeeded (%d by certificate), %d failed; want 0, 0, %d", st.Auths, st.CertAuths, st.AuthFailures, tc.failures)
			}
		})
	}
}

// TestCheckDatahose: with bridge.source datahose, the feed line names the
// tag and event types run would read with, exit 0; check creates no
// datahose feed (the first read would) and reads nothing.
func TestCheckDatahose(t *testing.T) {
	t.Parallel()
	bot, _ := keys(t)
	agent, agentURL := newAgent(t, &bot.PublicKey, time.Second)
	srv := natstest.RunServer(t)
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"tag and scopes", "  tag: audit-bridge\n  eventTypes: [MESSAGESENT, ROOMCREATED]\n  scopes: [INTERNAL, FEDERATED]\n",
			`datahose: run reads tag "audit-bridge" with event types MESSAGESENT, ROOMCREATED (scopes INTERNAL, FEDERATED); the Agent creates the feed at the first read`},
		{"default tag", "  eventTypes: [MESSAGESENT]\n",
			`datahose: run reads tag "datahose-` + testBot + `" with event types MESSAGESENT (all scopes); the Agent creates the feed at the first read`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, agentURL, srv.URL(), "bridge:\n", "datahose:\n"+tc.yaml+"bridge:\n  source: datahose\n")
			before := agentFeedState(agent)
			res, _ := passingCheck(t, path)
			if d := find(t, res, "config").Detail; !strings.Contains(d, ", datahose, pod acme") {
				t.Errorf("config: %q does not name the datahose", d)
			}
			if d := find(t, res, "feed").Detail; d != tc.want {
				t.Errorf("feed: %q, want %q", d, tc.want)
			}
			if after := agentFeedState(agent); !equalFeedState(before, after) || after.datahoseFeeds != 0 || after.reads != 0 {
				t.Errorf("check created or read a feed: before %+v, after %+v", before, after)
			}
		})
	}
}

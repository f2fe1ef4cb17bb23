package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// `symbridge check` loads the configuration as run does, then asks each
// dependency, once and within a time limit, what run would find: one line
// per check. It changes nothing and never reads a feed (a read would take
// events away from a bridge running on it), so it is safe beside a running
// bridge. Exit 0: no check failed (warnings allowed); 1: a dependency check
// failed; 2: the configuration is invalid.
//
// What fails and what only warns: run relies on what fails (credentials,
// trust, reachability, JetStream, a stream that captures every subject with
// a duplicate window of at least bridge.MinDuplicates and the configured
// replicas); a warning is something run does too but that deserves a look
// (other feeds of the account, a loose key file, the configuration's own
// warnings, stream settings that differ from nats.stream.* otherwise).

// Check statuses.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
	statusSkip = "skip" // not run: it depends on a check that failed, or does not apply
)

// checkResult is one line of check's output (one element of --json).
type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// checkReport is check's --json document.
type checkReport struct {
	OK     bool          `json:"ok"`
	Checks []checkResult `json:"checks"`
}

// checker collects the results, printing each line as it comes unless the
// output is JSON (printed whole at the end).
type checker struct {
	report checkReport
	text   io.Writer // nil under --json
}

func (c *checker) add(name, status, detail, fix string) {
	r := checkResult{Name: name, Status: status, Detail: detail, Fix: fix}
	c.report.Checks = append(c.report.Checks, r)
	if c.text == nil {
		return
	}
	label := map[string]string{statusOK: "ok", statusWarn: "WARN", statusFail: "FAIL", statusSkip: "skip"}[status]
	first, rest, _ := strings.Cut(detail, "\n")
	line := fmt.Sprintf("%-5s %s: %s", label, name, first)
	if fix != "" {
		line += " — fix: " + fix
	}
	fmt.Fprintln(c.text, line)
	for _, l := range strings.Split(rest, "\n") {
		if l != "" {
			fmt.Fprintln(c.text, "        "+l)
		}
	}
}

func (c *checker) ok(name, detail string)        { c.add(name, statusOK, detail, "") }
func (c *checker) warn(name, detail, fix string) { c.add(name, statusWarn, detail, fix) }
func (c *checker) fail(name, detail, fix string) { c.add(name, statusFail, detail, fix) }
func (c *checker) skip(name, detail string)      { c.add(name, statusSkip, detail, "") }

// finish prints the JSON document and returns the error check ends with.
func (c *checker) finish(stdout io.Writer, configErr error) error {
	failed := 0
	for _, r := range c.report.Checks {
		if r.Status == statusFail {
			failed++
		}
	}
	c.report.OK = failed == 0
	if c.text == nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c.report); err != nil {
			return err
		}
	}
	switch {
	case configErr != nil:
		return usageError{configErr}
	case failed > 0:
		return fmt.Errorf("check: %d of %d checks failed", failed, len(c.report.Checks))
	}
	return nil
}

func cmdCheck(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check --config FILE [--nats-url URL] [--json]")
	path := fs.String("config", "", "configuration file, as for run")
	natsURL := fs.String("nats-url", "", "overrides nats.url")
	asJSON := fs.Bool("json", false, "print one JSON document instead of one line per check")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	c := &checker{}
	if !*asJSON {
		c.text = stdout
	}

	// The configuration, as run loads it, and what run builds from it
	// before contacting anything: a problem here is exit 2, as for run.
	cfg, err := config.Load(*path, environ, flagOverrides(map[string]string{"nats.url": *natsURL}))
	if err == nil {
		err = cfg.Validate()
	}
	var client *symphony.Client
	var natsOpts []nats.Option
	var filters []string
	if err == nil {
		client, err = symphony.NewClient(clientConfig(cfg))
	}
	if err == nil {
		natsOpts, err = natsOptions(cfg)
	}
	if err == nil {
		subj, dead, serr := bridgeSubjects(cfg)
		err = serr
		if err == nil {
			filters = streamFilters(subj, dead)
		}
	}
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		c.fail("config", fmt.Sprintf("%s: %d problem(s)\n%s", shownPath(*path), len(problems), strings.Join(problems, "\n")),
			"correct the keys named (symbridge config keys lists every key)")
		return c.finish(stdout, err)
	}
	c.ok("config", fmt.Sprintf("%s: valid; bot %s, %s, pod %s", shownPath(*path), cfg.Username, sourceName(cfg), cfg.Bridge.Pod))
	checkSecretFiles(c, cfg)
	for _, w := range startupWarnings(cfg) {
		if !slices.ContainsFunc(cfg.SecretFiles, func(f config.SecretFile) bool { return f.Warning == w }) {
			c.warn("config", w, "")
		}
	}

	authErr := checkSymphony(ctx, c, cfg, client)
	checkFeed(ctx, c, cfg, client, authErr)
	checkNATS(ctx, c, cfg, natsOpts, filters)
	return c.finish(stdout, nil)
}

func shownPath(path string) string {
	if path == "" {
		return "configuration (environment only)"
	}
	return path
}

func sourceName(cfg *config.Config) string {
	switch {
	case cfg.Bridge.Source == "datahose":
		return "datahose"
	case cfg.Datafeed.Version == "v1":
		return "datafeed v1"
	}
	return "datafeed v2"
}

// checkSecretFiles reports the permissions of the files holding secrets:
// the bot's key or certificate, NATS credentials, the configuration file
// when it holds a secret itself.
func checkSecretFiles(c *checker, cfg *config.Config) {
	if len(cfg.SecretFiles) == 0 {
		c.skip("secret file", "no secret is kept in a file (the bot's key or certificate is inline)")
		return
	}
	for _, f := range cfg.SecretFiles {
		if f.Warning != "" {
			c.warn("secret file", f.Warning, "chmod 600 "+f.Path)
			continue
		}
		c.ok("secret file", fmt.Sprintf("%s: %s readable by its owner only (mode %#o)", f.Key, f.Path, f.Mode))
	}
}

// symphonyLimit bounds one Symphony check: what run allows one request.
func symphonyLimit(cfg *config.Config) time.Duration { return cfg.ConnectTimeout + cfg.ReadTimeout }

// checkSymphony checks the Agent (reachable, trusted, its version) and
// authentication at each server; it returns the authentication's error.
func checkSymphony(ctx context.Context, c *checker, cfg *config.Config, client *symphony.Client) error {
	limit := symphonyLimit(cfg)
	actx, cancel := context.WithTimeout(ctx, limit)
	info, err := client.AgentInfo(actx)
	cancel()
	if err != nil {
		c.fail("agent", err.Error(), symphonyFix(err, "agent", cfg))
	} else {
		c.ok("agent", fmt.Sprintf("%s reachable%s; version %s", cfg.AgentURL, tlsNote(cfg.AgentURL, cfg), info.Version))
	}

	certAuth := cfg.Certificate != nil
	first, method := symphony.EndpointPod, "RSA key"
	if certAuth {
		first, method = symphony.EndpointSessionAuth, "certificate"
	}
	actx, cancel = context.WithTimeout(ctx, limit)
	defer cancel()
	authErr := client.Authenticate(actx)
	at := first
	if ae := (*symphony.AuthError)(nil); errors.As(authErr, &ae) {
		at = ae.Endpoint
	}
	who := fmt.Sprintf("authenticated as %s with the %s", cfg.Username, method)
	if certAuth {
		if authErr != nil && at == symphony.EndpointSessionAuth {
			c.fail("session auth", authErr.Error(), symphonyFix(authErr, "sessionAuth", cfg))
		} else {
			c.ok("session auth", fmt.Sprintf("%s%s: %s", cfg.SessionAuthURL, tlsNote(cfg.SessionAuthURL, cfg), who))
		}
	}
	switch {
	case authErr != nil && at == symphony.EndpointPod:
		c.fail("pod", authErr.Error(), symphonyFix(authErr, "pod", cfg))
	case authErr != nil && certAuth:
		c.skip("pod", fmt.Sprintf("not tried: authentication at %s failed", at))
	case authErr != nil:
		c.ok("pod", fmt.Sprintf("%s%s: %s", cfg.PodURL, tlsNote(cfg.PodURL, cfg), who))
	default:
		u, err := client.SessionInfo(actx)
		if err != nil {
			c.fail("pod", err.Error(), symphonyFix(err, "pod", cfg))
			break
		}
		c.ok("pod", fmt.Sprintf("%s%s: %s; session of user id %d", cfg.PodURL, tlsNote(cfg.PodURL, cfg), who, u.ID))
	}
	switch {
	case authErr != nil && at == symphony.EndpointKeyManager:
		c.fail("key manager", authErr.Error(), symphonyFix(authErr, "keyManager", cfg))
	case authErr != nil:
		c.skip("key manager", fmt.Sprintf("not tried: authentication at %s failed", at))
	case client.SimplifiedKeyDelivery():
		c.ok("key manager", "not needed: the Agent and the session allow simplified key delivery")
	default:
		c.ok("key manager", fmt.Sprintf("%s%s: authenticated", cfg.KeyManagerURL, tlsNote(cfg.KeyManagerURL, cfg)))
	}
	return authErr
}

// tlsNote says how an https server's certificate was trusted.
func tlsNote(u string, cfg *config.Config) string {
	switch {
	case !strings.HasPrefix(u, "https:"):
		return ""
	case cfg.InsecureSkipVerify:
		return ", TLS certificate NOT verified (ssl.insecureSkipVerify)"
	case cfg.TrustStore != nil:
		return ", TLS certificate trusted (system roots + ssl.trustStore)"
	}
	return ", TLS certificate trusted (system roots)"
}

// symphonyFix says what to change for a Symphony error at a server whose
// keys start with component (agent, pod, keyManager, sessionAuth).
func symphonyFix(err error, component string, cfg *config.Config) string {
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var apiErr *symphony.APIError
	// Where the bot presents its client certificate, the server refuses it
	// with a TLS alert (issued by a CA it does not trust, expired) or, past the
	// handshake, with 403 (its CN is not the user): both are about
	// bot.certificate, not about reachability or a permission.
	certEndpoint := cfg.Certificate != nil && (component == "sessionAuth" || component == "keyManager")
	refused := errors.Is(err, symphony.ErrAuthRejected) ||
		errors.As(err, &opErr) && opErr.Op == "remote error" ||
		errors.As(err, &apiErr) && apiErr.StatusCode == 403
	switch {
	case errors.As(err, &hostErr):
		return fmt.Sprintf("the server's certificate does not name the host: check host or %s.host", component)
	case errors.As(err, &certErr), errors.As(err, &unknownCA):
		return "add the CA that issued the server's certificate to ssl.trustStore"
	case certEndpoint && refused:
		return "check that bot.certificate is the bot's certificate (CN bot.username), issued by a CA the pod trusts and still valid"
	case errors.Is(err, symphony.ErrAuthRejected):
		return "check bot.username and that bot.privateKey matches the public key registered for the bot on the pod"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s: check that the server is reachable from here (proxy, firewall) and connectionTimeout", symphonyLimit(cfg))
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return fmt.Sprintf("check host, port and %s.host / %s.port, and that the server is reachable from here (proxy, firewall)", component, component)
	case errors.As(err, &apiErr) && apiErr.StatusCode == 404:
		return fmt.Sprintf("check the context path (context, %s.context)", component)
	case errors.As(err, &apiErr) && apiErr.StatusCode == 403:
		return "the service account lacks a permission this call needs: ask the pod's administrator"
	}
	return ""
}

// checkFeed says which feed run would read, without reading it.
func checkFeed(ctx context.Context, c *checker, cfg *config.Config, client *symphony.Client, authErr error) {
	switch {
	case cfg.Bridge.Source == "datahose":
		d, err := symphony.NewDatahose(client, datahoseOptions(cfg))
		if err != nil {
			c.fail("feed", err.Error(), "check datahose.tag, datahose.eventTypes and datahose.scopes")
			return
		}
		scopes := "all scopes"
		if len(cfg.Datahose.Scopes) > 0 {
			scopes = "scopes " + strings.Join(cfg.Datahose.Scopes, ", ")
		}
		c.ok("feed", fmt.Sprintf("datahose: run reads tag %q with event types %s (%s); the Agent creates the feed at the first read",
			d.Tag(), strings.Join(cfg.Datahose.EventTypes, ", "), scopes))
	case cfg.Datafeed.Version == "v1":
		f := symphony.NewDatafeedV1(client, datafeedV1Options(cfg))
		c.warn("feed", fmt.Sprintf("datafeed v1: run reuses the feed id in %s or creates a feed; a v1 read removes events from the Agent, so a crash between read and publish loses them (at-most-once)", f.IDFile()),
			"use datafeed.version v2 where the Agent allows it")
	case authErr != nil:
		c.skip("feed", "not listed: authentication failed")
	default:
		actx, cancel := context.WithTimeout(ctx, symphonyLimit(cfg))
		defer cancel()
		plan, err := symphony.NewDatafeedV2(client, datafeedOptions(cfg, nil, nil)).Plan(actx)
		if err != nil {
			c.fail("feed", err.Error(), symphonyFix(err, "agent", cfg))
			return
		}
		if plan.Reuse != "" {
			c.ok("feed", fmt.Sprintf("datafeed v2: run reuses feed %s (tag %q)", plan.Reuse, cfg.Datafeed.Tag))
		} else {
			c.ok("feed", fmt.Sprintf("datafeed v2: no feed with tag %q yet; run creates one", cfg.Datafeed.Tag))
		}
		if len(plan.OtherFeeds) > 0 {
			c.warn("other feeds", fmt.Sprintf("the account has other datafeed v2 feeds: %s (another program's, e.g. the team bot's, or leaked ones); each gets its own copy of every event, so they take nothing from symbridge's",
				strings.Join(plan.OtherFeeds, ", ")),
				"delete the stale ones (DELETE /agent/v5/datafeeds/{id}); a leaked feed expires 30 min after its last read")
		}
	}
}

// natsLimit bounds one NATS step: run's connection attempt timeout.
const natsLimit = bridge.DefaultConnectTimeout

// checkNATS checks the connection, JetStream and the stream run would use.
func checkNATS(ctx context.Context, c *checker, cfg *config.Config, opts []nats.Option, filters []string) {
	if e := cfg.NATS.Embedded; e.Enabled {
		why := fmt.Sprintf("nats.embedded.enabled: run starts its own server on %s (data in %s)", e.Listen, e.Dir)
		c.skip("nats", why)
		c.skip("jetstream", why)
		c.skip("stream", why)
		skipCoordination(c, cfg, why)
		return
	}
	shown := redact.URLList(cfg.NATS.URL)
	nc, err := dialOnce(cfg.NATS.URL, "symbridge check", opts)
	if err != nil {
		detail := fmt.Sprintf("%s: %v", shown, err)
		if errors.Is(err, nats.ErrNoServers) {
			detail += fmt.Sprintf(" (refused, unreachable, or no answer within %s)", natsLimit)
		}
		c.fail("nats", detail, natsFix(err))
		c.skip("jetstream", "not checked: no NATS connection")
		c.skip("stream", "not checked: no NATS connection")
		skipCoordination(c, cfg, "not checked: no NATS connection")
		return
	}
	defer nc.Close()
	c.ok("nats", fmt.Sprintf("connected to %s (server %s)", nc.ConnectedUrlRedacted(), nc.ConnectedServerVersion()))

	js, err := jetstream.New(nc)
	if err != nil {
		c.fail("jetstream", err.Error(), "")
		c.skip("stream", "not checked: JetStream unusable")
		skipCoordination(c, cfg, "not checked: JetStream unusable")
		return
	}
	actx, cancel := context.WithTimeout(ctx, natsLimit)
	acct, err := js.AccountInfo(actx)
	cancel()
	if err != nil {
		fix := ""
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			fix = "enable JetStream on the server (nats-server -js, or a jetstream block in its configuration) and for the account"
		}
		c.fail("jetstream", err.Error(), fix)
		c.skip("stream", "not checked: JetStream unusable")
		skipCoordination(c, cfg, "not checked: JetStream unusable")
		return
	}
	l := acct.Limits
	c.ok("jetstream", fmt.Sprintf("enabled; account limits: storage %s (%s used), memory %s (%s used), streams %s (%d used), consumers %s",
		byteLimit(l.MaxStore), byteSize(acct.Store), byteLimit(l.MaxMemory), byteSize(acct.Memory), countLimit(l.MaxStreams), acct.Streams, countLimit(l.MaxConsumers)))

	actx, cancel = context.WithTimeout(ctx, natsLimit)
	defer cancel()
	r, err := bridge.InspectStream(actx, js, cfg.NATS.Stream.Bridge(), filters)
	if err != nil {
		c.fail("stream", err.Error(), "")
	} else {
		checkStream(c, r, acct, filters)
	}
	checkCoordination(actx, c, cfg, js)
}

// skipCoordination reports the coordination check as skipped, for a
// datafeed v2 configuration (the only one that coordinates).
func skipCoordination(c *checker, cfg *config.Config, why string) {
	if cfg.Bridge.Source == "datafeed" && cfg.Datafeed.Version == "v2" {
		c.skip("coordination", why)
	}
}

// checkCoordination reads the feed coordination buckets, as run opens them,
// without creating them: a WARN when run would have to decide alone.
func checkCoordination(ctx context.Context, c *checker, cfg *config.Config, js jetstream.JetStream) {
	if !coordinates(cfg) {
		skipCoordination(c, cfg, "datafeed.coordination.enabled is false: each instance decides its feed alone")
		return
	}
	records, claims := cfg.Datafeed.Coordination.Bucket, cfg.Datafeed.Coordination.Bucket+config.ClaimsBucketSuffix
	var kv jetstream.KeyValue
	var missing []string
	for _, name := range []string{records, claims} {
		b, err := js.KeyValue(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			missing = append(missing, name)
		case err != nil:
			c.warn("coordination", fmt.Sprintf("bucket %s: %v; run would decide the feed alone (instances may each read a copy of every event)", name, err),
				"grant the permissions in docs/security.md (NATS permissions for feed coordination)")
			return
		case name == records:
			kv = b
		}
	}
	if len(missing) > 0 {
		what := "bucket " + missing[0] + " missing; run creates it"
		if len(missing) == 2 {
			what = "buckets " + strings.Join(missing, " and ") + " missing; run creates them"
		}
		c.ok("coordination", what)
		return
	}
	key := symphony.FeedKey(cfg.PodURL, cfg.Username, cfg.Datafeed.Tag)
	var rec symphony.FeedRecord
	switch e, err := kv.Get(ctx, key); {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		c.ok("coordination", fmt.Sprintf("buckets %s and %s exist; no feed recorded for tag %q yet", records, claims, cfg.Datafeed.Tag))
	case err != nil:
		c.warn("coordination", fmt.Sprintf("bucket %s: reading key %s: %v", records, key, err),
			"grant the permissions in docs/security.md (NATS permissions for feed coordination)")
	case json.Unmarshal(e.Value(), &rec) != nil:
		c.warn("coordination", fmt.Sprintf("bucket %s: key %s does not hold a feed record; run replaces it", records, key), "")
	default:
		c.ok("coordination", fmt.Sprintf("buckets %s and %s exist; the instances share feed %s (recorded %s)",
			records, claims, rec.ID, rec.Created.UTC().Format(time.RFC3339)))
	}
}

// checkStream judges the stream by the rules run relies on.
func checkStream(c *checker, r bridge.StreamReport, acct *jetstream.AccountInfo, filters []string) {
	want := r.Configured
	settings := fmt.Sprintf("subjects %s, duplicate window %s, %d replica(s), max age %s",
		strings.Join(r.Subjects, ", "), shortDuration(r.Duplicates), r.Replicas, ageLimit(r.MaxAge))
	var problems, fixes []string
	if len(r.Uncovered) > 0 {
		problems = append(problems, fmt.Sprintf("it does not capture %s", strings.Join(r.Uncovered, ", ")))
		if r.Exists {
			fixes = append(fixes, fmt.Sprintf("add the subjects to the stream (nats stream edit %s --subjects ...) or change bridge.subject / bridge.deadLetter", r.Name))
		} else {
			fixes = append(fixes, "add them to nats.stream.subjects or change bridge.subject / bridge.deadLetter")
		}
	}
	if r.ShortDuplicates() {
		problems = append(problems, fmt.Sprintf("its duplicate window %s is shorter than %s (a feed's life): a redelivery after it would be stored twice",
			shortDuration(r.Duplicates), shortDuration(bridge.MinDuplicates)))
		if r.Exists {
			fixes = append(fixes, fmt.Sprintf("nats stream edit %s --dupe-window %s", r.Name, shortDuration(bridge.DefaultDuplicates)))
		} else {
			fixes = append(fixes, fmt.Sprintf("set nats.stream.duplicates to at least %s", shortDuration(bridge.MinDuplicates)))
		}
	}
	if r.Exists && r.Replicas != want.Replicas {
		problems = append(problems, fmt.Sprintf("it has %d replica(s), nats.stream.replicas asks for %d", r.Replicas, want.Replicas))
		fixes = append(fixes, fmt.Sprintf("set nats.stream.replicas to %d, or change the stream's (nats stream edit %s --replicas %d)", r.Replicas, r.Name, want.Replicas))
	}
	if !r.Exists && acct.Limits.MaxStreams > 0 && acct.Streams >= acct.Limits.MaxStreams {
		problems = append(problems, fmt.Sprintf("the account is at its limit of %d streams: run cannot create it", acct.Limits.MaxStreams))
		fixes = append(fixes, "raise the account's stream limit or remove an unused stream")
	}
	state := fmt.Sprintf("%s exists: %s", r.Name, settings)
	if !r.Exists {
		state = fmt.Sprintf("%s does not exist; run creates it with %s (only run proves the permission to create it)", r.Name, settings)
	}
	if len(problems) > 0 {
		c.fail("stream", state+"; "+strings.Join(problems, "; "), strings.Join(fixes, "; "))
		return
	}
	if r.Exists && r.DiffersFromConfig() {
		c.warn("stream", state+"; other settings differ from nats.stream.* and run leaves them as they are", "")
		return
	}
	c.ok("stream", state+fmt.Sprintf("; captures %s", strings.Join(filters, ", ")))
}

func ageLimit(d time.Duration) string {
	if d == 0 {
		return "unlimited"
	}
	return shortDuration(d)
}

// shortDuration drops a duration's zero minutes and seconds: 35m, 168h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func byteLimit(n int64) string {
	if n < 0 {
		return "no account limit" // the server's own limit applies
	}
	return byteSize(uint64(n))
}

func countLimit(n int) string {
	if n <= 0 {
		return "no limit"
	}
	return fmt.Sprint(n)
}

func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// natsFix says what to change for a NATS connection error.
func natsFix(err error) string {
	msg := strings.ToLower(err.Error())
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(msg, "authorization violation"):
		return "check nats.user and nats.password, nats.token, nats.credsFile or nats.nkeyFile (or the credentials in nats.url)"
	case errors.As(err, &unknownCA) || strings.Contains(msg, "unknown authority"):
		return "set nats.tls.caFile to the CA that issued the server's certificate"
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate"):
		return "the server wants a client certificate: set nats.tls.certFile and nats.tls.keyFile"
	case strings.Contains(msg, "tls"):
		return "check nats.tls.* and whether the server expects TLS (tls:// in nats.url)"
	}
	return "check nats.url and that the server is running and reachable from here"
}

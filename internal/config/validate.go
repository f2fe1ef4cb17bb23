package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Validate reports every problem of the configuration, each naming its key
// and the reason, joined into one error (nil when the configuration is
// usable). It includes what Load found but could not fail on: missing or
// unreadable key, certificate and trust-store files, conflicting
// alternatives. Subject templates and the stream are checked by the rules of
// the packages that use them (pkg/subjects, pkg/bridge), named here by key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	errs = append(errs, c.problems...)

	// Symphony side.
	// The unexported flags count a method whose file failed to load, so that
	// the file's problem is reported rather than a missing key.
	rsaAuth := len(c.PrivateKeyPEM) > 0 || c.PrivateKeyPath != "" || c.rsaConfigured
	certAuth := c.Certificate != nil || c.certConfigured
	switch {
	case !rsaAuth && !certAuth:
		add("bot.privateKey.path: required: configure bot.privateKey (RSA) or bot.certificate (certificate authentication)")
	case rsaAuth && certAuth:
		add("bot.certificate: configure either bot.privateKey or bot.certificate, not both")
	}
	if c.Username == "" {
		add("bot.username: required")
	}
	c.checkEndpoint(&errs, "pod", c.PodURL)
	c.checkEndpoint(&errs, "agent", c.AgentURL)
	c.checkEndpoint(&errs, "keyManager", c.KeyManagerURL)
	if certAuth {
		c.checkEndpoint(&errs, "sessionAuth", c.SessionAuthURL)
	}
	if c.ConnectTimeout <= 0 {
		add("connectionTimeout: must be positive, got %s", c.ConnectTimeout)
	}
	if c.ReadTimeout <= 0 {
		add("readTimeout: must be positive, got %s", c.ReadTimeout)
	}

	// Feeds.
	switch c.Datafeed.Version {
	case "v1", "v2":
	default:
		add("datafeed.version: must be v2 or v1, got %q", c.Datafeed.Version)
	}
	switch c.Bridge.Source {
	case "datafeed":
		if c.Datafeed.Version == "v2" {
			if n := len(c.Datafeed.Tag); n == 0 || n > maxDatafeedTag {
				add("datafeed.tag: must be 1 to %d characters (symbridge reads a feed of its own), got %d", maxDatafeedTag, n)
			}
		}
		if c.Datafeed.Version == "v1" && c.Datafeed.IDFilePath == "" {
			add("datafeed.idFilePath: required with datafeed.version v1")
		}
		if err := c.Datafeed.Retry.Validate("datafeed.retry"); err != nil {
			errs = append(errs, err)
		}
	case "datahose":
		c.checkDatahose(&errs)
	default:
		add("bridge.source: must be datafeed or datahose, got %q", c.Bridge.Source)
	}

	// Bridge.
	if c.Bridge.Pod == "" && c.PodURL != "" { // without a pod host, pod.host is reported
		add("bridge.pod: required (it defaults to the first label of the pod host)")
	} else if strings.ContainsFunc(c.Bridge.Pod, unicode.IsSpace) {
		add("bridge.pod: must not contain whitespace, got %q", c.Bridge.Pod)
	}
	if _, err := subjects.Compile(c.Bridge.Subject); err != nil {
		add("bridge.subject: %w", err)
	}
	if _, err := subjects.Compile(c.Bridge.DeadLetter); err != nil {
		add("bridge.deadLetter: %w", err)
	}
	if c.Bridge.PublishTimeout <= 0 {
		add("bridge.publishTimeout: must be positive, got %s", c.Bridge.PublishTimeout)
	}
	if c.Bridge.SlowRetry <= 0 {
		add("bridge.slowRetry: must be positive, got %s", c.Bridge.SlowRetry)
	}
	if c.Bridge.MaxPending < 1 {
		add("bridge.maxPending: must be at least 1, got %d", c.Bridge.MaxPending)
	}
	if c.Bridge.Readers < 1 {
		add("bridge.readers: must be at least 1, got %d", c.Bridge.Readers)
	}
	if c.Bridge.DedupeEntries < 0 {
		add("bridge.dedupeEntries: must be 0 (disabled) or more, got %d", c.Bridge.DedupeEntries)
	}
	if c.Bridge.MaxBodyBytes < minBodyBytes {
		add("bridge.maxBodyBytes: must be at least %d (1 MiB) so that one large event never blocks the feed, got %d", minBodyBytes, c.Bridge.MaxBodyBytes)
	}

	c.checkNATS(&errs)

	if c.HTTP.Listen != "" {
		if err := checkHostPort(c.HTTP.Listen); err != nil {
			add("http.listen: %v", err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format: must be text or json, got %q", c.Log.Format)
	}
	if c.Runtime.MaxProcs < 0 {
		add("runtime.maxProcs: must be 0 (Go's default) or more, got %d", c.Runtime.MaxProcs)
	}
	if c.Runtime.GCPercent < -1 {
		add("runtime.gcPercent: must be -1 (off) or more, got %d", c.Runtime.GCPercent)
	}
	return errors.Join(errs...)
}

const minBodyBytes = 1 << 20

// checkEndpoint names the key that supplied the faulty part of a URL.
func (c *Config) checkEndpoint(errs *[]error, comp, raw string) {
	ep, ok := c.endpoints[comp]
	if !ok {
		ep = endpoint{scheme: comp + ".scheme", host: comp + ".host", port: comp + ".port"}
	}
	if raw == "" {
		*errs = append(*errs, fmt.Errorf("%s.host: required (set %s.host or the global host)", comp, comp))
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: invalid URL: %w", ep.port, err))
		return
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		*errs = append(*errs, fmt.Errorf("%s: must be https or http, got %q", ep.scheme, u.Scheme))
	}
	if u.Hostname() == "" {
		*errs = append(*errs, fmt.Errorf("%s: required", ep.host))
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		*errs = append(*errs, fmt.Errorf("%s: must be between 1 and 65535, got %q", ep.port, u.Port()))
	}
}

func (c *Config) checkDatahose(errs *[]error) {
	add := func(format string, a ...any) { *errs = append(*errs, fmt.Errorf(format, a...)) }
	if len(c.Datahose.EventTypes) == 0 {
		add("datahose.eventTypes: required when bridge.source is datahose (e.g. MESSAGESENT,ROOMCREATED)")
	}
	var unknown []string
	for _, t := range c.Datahose.EventTypes {
		if !symphony.IsKnownType(t) {
			unknown = append(unknown, t)
		}
	}
	if len(unknown) > 0 {
		add("datahose.eventTypes: unknown event types %s (known: %s)", strings.Join(unknown, ", "), strings.Join(symphony.KnownTypes(), ", "))
	}
	if n := len(c.Datahose.Tag); n == 0 || n > maxDatahoseTag {
		add("datahose.tag: must be 1 to %d characters, got %d", maxDatahoseTag, n)
	}
	for _, s := range c.Datahose.Scopes {
		switch s {
		case "INTERNAL", "EXTERNAL", "FEDERATED":
		default:
			add("datahose.scopes: must be INTERNAL, EXTERNAL or FEDERATED, got %q", s)
		}
	}
	if err := c.Datahose.Retry.Validate("datahose.retry"); err != nil {
		*errs = append(*errs, err)
	}
}

func (c *Config) checkNATS(errs *[]error) {
	add := func(format string, a ...any) { *errs = append(*errs, fmt.Errorf(format, a...)) }
	n := c.NATS
	if n.Embedded.Enabled {
		if n.Embedded.Dir == "" {
			add("nats.embedded.dir: required when nats.embedded.enabled is true")
		}
		if err := checkHostPort(n.Embedded.Listen); err != nil {
			add("nats.embedded.listen: %v", err)
		}
	} else if n.URL == "" {
		add("nats.url: required unless nats.embedded.enabled is true")
	}
	if n.URL != "" {
		for _, one := range strings.Split(n.URL, ",") {
			if err := checkNATSURL(strings.TrimSpace(one)); err != nil {
				add("nats.url: %v", err)
			}
		}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		add("nats.tls.certFile, nats.tls.keyFile: set both or neither")
	}
	if n.CredsFile != "" && n.NKeyFile != "" {
		add("nats.credsFile, nats.nkeyFile: set only one of them")
	}

	if n.PingInterval <= 0 {
		add("nats.pingInterval: must be positive, got %s", n.PingInterval)
	}
	s := n.Stream
	err := bridge.StreamConfig{Name: s.Name, Subjects: s.Subjects, Duplicates: s.Duplicates, MaxAge: s.MaxAge,
		Replicas: s.Replicas, MaxMsgSize: s.MaxMsgSize}.Validate()
	for _, e := range keyErrors(err) {
		var fe *bridge.FieldError
		if errors.As(e, &fe) { // "MaxMsgSize" -> nats.stream.maxMsgSize
			add("nats.stream.%s%s: %w", strings.ToLower(fe.Field[:1]), fe.Field[1:], fe.Err)
		}
	}
}

// checkNATSURL accepts what nats.go accepts: a URL with a nats, tls, ws or
// wss scheme, or host:port (nats:// is then implied).
func checkNATSURL(s string) error {
	if s == "" {
		return errors.New("empty server URL in the list")
	}
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q", redact.URL(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme must be nats, tls, ws or wss, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("no host in %q", u.Redacted())
	}
	return nil
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port or :port, got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be between 0 and 65535, got %q", port)
	}
	return nil
}

package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/symbridge/symbridge/internal/redact"
	"github.com/symbridge/symbridge/pkg/symphony"
)

const redacted = redact.Redacted

// The printing methods have value receivers on purpose: fmt then uses them
// for a Config as well as for a *Config, so that printing either never falls
// back to the default struct formatting, which would show the secrets.

// String is [Config.Redacted].
func (c Config) String() string { return c.Redacted() }

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.Redacted() }

// LogValue logs the redacted configuration as a group.
func (c Config) LogValue() slog.Value {
	pairs := c.pairs()
	attrs := make([]slog.Attr, 0, len(pairs))
	for _, p := range pairs {
		attrs = append(attrs, slog.String(p[0], p[1]))
	}
	return slog.GroupValue(attrs...)
}

// Redacted renders the effective configuration one "key: value" per line,
// secrets replaced by [redacted] (or "" when not set).
func (c Config) Redacted() string {
	var b strings.Builder
	for _, p := range c.pairs() {
		b.WriteString(p[0])
		b.WriteString(": ")
		b.WriteString(p[1])
		b.WriteByte('\n')
	}
	return b.String()
}

func userInfo(user, password string) string {
	if password == "" {
		return url.User(user).String()
	}
	return url.UserPassword(user, password).String()
}

func (c Config) pairs() [][2]string {
	p := [][2]string{
		{"pod", c.PodURL},
		{"agent", c.AgentURL},
		{"keyManager", c.KeyManagerURL},
		{"sessionAuth", c.SessionAuthURL},
		{"proxy", redact.URL(c.ProxyURL)},
	}
	for _, x := range [][2]string{
		{"pod.proxy", c.PodProxyURL}, {"agent.proxy", c.AgentProxyURL},
		{"keyManager.proxy", c.KeyManagerProxyURL}, {"sessionAuth.proxy", c.SessionAuthProxyURL},
	} {
		if x[1] != c.ProxyURL {
			p = append(p, [2]string{x[0], redact.URL(x[1])})
		}
	}
	key := ""
	switch {
	case c.PrivateKeyPath != "":
		key = c.PrivateKeyPath
	case len(c.PrivateKeyPEM) > 0:
		key = "inline " + redacted
	}
	cert := ""
	if c.Certificate != nil {
		cert = "configured"
		if c.Certificate.Leaf != nil {
			cert = fmt.Sprintf("%s (expires %s)", c.Certificate.Leaf.Subject, c.Certificate.Leaf.NotAfter.Format("2006-01-02"))
		}
	}
	trust := "system roots"
	if c.TrustStore != nil {
		trust = "system roots + configured trust store"
	}
	n := c.NATS
	p = append(p, [][2]string{
		{"bot.username", c.Username},
		{"bot.privateKey", key},
		{"bot.certificate", cert},
		{"ssl.trustStore", trust},
		{"ssl.insecureSkipVerify", fmt.Sprint(c.InsecureSkipVerify)},
		{"connectionTimeout", c.ConnectTimeout.String()},
		{"readTimeout", c.ReadTimeout.String()},
		{"datafeed.version", c.Datafeed.Version},
		{"datafeed.tag", c.Datafeed.Tag},
		{"datafeed.includeInvisible", fmt.Sprint(c.Datafeed.IncludeInvisible)},
		{"datafeed.idFilePath", c.Datafeed.IDFilePath},
		{"datafeed.coordination.enabled", fmt.Sprint(c.Datafeed.Coordination.Enabled)},
		{"datafeed.coordination.bucket", c.Datafeed.Coordination.Bucket},
		{"datafeed.retry", retryString(c.Datafeed.Retry)},
		{"datahose.tag", c.Datahose.Tag},
		{"datahose.eventTypes", strings.Join(c.Datahose.EventTypes, ",")},
		{"datahose.scopes", strings.Join(c.Datahose.Scopes, ",")},
		{"datahose.retry", retryString(c.Datahose.Retry)},
		{"bridge.source", c.Bridge.Source},
		{"bridge.pod", c.Bridge.Pod},
		{"bridge.subject", c.Bridge.Subject},
		{"bridge.deadLetter", c.Bridge.DeadLetter},
		{"bridge.publishTimeout", c.Bridge.PublishTimeout.String()},
		{"bridge.slowRetry", c.Bridge.SlowRetry.String()},
		{"bridge.maxPending", fmt.Sprint(c.Bridge.MaxPending)},
		{"bridge.readers", fmt.Sprint(c.Bridge.Readers)},
		{"bridge.dedupeEntries", fmt.Sprint(c.Bridge.DedupeEntries)},
		{"bridge.maxBodyBytes", fmt.Sprint(c.Bridge.MaxBodyBytes)},
	}...)
	p = append(p, n.pairs()...)
	p = append(p, [][2]string{
		{"http.listen", c.HTTP.Listen},
		{"log.level", c.Log.Level},
		{"log.format", c.Log.Format},
		{"runtime.maxProcs", fmt.Sprint(c.Runtime.MaxProcs)},
		{"runtime.gcPercent", fmt.Sprint(c.Runtime.GCPercent)},
		{"runtime.memoryLimit", fmt.Sprint(c.Runtime.MemoryLimit)},
	}...)
	return p
}

func retryString(r symphony.RetryConfig) string {
	return fmt.Sprintf("maxAttempts=%d initial=%s multiplier=%g max=%s", r.MaxAttempts, r.Initial, r.Multiplier, r.Max)
}

// String keeps the NATS token and password out of prints of the section.
func (n NATSConfig) String() string {
	var b strings.Builder
	for i, p := range n.pairs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", p[0], p[1])
	}
	return b.String()
}

// GoString keeps %#v from printing the NATS secrets.
func (n NATSConfig) GoString() string { return n.String() }

func (n NATSConfig) pairs() [][2]string {
	return [][2]string{
		{"nats.url", redact.URLList(n.URL)},
		{"nats.credsFile", n.CredsFile},
		{"nats.nkeyFile", n.NKeyFile},
		{"nats.token", n.Token.String()},
		{"nats.user", n.User},
		{"nats.password", n.Password.String()},
		{"nats.tls.caFile", n.TLS.CAFile},
		{"nats.tls.certFile", n.TLS.CertFile},
		{"nats.tls.keyFile", n.TLS.KeyFile},
		{"nats.tls.insecureSkipVerify", fmt.Sprint(n.TLS.InsecureSkipVerify)},
		{"nats.stream.name", n.Stream.Name},
		{"nats.stream.subjects", strings.Join(n.Stream.Subjects, ",")},
		{"nats.pingInterval", n.PingInterval.String()},
		{"nats.stream.duplicates", n.Stream.Duplicates.String()},
		{"nats.stream.maxAge", n.Stream.MaxAge.String()},
		{"nats.stream.replicas", fmt.Sprint(n.Stream.Replicas)},
		{"nats.stream.maxMsgSize", fmt.Sprint(n.Stream.MaxMsgSize)},
		{"nats.embedded.enabled", fmt.Sprint(n.Embedded.Enabled)},
		{"nats.embedded.dir", n.Embedded.Dir},
		{"nats.embedded.listen", n.Embedded.Listen},
	}
}

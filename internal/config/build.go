package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/symbridge/symbridge/internal/dedupe"
	"github.com/symbridge/symbridge/pkg/symphony"
)

const (
	longPoll = 30 * time.Second
	// baseMemory is the soft memory limit's share for the runtime, NATS
	// client buffers and messages in flight; reads in flight
	// (bridge.maxBodyBytes each) and the dedupe set come on top of it.
	baseMemory = 32 << 20
)

func (c *Config) isSet(key string) bool { return c.source[key] != "" }

// problem records err (if any) for Validate under the key as it was written;
// a problem that components inherited is recorded once.
func (c *Config) problem(key string, err error) {
	if err != nil {
		err = &keyError{cmp.Or(c.source[key], key), err}
		if !slices.ContainsFunc(c.problems, func(p error) bool { return p.Error() == err.Error() }) {
			c.problems = append(c.problems, err)
		}
	}
}

// build computes what the keys do not give as such: derived defaults, the
// servers' URLs and proxies, the key, certificate and trust store.
func (c *Config) build(f *fileKeys) {
	c.Username = strings.TrimSpace(f.Bot.Username)
	c.buildAuth(f)
	c.buildSymphony(f)
	c.ConnectTimeout, c.ReadTimeout = time.Duration(f.Agent.ConnectionTimeout), time.Duration(f.Agent.ReadTimeout)
	if c.ReadTimeout > 0 && c.ReadTimeout <= longPoll {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s: %s is not longer than the Agent's %s long poll; reads that wait for events will time out and be retried",
			cmp.Or(c.source["agent.readTimeout"], "readTimeout"), c.ReadTimeout, longPoll))
	}
	c.InsecureSkipVerify = f.SSL.InsecureSkipVerify

	c.Datafeed, c.Datahose = f.Datafeed.DatafeedConfig, f.Datahose.DatahoseConfig
	c.Datafeed.Version = fold(c.Datafeed.Version)
	c.Datafeed.Retry, c.Datahose.Retry = f.Datafeed.Retry.config(), f.Datahose.Retry.config()
	for _, list := range [][]string{c.Datahose.EventTypes, c.Datahose.Scopes} {
		for i := range list {
			list[i] = strings.ToUpper(list[i])
		}
	}
	if !c.isSet("datahose.tag") {
		// The BDK's derivation (Python: from bot.username; Java: the same name
		// read from the pod), truncated to the datahose limit. Without a
		// username Validate reports bot.username.
		c.Datahose.Tag = symphony.DefaultDatahoseTag(c.Username)
	}

	c.Bridge, c.NATS, c.HTTP, c.Runtime = f.Bridge, f.NATS, f.HTTP, f.Runtime
	c.Bridge.Source = fold(c.Bridge.Source)
	if host := strings.TrimSpace(f.Pod.Host); !c.isSet("bridge.pod") && net.ParseIP(host) != nil {
		c.Bridge.Pod = strings.NewReplacer(".", "-", ":", "-").Replace(host) // 10-0-0-7
	} else if !c.isSet("bridge.pod") {
		c.Bridge.Pod, _, _ = strings.Cut(host, ".") // the first label: acme for acme.symphony.com
	}
	c.NATS.URL, c.HTTP.Listen = strings.TrimSpace(c.NATS.URL), strings.TrimSpace(c.HTTP.Listen)
	c.warnPermissions("nats.credsFile", c.NATS.CredsFile)
	c.warnPermissions("nats.nkeyFile", c.NATS.NKeyFile)
	c.warnPermissions("nats.tls.keyFile", c.NATS.TLS.KeyFile)
	c.Log = LogConfig{Level: fold(f.Log.Level), Format: fold(f.Log.Format)}

	floor := c.MinMemoryLimit()
	if c.NATS.Embedded.Enabled && !c.isSet("runtime.maxProcs") {
		c.Runtime.MaxProcs = 0 // JetStream in the same process needs the CPUs
	}
	switch {
	case c.isSet("runtime.memoryLimit") && c.Runtime.MemoryLimit < floor:
		c.problem("runtime.memoryLimit", fmt.Errorf(
			"must be at least %d (32 MiB + bridge.maxBodyBytes × bridge.readers + the dedupe set of bridge.dedupeEntries), got %d",
			floor, c.Runtime.MemoryLimit))
	case !c.isSet("runtime.memoryLimit") && !c.NATS.Embedded.Enabled:
		// No default limit with the embedded nats-server, whose memory (the
		// stream's cache) this budget does not cover.
		c.Runtime.MemoryLimit = floor
	}
}

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// MinMemoryLimit is the least soft memory limit the configuration runs in:
// [baseMemory], plus bridge.readers reads of bridge.maxBodyBytes in flight,
// plus the dedupe set full (its size per entry is internal/dedupe's, which
// measures it against the heap: dedupe.FullBytes).
func (c *Config) MinMemoryLimit() int64 {
	reads := int64(max(c.Bridge.Readers, 1))
	if c.Bridge.MaxBodyBytes > (math.MaxInt64-(1<<40))/reads {
		return math.MaxInt64 // absurd but accepted sizes: no finite floor
	}
	n := baseMemory + reads*max(c.Bridge.MaxBodyBytes, 0)
	if c.Bridge.DedupeEntries > 0 {
		n += dedupe.FullBytes(c.Bridge.DedupeEntries)
	}
	return n
}

// buildSymphony composes each server's URL from its parts, which Load has
// inherited from the global keys, and its proxy: its own block, else the
// global one. A faulty part of a server in use is reported under its key.
func (c *Config) buildSymphony(f *fileKeys) {
	c.ProxyURL = c.proxyURL("", f.Proxy)
	for _, s := range []struct {
		key        string
		own        *serverKeys
		url, proxy *string
	}{
		{"pod.", &f.Pod, &c.PodURL, &c.PodProxyURL},
		{"agent.", &f.Agent.serverKeys, &c.AgentURL, &c.AgentProxyURL},
		{"keyManager.", &f.KeyManager, &c.KeyManagerURL, &c.KeyManagerProxyURL},
		{"sessionAuth.", &f.SessionAuth, &c.SessionAuthURL, &c.SessionAuthProxyURL},
	} {
		host, scheme, port := strings.TrimSpace(s.own.Host), fold(s.own.Scheme), s.own.Port
		if host != "" {
			context := strings.Trim(strings.TrimSpace(s.own.Context), "/") // "/" and "" are none
			*s.url = strings.TrimSuffix(scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+"/"+context, "/")
		}
		_, urlErr := url.Parse(*s.url)
		used, portOK := s.key != "sessionAuth." || c.certConfigured, port >= 1 && port <= 65535
		switch {
		case strings.ContainsAny(host, "/@?#"):
			c.problem(s.key+"host", fmt.Errorf("must be a host name, without scheme or path, got %q", host))
		case !used:
		case host == "":
			c.problems = append(c.problems, &keyError{s.key + "host", fmt.Errorf("required (set %shost or the global host)", s.key)})
		case scheme != "https" && scheme != "http":
			c.problem(s.key+"scheme", fmt.Errorf("must be https or http, got %q", scheme))
		case portOK && urlErr != nil:
			c.problem(s.key+"host", fmt.Errorf("invalid URL: %w", urlErr))
		}
		if used && host != "" && !portOK {
			c.problem(s.key+"port", fmt.Errorf("must be between 1 and 65535, got %q", strconv.Itoa(port)))
		}
		if *s.proxy = c.proxyURL(s.key, s.own.Proxy); *s.proxy == "" {
			*s.proxy = c.ProxyURL
		}
	}
}

// proxyURL composes one proxy block (prefix "" = the global one) with its
// credentials; "" when the block has no host.
func (c *Config) proxyURL(prefix string, p proxyKeys) string {
	host, u := strings.TrimSpace(p.Host), "http://"
	switch {
	case host == "":
		return ""
	case !c.isSet(prefix + "proxy.port"):
		c.problem(prefix+"proxy.port", fmt.Errorf("required when %sproxy.host is set", prefix))
		return ""
	case p.Port < 1 || p.Port > 65535:
		c.problem(prefix+"proxy.port", fmt.Errorf("must be between 1 and 65535, got %d", p.Port))
		return ""
	case p.Username != "":
		u += userInfo(p.Username, p.Password.Reveal()) + "@"
	}
	return u + net.JoinHostPort(host, strconv.Itoa(p.Port))
}

// buildAuth reads the bot's key or certificate and the trust store. Their
// problems are recorded for Validate, so that Load still returns the rest.
func (c *Config) buildAuth(f *fileKeys) {
	bot, ts := &f.Bot, &f.SSL.TrustStore
	if p := bot.PrivateKey.Path; strings.TrimSpace(p) != "" {
		c.rsaConfigured, c.PrivateKeyPath = true, p
		if c.PrivateKeyPEM = c.readFile("bot.privateKey.path", p, true); c.PrivateKeyPEM != nil {
			c.problem("bot.privateKey.path", checkRSAPrivateKeyPEM(c.PrivateKeyPEM))
		}
	} else if s := bot.PrivateKey.Content.Reveal(); strings.TrimSpace(s) != "" {
		var err error
		c.rsaConfigured = true
		c.PrivateKeyPEM, err = privateKeyContentPEM(s)
		c.problem("bot.privateKey.content", err)
	}

	if data, key := c.material("bot.certificate", bot.Certificate.Path, bot.Certificate.Content.Reveal(), true); key != "" {
		var err error
		c.certConfigured = true
		if data != nil {
			c.Certificate, err = parseCertificate(data, bot.Certificate.Password.Reveal())
		}
		c.problem(blame(err, errCertificatePassword, key, "bot.certificate.password"), err)
	}
	if data, key := c.material("ssl.trustStore", ts.Path, ts.Content, false); data != nil {
		certs, err := parseTrustStore(data, ts.Password.Reveal())
		c.problem(blame(err, errTrustStorePassword, key, "ssl.trustStore.password"), err)
		if err == nil {
			c.TrustStore = certPool(certs)
		}
	}
}

// material reads the file of prefix.path, else decodes prefix.content; key
// is the one used ("" = neither), data nil when it is unreadable.
func (c *Config) material(prefix, path, content string, secret bool) (data []byte, key string) {
	switch {
	case strings.TrimSpace(path) != "":
		return c.readFile(prefix+".path", path, secret), prefix + ".path"
	case strings.TrimSpace(content) != "":
		return decodeContent(content), prefix + ".content"
	}
	return nil, ""
}

// blame names the key to fix: the password's when it is wrong.
func blame(err, wrongPassword error, key, passwordKey string) string {
	if errors.Is(err, wrongPassword) {
		return passwordKey
	}
	return key
}

// readFile reads the file a key names, nil with a problem when it cannot.
func (c *Config) readFile(key, path string, secret bool) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		c.problem(key, err)
		return nil
	}
	if secret {
		c.warnPermissions(key, path)
	}
	return data
}

// warnPermissions flags a secret file readable by group or others: not an
// error (a container may mount it so on purpose) but worth a line at start.
// Every secret file read is listed in SecretFiles, for symbridge check.
func (c *Config) warnPermissions(key, path string) {
	fi, err := os.Stat(path)
	if err != nil || runtime.GOOS == "windows" {
		return
	}
	f := SecretFile{Key: cmp.Or(c.source[key], key), Path: path, Mode: fi.Mode().Perm()}
	if f.Mode&0o077 != 0 {
		f.Warning = fmt.Sprintf("%s: %s is readable by group or others (mode %#o); restrict it with chmod 600", f.Key, path, f.Mode)
		c.Warnings = append(c.Warnings, f.Warning)
	}
	c.SecretFiles = append(c.SecretFiles, f)
}

package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/dedupe"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// keyCase sets one key three ways (file, environment, override) and checks
// the effect. yaml is the value as written in the file, env as written in the
// environment and in a flag override.
type keyCase struct {
	key  string
	yaml string
	env  string
	base map[string]string // other keys the case needs, always from the file
	want any
	get  func(*config.Config) any
}

func keyCases(t *testing.T) []keyCase {
	f := getFixtures(t)
	keyPath := writeFile(t, "k.pem", f.pkcs1PEM, 0o600)
	certPath := writeFile(t, "c.p12", f.certP12, 0o600)
	trustPath := writeFile(t, "t.pem", f.caPEM, 0o644)
	leafCN := func(c *config.Config) any {
		if c.Certificate == nil || c.Certificate.Leaf == nil {
			return ""
		}
		return c.Certificate.Leaf.Subject.CommonName
	}
	trusts := func(c *config.Config) any {
		if c.TrustStore == nil {
			return false
		}
		_, err := f.leaf.Verify(x509VerifyOptions(c))
		return err == nil
	}
	pw := map[string]string{"bot.certificate.path": certPath}
	cases := []keyCase{
		{key: "scheme", yaml: "http", env: "http", base: map[string]string{"host": "h"}, want: "http://h:443", get: func(c *config.Config) any { return c.PodURL }},
		{key: "host", yaml: "h.example", env: "h.example", want: "https://h.example:443", get: func(c *config.Config) any { return c.AgentURL }},
		{key: "port", yaml: "8443", env: "8443", base: map[string]string{"host": "h"}, want: "https://h:8443", get: func(c *config.Config) any { return c.KeyManagerURL }},
		{key: "context", yaml: "ctx/", env: "/ctx/", base: map[string]string{"host": "h"}, want: "https://h:443/ctx", get: func(c *config.Config) any { return c.SessionAuthURL }},
		{key: "proxy.host", yaml: "px", env: "px", base: map[string]string{"proxy.port": "3128"}, want: "http://px:3128", get: func(c *config.Config) any { return c.ProxyURL }},
		{key: "proxy.port", yaml: "3129", env: "3129", base: map[string]string{"proxy.host": "px"}, want: "http://px:3129", get: func(c *config.Config) any { return c.AgentProxyURL }},
		{key: "proxy.username", yaml: "u", env: "u", base: map[string]string{"proxy.host": "px", "proxy.port": "1"}, want: "http://u@px:1", get: func(c *config.Config) any { return c.ProxyURL }},
		{key: "proxy.password", yaml: "p", env: "p", base: map[string]string{"proxy.host": "px", "proxy.port": "1", "proxy.username": "u"}, want: "http://u:p@px:1", get: func(c *config.Config) any { return c.ProxyURL }},
		{key: "connectionTimeout", yaml: "2500", env: "2500", want: 2500 * time.Millisecond, get: func(c *config.Config) any { return c.ConnectTimeout }},
		{key: "readTimeout", yaml: "45000", env: "45000", want: 45 * time.Second, get: func(c *config.Config) any { return c.ReadTimeout }},
		{key: "agent.connectionTimeout", yaml: "3000", env: "3000", base: map[string]string{"connectionTimeout": "1000"}, want: 3 * time.Second, get: func(c *config.Config) any { return c.ConnectTimeout }},
		{key: "agent.readTimeout", yaml: "90000", env: "90000", base: map[string]string{"readTimeout": "40000"}, want: 90 * time.Second, get: func(c *config.Config) any { return c.ReadTimeout }},

		{key: "bot.username", yaml: "tibot", env: "tibot", want: "tibot", get: func(c *config.Config) any { return c.Username }},
		{key: "bot.privateKey.path", yaml: strconv.Quote(keyPath), env: keyPath, want: true, get: func(c *config.Config) any {
			return c.PrivateKeyPath == keyPath && bytes.Equal(c.PrivateKeyPEM, f.pkcs1PEM)
		}},
		{key: "bot.privateKeyPath", yaml: strconv.Quote(keyPath), env: keyPath, want: true, get: func(c *config.Config) any {
			return c.PrivateKeyPath == keyPath && bytes.Equal(c.PrivateKeyPEM, f.pkcs1PEM)
		}},
		{key: "bot.privateKey.content", yaml: strconv.Quote(string(f.pkcs8PEM)), env: string(f.pkcs8PEM), want: true, get: func(c *config.Config) any { return bytes.Equal(c.PrivateKeyPEM, f.pkcs8PEM) && c.PrivateKeyPath == "" }},
		{key: "bot.privateKeyContent", yaml: strconv.Quote(string(f.pkcs1PEM)), env: string(f.pkcs1PEM), want: true, get: func(c *config.Config) any { return bytes.Equal(c.PrivateKeyPEM, f.pkcs1PEM) }},
		{key: "bot.certificate.path", yaml: strconv.Quote(certPath), env: certPath, base: map[string]string{"bot.certificate.password": certPassword}, want: "tibot", get: leafCN},
		{key: "bot.certificatePath", yaml: strconv.Quote(certPath), env: certPath, base: map[string]string{"bot.certificatePassword": certPassword}, want: "tibot", get: leafCN},
		{key: "bot.certificate.content", yaml: strconv.Quote(b64(f.certP12)), env: b64(f.certP12), base: map[string]string{"bot.certificate.password": certPassword}, want: "tibot", get: leafCN},
		{key: "bot.certificateContent", yaml: strconv.Quote(string(f.certPEM)), env: string(f.certPEM), want: "tibot", get: leafCN},
		{key: "bot.certificate.password", yaml: certPassword, env: certPassword, base: pw, want: "tibot", get: leafCN},
		{key: "bot.certificatePassword", yaml: certPassword, env: certPassword, base: pw, want: "tibot", get: leafCN},

		{key: "ssl.trustStore.path", yaml: strconv.Quote(trustPath), env: trustPath, want: true, get: trusts},
		{key: "ssl.trustStorePath", yaml: strconv.Quote(trustPath), env: trustPath, want: true, get: trusts},
		{key: "ssl.trustStore.content", yaml: strconv.Quote(string(f.caPEM)), env: string(f.caPEM), want: true, get: trusts},
		{key: "ssl.trustStore.password", yaml: storePassword, env: storePassword, base: map[string]string{"ssl.trustStore.content": strconv.Quote(b64(f.trustP12))}, want: true, get: trusts},
		{key: "ssl.trustStorePassword", yaml: storePassword, env: storePassword, base: map[string]string{"ssl.trustStorePath": strconv.Quote(writeFile(t, "t.jks", f.trustJKS, 0o644))}, want: true, get: trusts},
		{key: "ssl.insecureSkipVerify", yaml: "true", env: "true", want: true, get: func(c *config.Config) any { return c.InsecureSkipVerify }},

		{key: "datafeed.version", yaml: "V1", env: "v1", want: "v1", get: func(c *config.Config) any { return c.Datafeed.Version }},
		{key: "datafeed.tag", yaml: "mine", env: "mine", want: "mine", get: func(c *config.Config) any { return c.Datafeed.Tag }},
		{key: "datafeed.includeInvisible", yaml: "true", env: "TRUE", want: true, get: func(c *config.Config) any { return c.Datafeed.IncludeInvisible }},
		{key: "datafeed.idFilePath", yaml: "/var/lib/sb/", env: "/var/lib/sb/", want: "/var/lib/sb/", get: func(c *config.Config) any { return c.Datafeed.IDFilePath }},
		{key: "datafeed.coordination.enabled", yaml: "false", env: "false", want: false, get: func(c *config.Config) any { return c.Datafeed.Coordination.Enabled }},
		{key: "datafeed.coordination.bucket", yaml: "team-a_feeds", env: "team-a_feeds", want: "team-a_feeds", get: func(c *config.Config) any { return c.Datafeed.Coordination.Bucket }},
		{key: "datahose.tag", yaml: "fancyTag", env: "fancyTag", want: "fancyTag", get: func(c *config.Config) any { return c.Datahose.Tag }},
		{key: "datahose.eventTypes", yaml: "[MESSAGESENT, roomcreated]", env: "MESSAGESENT, roomcreated", want: []string{"MESSAGESENT", "ROOMCREATED"}, get: func(c *config.Config) any { return c.Datahose.EventTypes }},
		{key: "datahose.scopes", yaml: "[internal, EXTERNAL]", env: "internal,EXTERNAL", want: []string{"INTERNAL", "EXTERNAL"}, get: func(c *config.Config) any { return c.Datahose.Scopes }},

		{key: "bridge.source", yaml: "datahose", env: "Datahose", want: "datahose", get: func(c *config.Config) any { return c.Bridge.Source }},
		{key: "bridge.pod", yaml: "acme", env: "acme", want: "acme", get: func(c *config.Config) any { return c.Bridge.Pod }},
		{key: "bridge.subject", yaml: `"x.{pod}.{eventType}"`, env: "x.{pod}.{eventType}", want: "x.{pod}.{eventType}", get: func(c *config.Config) any { return c.Bridge.Subject }},
		{key: "bridge.deadLetter", yaml: `"dl.{pod}"`, env: "dl.{pod}", want: "dl.{pod}", get: func(c *config.Config) any { return c.Bridge.DeadLetter }},
		{key: "bridge.publishTimeout", yaml: "7s", env: "7s", want: 7 * time.Second, get: func(c *config.Config) any { return c.Bridge.PublishTimeout }},
		{key: "bridge.slowRetry", yaml: "25s", env: "25s", want: 25 * time.Second, get: func(c *config.Config) any { return c.Bridge.SlowRetry }},
		{key: "bridge.maxPending", yaml: "100", env: "100", want: 100, get: func(c *config.Config) any { return c.Bridge.MaxPending }},
		{key: "bridge.readers", yaml: "2", env: "2", want: 2, get: func(c *config.Config) any { return c.Bridge.Readers }},
		{key: "bridge.dedupeEntries", yaml: "0", env: "0", want: 0, get: func(c *config.Config) any { return c.Bridge.DedupeEntries }},
		{key: "bridge.maxBodyBytes", yaml: "134217728", env: "134217728", want: int64(128 << 20), get: func(c *config.Config) any { return c.Bridge.MaxBodyBytes }},

		{key: "nats.url", yaml: `"nats://a:4222,nats://b:4222"`, env: "nats://a:4222,nats://b:4222", want: "nats://a:4222,nats://b:4222", get: func(c *config.Config) any { return c.NATS.URL }},
		{key: "nats.credsFile", yaml: "/c.creds", env: "/c.creds", want: "/c.creds", get: func(c *config.Config) any { return c.NATS.CredsFile }},
		{key: "nats.nkeyFile", yaml: "/n.nk", env: "/n.nk", want: "/n.nk", get: func(c *config.Config) any { return c.NATS.NKeyFile }},
		{key: "nats.token", yaml: natsToken, env: natsToken, want: natsToken, get: func(c *config.Config) any { return c.NATS.Token.Reveal() }},
		{key: "nats.user", yaml: "nu", env: "nu", want: "nu", get: func(c *config.Config) any { return c.NATS.User }},
		{key: "nats.password", yaml: natsPassword, env: natsPassword, want: natsPassword, get: func(c *config.Config) any { return c.NATS.Password.Reveal() }},
		{key: "nats.tls.caFile", yaml: "/ca.pem", env: "/ca.pem", want: "/ca.pem", get: func(c *config.Config) any { return c.NATS.TLS.CAFile }},
		{key: "nats.tls.certFile", yaml: "/c.pem", env: "/c.pem", want: "/c.pem", get: func(c *config.Config) any { return c.NATS.TLS.CertFile }},
		{key: "nats.tls.keyFile", yaml: "/k.pem", env: "/k.pem", want: "/k.pem", get: func(c *config.Config) any { return c.NATS.TLS.KeyFile }},
		{key: "nats.tls.insecureSkipVerify", yaml: "true", env: "1", want: true, get: func(c *config.Config) any { return c.NATS.TLS.InsecureSkipVerify }},
		{key: "nats.stream.name", yaml: "EVENTS", env: "EVENTS", want: "EVENTS", get: func(c *config.Config) any { return c.NATS.Stream.Name }},
		{key: "nats.stream.subjects", yaml: `["a.>", "b.>"]`, env: "a.>,b.>", want: []string{"a.>", "b.>"}, get: func(c *config.Config) any { return c.NATS.Stream.Subjects }},
		{key: "nats.pingInterval", yaml: "2s", env: "2s", want: 2 * time.Second, get: func(c *config.Config) any { return c.NATS.PingInterval }},
		{key: "nats.stream.duplicates", yaml: "40m", env: "40m", want: 40 * time.Minute, get: func(c *config.Config) any { return c.NATS.Stream.Duplicates }},
		{key: "nats.stream.maxAge", yaml: "720h", env: "720h", want: 720 * time.Hour, get: func(c *config.Config) any { return c.NATS.Stream.MaxAge }},
		{key: "nats.stream.replicas", yaml: "3", env: "3", want: 3, get: func(c *config.Config) any { return c.NATS.Stream.Replicas }},
		{key: "nats.stream.maxMsgSize", yaml: "8388608", env: "8388608", want: int32(8 << 20), get: func(c *config.Config) any { return c.NATS.Stream.MaxMsgSize }},
		{key: "nats.embedded.enabled", yaml: "true", env: "true", want: true, get: func(c *config.Config) any { return c.NATS.Embedded.Enabled }},
		{key: "nats.embedded.dir", yaml: "/data", env: "/data", want: "/data", get: func(c *config.Config) any { return c.NATS.Embedded.Dir }},
		{key: "nats.embedded.listen", yaml: `"127.0.0.1:4333"`, env: "127.0.0.1:4333", want: "127.0.0.1:4333", get: func(c *config.Config) any { return c.NATS.Embedded.Listen }},
		{key: "http.listen", yaml: `"127.0.0.1:9090"`, env: "127.0.0.1:9090", want: "127.0.0.1:9090", get: func(c *config.Config) any { return c.HTTP.Listen }},
		{key: "log.level", yaml: "DEBUG", env: "debug", want: "debug", get: func(c *config.Config) any { return c.Log.Level }},
		{key: "log.format", yaml: "json", env: "json", want: "json", get: func(c *config.Config) any { return c.Log.Format }},
		{key: "runtime.maxProcs", yaml: "4", env: "4", want: 4, get: func(c *config.Config) any { return c.Runtime.MaxProcs }},
		{key: "runtime.gcPercent", yaml: "200", env: "200", want: 200, get: func(c *config.Config) any { return c.Runtime.GCPercent }},
		{key: "runtime.memoryLimit", yaml: "1073741824", env: "1073741824", want: int64(1 << 30), get: func(c *config.Config) any { return c.Runtime.MemoryLimit }},
	}
	for _, comp := range []struct {
		key string
		url func(*config.Config) string
		px  func(*config.Config) string
	}{
		{"pod", func(c *config.Config) string { return c.PodURL }, func(c *config.Config) string { return c.PodProxyURL }},
		{"agent", func(c *config.Config) string { return c.AgentURL }, func(c *config.Config) string { return c.AgentProxyURL }},
		{"keyManager", func(c *config.Config) string { return c.KeyManagerURL }, func(c *config.Config) string { return c.KeyManagerProxyURL }},
		{"sessionAuth", func(c *config.Config) string { return c.SessionAuthURL }, func(c *config.Config) string { return c.SessionAuthProxyURL }},
	} {
		u := func(c *config.Config) any { return comp.url(c) }
		px := func(c *config.Config) any { return comp.px(c) }
		g := map[string]string{"host": "g", "port": "1", "context": "gc", "proxy.host": "gp", "proxy.port": "9"}
		cases = append(cases,
			keyCase{key: comp.key + ".scheme", yaml: "http", env: "http", base: g, want: "http://g:1/gc", get: u},
			keyCase{key: comp.key + ".host", yaml: "own", env: "own", base: g, want: "https://own:1/gc", get: u},
			keyCase{key: comp.key + ".port", yaml: "8444", env: "8444", base: g, want: "https://g:8444/gc", get: u},
			keyCase{key: comp.key + ".context", yaml: "own/", env: "own", base: g, want: "https://g:1/own", get: u},
			keyCase{key: comp.key + ".proxy.host", yaml: "cp", env: "cp", base: with(g, comp.key+".proxy.port", "7"), want: "http://cp:7", get: px},
			keyCase{key: comp.key + ".proxy.port", yaml: "7", env: "7", base: with(g, comp.key+".proxy.host", "cp"), want: "http://cp:7", get: px},
			keyCase{key: comp.key + ".proxy.username", yaml: "cu", env: "cu", base: with(g, comp.key+".proxy.host", "cp", comp.key+".proxy.port", "7"), want: "http://cu@cp:7", get: px},
			keyCase{key: comp.key + ".proxy.password", yaml: "cw", env: "cw", base: with(g, comp.key+".proxy.host", "cp", comp.key+".proxy.port", "7", comp.key+".proxy.username", "cu"), want: "http://cu:cw@cp:7", get: px},
		)
	}
	for _, r := range []struct {
		prefix string
		get    func(*config.Config) symphony.RetryConfig
	}{
		{"datafeed.retry", func(c *config.Config) symphony.RetryConfig { return c.Datafeed.Retry }},
		{"datahose.retry", func(c *config.Config) symphony.RetryConfig { return c.Datahose.Retry }},
	} {
		cases = append(cases,
			keyCase{key: r.prefix + ".maxAttempts", yaml: "5", env: "5", want: 5, get: func(c *config.Config) any { return r.get(c).MaxAttempts }},
			keyCase{key: r.prefix + ".initialIntervalMillis", yaml: "1500", env: "1500", want: 1500 * time.Millisecond, get: func(c *config.Config) any { return r.get(c).Initial }},
			keyCase{key: r.prefix + ".multiplier", yaml: "1.5", env: "1.5", want: 1.5, get: func(c *config.Config) any { return r.get(c).Multiplier }},
			keyCase{key: r.prefix + ".maxIntervalMillis", yaml: "60000", env: "60000", want: time.Minute, get: func(c *config.Config) any { return r.get(c).Max }},
		)
	}
	return cases
}

func TestEveryKey(t *testing.T) {
	cases := keyCases(t)
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.key] = true
		check := func(t *testing.T, c *config.Config) {
			t.Helper()
			if diff := cmp.Diff(tc.want, tc.get(c)); diff != "" {
				t.Errorf("%s: (-want +got)\n%s", tc.key, diff)
			}
		}
		t.Run(tc.key+"/file", func(t *testing.T) {
			check(t, mustLoad(t, yamlDoc(with(tc.base, tc.key, tc.yaml)), nil, nil))
		})
		t.Run(tc.key+"/env", func(t *testing.T) {
			check(t, mustLoad(t, yamlDoc(tc.base), []string{config.EnvName(tc.key) + "=" + tc.env}, nil))
		})
		t.Run(tc.key+"/override", func(t *testing.T) {
			check(t, mustLoad(t, yamlDoc(tc.base), nil, map[string]any{tc.key: tc.env}))
		})
	}
	for _, k := range config.Keys() {
		if !covered[k.Key] {
			t.Errorf("key %s has no case in TestEveryKey", k.Key)
		}
	}
}

func TestKeysTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range config.Keys() {
		low := strings.ToLower(k.Key)
		if seen[low] {
			t.Errorf("%s: two keys differ only in case; the environment spelling would be ambiguous", k.Key)
		}
		seen[low] = true
		if k.Env != config.EnvName(k.Key) || !strings.HasPrefix(k.Env, config.EnvPrefix) {
			t.Errorf("%s: env %q", k.Key, k.Env)
		}
		if k.Description == "" || k.Type == "" {
			t.Errorf("%s: undocumented", k.Key)
		}
	}
	if got := config.EnvName("nats.stream.maxAge"); got != "SYMBRIDGE_NATS__STREAM__MAXAGE" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	c, err := config.Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"connect": c.ConnectTimeout, "read": c.ReadTimeout,
		"datafeed": c.Datafeed, "datahose.tag": c.Datahose.Tag, "datahose.retry": c.Datahose.Retry,
		"bridge": c.Bridge, "stream": c.NATS.Stream, "embedded": c.NATS.Embedded,
		"http": c.HTTP.Listen, "log": c.Log, "trust": c.TrustStore == nil,
	}
	want := map[string]any{
		"connect": 15 * time.Second, "read": 60 * time.Second,
		"datafeed": config.DatafeedConfig{Version: "v2", Tag: "symbridge", IDFilePath: "./", Retry: symphony.DefaultRetry,
			Coordination: config.CoordinationConfig{Enabled: true, Bucket: "symbridge-feeds"}},
		"datahose.tag": "datahose", "datahose.retry": symphony.DefaultRetry,
		"bridge": config.BridgeConfig{
			Source: "datafeed", Subject: "symphony.{pod}.{eventType}.{streamType}", DeadLetter: "symphony.{pod}._invalid",
			PublishTimeout: 5 * time.Second, SlowRetry: 30 * time.Second, MaxPending: 4096, Readers: 2, DedupeEntries: 262144, MaxBodyBytes: 64 << 20,
		},
		"stream":   config.StreamConfig{Name: "SYMPHONY", Subjects: []string{"symphony.>"}, Duplicates: 35 * time.Minute, MaxAge: 7 * 24 * time.Hour, Replicas: 1},
		"embedded": config.EmbeddedConfig{Dir: "./symbridge-data", Listen: "127.0.0.1:4222"},
		"http":     ":8080", "log": config.LogConfig{Level: "info", Format: "text"}, "trust": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got)\n%s", diff)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

func TestDerivedDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kv       map[string]string
		pod, tag string
	}{
		{"pod label", map[string]string{"host": "g.example.com", "pod.host": "acme-corp.symphony.com", "bot.username": "tibot"}, "acme-corp", "datahose-tibot"},
		{"ip host", map[string]string{"host": "10.0.0.7"}, "10-0-0-7", "datahose"},
		{"long username", map[string]string{"host": "h", "bot.username": strings.Repeat("u", 100)}, "h", ("datahose-" + strings.Repeat("u", 100))[:80]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.kv), nil, nil)
			if c.Bridge.Pod != tc.pod || c.Datahose.Tag != tc.tag {
				t.Errorf("pod %q tag %q, want %q %q", c.Bridge.Pod, c.Datahose.Tag, tc.pod, tc.tag)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	doc := yamlDoc(map[string]string{"nats.url": "nats://file:4222", "nats.stream.replicas": "3", "log.level": "warn"})
	env := []string{"SYMBRIDGE_NATS__URL=nats://env:4222", "SYMBRIDGE_NATS__STREAM__REPLICAS=", "symbridge_log__level=error", "OTHER=1"}
	over := map[string]any{"NATS.URL": "nats://flag:4222"}

	c := mustLoad(t, doc, nil, nil)
	if c.NATS.URL != "nats://file:4222" {
		t.Errorf("file: %q", c.NATS.URL)
	}
	c = mustLoad(t, doc, env, nil)
	if c.NATS.URL != "nats://env:4222" {
		t.Errorf("environment over file: %q", c.NATS.URL)
	}
	if c.NATS.Stream.Replicas != 3 {
		t.Errorf("an empty numeric variable must leave the file's value: %d", c.NATS.Stream.Replicas)
	}
	if c.Log.Level != "warn" {
		t.Errorf("a lower-case prefix is not ours: %q", c.Log.Level)
	}
	c = mustLoad(t, doc, env, over)
	if c.NATS.URL != "nats://flag:4222" {
		t.Errorf("override over environment: %q", c.NATS.URL)
	}
	// Typed override values, as a flag package would hand them.
	c = mustLoad(t, doc, env, map[string]any{"nats.stream.replicas": 5, "bridge.publishTimeout": 2 * time.Second, "datahose.eventTypes": []string{"ROOMCREATED"}})
	if c.NATS.Stream.Replicas != 5 || c.Bridge.PublishTimeout != 2*time.Second || !slices.Equal(c.Datahose.EventTypes, []string{"ROOMCREATED"}) {
		t.Errorf("typed overrides: %d %s %q", c.NATS.Stream.Replicas, c.Bridge.PublishTimeout, c.Datahose.EventTypes)
	}
	// An empty string variable is a value for string keys: it disables http.listen.
	c = mustLoad(t, doc, []string{"SYMBRIDGE_HTTP__LISTEN="}, nil)
	if c.HTTP.Listen != "" {
		t.Errorf("SYMBRIDGE_HTTP__LISTEN= : %q", c.HTTP.Listen)
	}
	// SYMBRIDGE_CONFIG is the command's, not a key.
	if _, err := loadYAML(t, doc, []string{config.ConfigFileEnv + "=/etc/x.yaml"}, nil); err != nil {
		t.Errorf("SYMBRIDGE_CONFIG: %v", err)
	}
}

func TestAlternativesAcrossLayers(t *testing.T) {
	f := getFixtures(t)
	base := validBase(t)
	// The environment's inline key replaces the file's path as a whole.
	c := mustLoad(t, yamlDoc(base), []string{"SYMBRIDGE_BOT__PRIVATEKEY__CONTENT=" + string(f.pkcs8PEM)}, nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.PrivateKeyPath != "" || !bytes.Equal(c.PrivateKeyPEM, f.pkcs8PEM) {
		t.Errorf("content from the environment should win: path %q", c.PrivateKeyPath)
	}
	// Two alternatives in one layer are refused, as by the BDK.
	c = mustLoad(t, yamlDoc(with(base, "bot.privateKeyPath", strconv.Quote(base["bot.privateKey.path"]))), nil, nil)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "bot.privateKey.path, bot.privateKeyPath: set only one of them") {
		t.Errorf("Validate = %v", err)
	}
}

func TestPlaceholders(t *testing.T) {
	environ := []string{"BOT_USER=fromenv", "HOME=/home/me", "EMPTY="}
	for _, tc := range []struct {
		in, want string
	}{
		{"${BOT_USER}", "fromenv"},
		{"${MISSING:-fallback}", "fallback"},
		{"${BOT_USER:-fallback}", "fromenv"},
		{"${EMPTY:-fallback}", ""},
		{"pre-${BOT_USER}-${BOT_USER}-post", "pre-fromenv-fromenv-post"},
		{"$${BOT_USER}", "${BOT_USER}"},
		{"${user.home}/x", "/home/me/x"},
		{"plain $BOT_USER", "plain $BOT_USER"},
		{"${unterminated", "${unterminated"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(map[string]string{"bot.username": strconv.Quote(tc.in)}), environ, nil)
			if c.Username != tc.want {
				t.Errorf("got %q, want %q", c.Username, tc.want)
			}
		})
	}
	t.Run("list items", func(t *testing.T) {
		c := mustLoad(t, yamlDoc(map[string]string{"datahose.eventTypes": `["${T1}", ROOMCREATED]`}), []string{"T1=MESSAGESENT"}, nil)
		if !slices.Equal(c.Datahose.EventTypes, []string{"MESSAGESENT", "ROOMCREATED"}) {
			t.Errorf("got %q", c.Datahose.EventTypes)
		}
	})
	t.Run("unresolved in a used key", func(t *testing.T) {
		_, err := loadYAML(t, yamlDoc(map[string]string{"bot.username": "${NOPE}"}), environ, nil)
		if err == nil || !strings.Contains(err.Error(), "bot.username: placeholder ${NOPE}: variable NOPE is not set") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unresolved in an unused key", func(t *testing.T) {
		if _, err := loadYAML(t, yamlDoc(map[string]string{"app.appId": "${NOPE}"}), environ, nil); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not applied to the environment layer", func(t *testing.T) {
		c := mustLoad(t, "", append(environ, "SYMBRIDGE_BOT__USERNAME=${BOT_USER}"), nil)
		if c.Username != "${BOT_USER}" {
			t.Errorf("got %q", c.Username)
		}
	})
}

func TestMillisecondKeys(t *testing.T) {
	for _, tc := range []struct {
		key, val string
		want     time.Duration
		wantErr  string
	}{
		{key: "readTimeout", val: "45000", want: 45 * time.Second},
		{key: "datafeed.retry.initialIntervalMillis", val: "250", want: 250 * time.Millisecond},
		{key: "datafeed.retry.maxIntervalMillis", val: "2000.0", want: 2 * time.Second},
		{key: "datafeed.retry.initialIntervalMillis", val: `"1.5s"`, wantErr: `datafeed.retry.initialIntervalMillis: must be an integer, got "1.5s"`},
		{key: "readTimeout", val: "-1", wantErr: "readTimeout: must be a non-negative number of milliseconds"},
	} {
		t.Run(tc.key+"="+tc.val, func(t *testing.T) {
			c, err := loadYAML(t, yamlDoc(map[string]string{tc.key: tc.val}), nil, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]time.Duration{
				"readTimeout":                          c.ReadTimeout,
				"datafeed.retry.initialIntervalMillis": c.Datafeed.Retry.Initial,
				"datafeed.retry.maxIntervalMillis":     c.Datafeed.Retry.Max,
			}[tc.key]
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPartialRetryBlockFillsDefaults(t *testing.T) {
	c := mustLoad(t, "retry:\n  maxAttempts: 3\n  initialIntervalMillis: 10\ndatahose:\n  retry:\n    multiplier: 3\n", nil, nil)
	if c.Datafeed.Retry != symphony.DefaultRetry {
		t.Errorf("the global retry block must not apply to the datafeed: %+v", c.Datafeed.Retry)
	}
	want := symphony.DefaultRetry
	want.Multiplier = 3
	if c.Datahose.Retry != want {
		t.Errorf("datahose.retry = %+v, want %+v", c.Datahose.Retry, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		doc      string
		environ  []string
		override map[string]any
		want     []string
	}{
		{name: "unknown key in nats", doc: "nats:\n  urll: x\n", want: []string{"nats.urll: unknown key"}},
		{name: "wrong case in nats", doc: "nats:\n  URL: x\n", want: []string{"nats.URL: unknown key (did you mean nats.url?)"}},
		{name: "unknown in every own section", doc: "bridge:\n  foo: 1\nhttp:\n  port: 80\nlog:\n  lvl: x\n",
			want: []string{"bridge.foo: unknown key", "http.port: unknown key", "log.lvl: unknown key"}},
		{name: "wrong case in runtime", doc: "runtime:\n  MaxProcs: 2\n", want: []string{"runtime.MaxProcs: unknown key (did you mean runtime.maxProcs?)"}},
		{name: "scalar in place of a section", doc: "nats: nats://x\n", want: []string{"nats: unknown key"}},
		{name: "bad type", doc: "nats:\n  stream:\n    replicas: three\n", want: []string{`nats.stream.replicas: must be an integer, got "three"`}},
		{name: "duration without unit", doc: "bridge:\n  publishTimeout: 5\n", want: []string{"bridge.publishTimeout: must be a duration with a unit"}},
		{name: "bad bool", doc: "datafeed:\n  includeInvisible: maybe\n", want: []string{"datafeed.includeInvisible: must be true or false"}},
		{name: "yaml syntax", doc: "nats: [\n", want: []string{"config file"}},
		{name: "unknown env", environ: []string{"SYMBRIDGE_NATS__URLL=x"}, want: []string{`environment SYMBRIDGE_NATS__URLL: unknown key "nats.urll"`}},
		{name: "env with single underscores", environ: []string{"SYMBRIDGE_NATS_STREAM_MAXAGE=1h"}, want: []string{"did you mean SYMBRIDGE_NATS__STREAM__MAXAGE?"}},
		{name: "env set twice", environ: []string{"SYMBRIDGE_NATS__URL=a", "SYMBRIDGE_NATS__Url=b"}, want: []string{"both set nats.url"}},
		{name: "unknown override", override: map[string]any{"nats.nope": 1}, want: []string{"override nats.nope: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.doc, tc.environ, tc.override)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
	if _, err := config.Load("/nonexistent/symbridge.yaml", nil, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestUnusedBDKKeysWarning(t *testing.T) {
	doc := `_version: '2.0'
host: acme.symphony.com
connectionPoolMax: 20
app:
  appId: tibapp
  privateKey:
    path: /x
commonJwt:
  enabled: false
retry:
  maxAttempts: 2
agent:
  host: agent.acme.com
  loadBalancing:
    mode: roundRobin
    nodes:
      - host: a1
pod:
datahose:
  filters: [MESSAGESENT]
`
	c := mustLoad(t, doc, nil, nil)
	var found []string
	for _, w := range c.Warnings {
		if strings.Contains(w, "BDK keys") {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one warning listing the unused BDK keys, got %q", c.Warnings)
	}
	want := "ignoring BDK keys that do not concern symbridge: _version, agent.loadBalancing.mode, agent.loadBalancing.nodes, app.appId, app.privateKey.path, commonJwt.enabled, connectionPoolMax, datahose.filters, retry.maxAttempts"
	if found[0] != want {
		t.Errorf("warning\n got %q\nwant %q", found[0], want)
	}
}

// TestCaseSensitiveKeys: mapstructure matches field names in any case;
// symbridge does not: a BDK key in the wrong case is an unused BDK key.
func TestCaseSensitiveKeys(t *testing.T) {
	c := mustLoad(t, "bot:\n  Username: tibot\n", nil, nil)
	if c.Username != "" || len(c.Warnings) != 1 || !strings.HasSuffix(c.Warnings[0], ": bot.Username") {
		t.Errorf("username %q, warnings %q", c.Username, c.Warnings)
	}
}

func TestURLComposition(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]string
		want [4]string // pod, agent, keyManager, sessionAuth
	}{
		{"global only", map[string]string{"host": "acme.symphony.com"},
			[4]string{"https://acme.symphony.com:443", "https://acme.symphony.com:443", "https://acme.symphony.com:443", "https://acme.symphony.com:443"}},
		{"components inherit what they do not set", map[string]string{
			"scheme": "http", "host": "g", "port": "8080", "context": "/base/",
			"agent.host": "agent", "keyManager.port": "9443", "keyManager.scheme": "https",
			"sessionAuth.port": "8444", "sessionAuth.context": `""`, "pod.context": "/pod-ctx",
		}, [4]string{"http://g:8080/pod-ctx", "http://agent:8080/base", "https://g:9443/base", "http://g:8444"}},
		{"no global host", map[string]string{"pod.host": "p", "agent.host": "a"},
			[4]string{"https://p:443", "https://a:443", "", ""}},
		{"root context", map[string]string{"host": "h", "context": "/"},
			[4]string{"https://h:443", "https://h:443", "https://h:443", "https://h:443"}},
		{"ipv6", map[string]string{"host": `"::1"`, "port": "7443"},
			[4]string{"https://[::1]:7443", "https://[::1]:7443", "https://[::1]:7443", "https://[::1]:7443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.kv), nil, nil)
			got := [4]string{c.PodURL, c.AgentURL, c.KeyManagerURL, c.SessionAuthURL}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := validBase(t)
	c := mustLoad(t, yamlDoc(base), nil, nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("the base configuration must be valid: %v", err)
	}
	f := getFixtures(t)
	certPath := writeFile(t, "c.p12", f.certP12, 0o600)
	for _, tc := range []struct {
		name string
		kv   []string // key, yaml value ("<delete>" removes)
		want string   // "" = valid
	}{
		{"datafeed v1", []string{"datafeed.version", "v1"}, ""},
		{"datafeed version", []string{"datafeed.version", "v3"}, `datafeed.version: must be v2 or v1, got "v3"`},
		{"source", []string{"bridge.source", "kafka"}, `bridge.source: must be datafeed or datahose, got "kafka"`},
		{"datahose needs event types", []string{"bridge.source", "datahose"}, "datahose.eventTypes: required when bridge.source is datahose"},
		{"datahose known types", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT, MESSAGE_SENT]"}, "datahose.eventTypes: unknown event types MESSAGE_SENT"},
		{"datahose valid", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT, ROOMCREATED]", "datahose.scopes", "[INTERNAL]"}, ""},
		{"datahose tag length", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT]", "datahose.tag", strings.Repeat("t", 81)}, "datahose.tag: must be 1 to 80 characters, got 81"},
		{"datahose scope", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT]", "datahose.scopes", "[GLOBAL]"}, `datahose.scopes: must be INTERNAL, EXTERNAL or FEDERATED, got "GLOBAL"`},
		{"datahose retry", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT]", "datahose.retry.multiplier", "0.5"}, "datahose.retry.multiplier: must be at least 1"},
		{"datafeed tag empty", []string{"datafeed.tag", `""`}, "datafeed.tag: must be 1 to 100 characters"},
		{"datafeed tag counts characters", []string{"datafeed.tag", strings.Repeat("é", 100)}, ""},
		{"datafeed tag too long", []string{"datafeed.tag", strings.Repeat("é", 101)}, "datafeed.tag: must be 1 to 100 characters (symbridge reads a feed of its own), got 101"},
		{"datahose tag counts characters", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT]", "datahose.tag", strings.Repeat("é", 80)}, ""},
		{"coordination bucket", []string{"datafeed.coordination.bucket", "team-a_feeds"}, ""},
		{"coordination bucket dot", []string{"datafeed.coordination.bucket", "a.b"}, `datafeed.coordination.bucket: only letters, digits, _ and - are allowed in a key-value bucket name, got "a.b"`},
		{"coordination bucket empty", []string{"datafeed.coordination.bucket", `""`}, "datafeed.coordination.bucket: required when datafeed.coordination.enabled is true"},
		{"coordination bucket longest", []string{"datafeed.coordination.bucket", strings.Repeat("b", 245)}, ""},
		{"coordination bucket too long", []string{"datafeed.coordination.bucket", strings.Repeat("b", 246)}, `datafeed.coordination.bucket: at most 245 characters (the claims bucket is "<bucket>-claims"), got 246`},
		{"coordination disabled ignores the bucket", []string{"datafeed.coordination.enabled", "false", "datafeed.coordination.bucket", "a.b"}, ""},
		{"coordination ignored by datafeed v1", []string{"datafeed.version", "v1", "datafeed.coordination.bucket", "a.b"}, ""},
		{"coordination ignored by datahose", []string{"bridge.source", "datahose", "datahose.eventTypes", "[MESSAGESENT]", "datafeed.coordination.bucket", "a b"}, ""},
		{"datafeed retry", []string{"datafeed.retry.maxAttempts", "0"}, "datafeed.retry.maxAttempts: must be -1 (forever) or at least 1, got 0"},
		{"retry max below initial", []string{"datafeed.retry.initialIntervalMillis", "2000", "datafeed.retry.maxIntervalMillis", "1000"}, "datafeed.retry.maxIntervalMillis: must be at least the initial interval (2s), got 1s"},
		{"stream replicas", []string{"nats.stream.replicas", "7"}, "nats.stream.replicas: must be between 1 and 5, got 7"},
		{"publish timeout", []string{"bridge.publishTimeout", "0s"}, "bridge.publishTimeout: must be positive, got 0s"},
		{"slow retry", []string{"bridge.slowRetry", "-1s"}, "bridge.slowRetry: must be positive"},
		{"max pending", []string{"bridge.maxPending", "0"}, "bridge.maxPending: must be at least 1, got 0"},
		{"readers", []string{"bridge.readers", "0"}, "bridge.readers: must be at least 1, got 0"},
		{"max body", []string{"bridge.maxBodyBytes", "1000"}, "bridge.maxBodyBytes: must be at least 1048576"},
		{"subject whitespace", []string{"bridge.subject", `"a b"`}, `bridge.subject: invalid subject template "a b": token 1 "a b": whitespace or control character`},
		{"dead letter empty token", []string{"bridge.deadLetter", `"a..b"`}, `bridge.deadLetter: invalid subject template "a..b": token 2 is empty`},
		{"subject placeholder", []string{"bridge.subject", `"x.{nope}"`}, `bridge.subject: invalid subject template "x.{nope}"`},
		{"stream subject", []string{"nats.stream.subjects", `["a..b"]`}, `nats.stream.subjects: invalid subject "a..b": has an empty token`},
		{"connect timeout", []string{"connectionTimeout", "0"}, "connectionTimeout: must be positive"},
		{"duplicates over max age", []string{"nats.stream.duplicates", "2h", "nats.stream.maxAge", "1h"}, "nats.stream.duplicates: 2h0m0s must not exceed the maximum age 1h0m0s"},
		{"unlimited max age", []string{"nats.stream.maxAge", "0s"}, ""},
		{"duplicates zero", []string{"nats.stream.duplicates", "0s"}, "nats.stream.duplicates: must be at least 100ms, got 0s"},
		{"duplicates below JetStream's minimum", []string{"nats.stream.duplicates", "50ms"}, "nats.stream.duplicates: must be at least 100ms, got 50ms"},
		{"replicas 0", []string{"nats.stream.replicas", "0"}, "nats.stream.replicas: must be between 1 and 5, got 0"},
		{"replicas 6", []string{"nats.stream.replicas", "6"}, "nats.stream.replicas: must be between 1 and 5, got 6"},
		{"stream name", []string{"nats.stream.name", "A.B"}, `nats.stream.name: must be non-empty`},
		{"max msg size", []string{"nats.stream.maxMsgSize", "-2"}, "nats.stream.maxMsgSize: must be -1"},
		{"unlimited max msg size", []string{"nats.stream.maxMsgSize", "-1"}, ""},
		{"max procs", []string{"runtime.maxProcs", "-1"}, "runtime.maxProcs: must be 0 (Go's default) or more, got -1"},
		{"gc off", []string{"runtime.gcPercent", "-1"}, ""},
		{"gc percent", []string{"runtime.gcPercent", "-2"}, "runtime.gcPercent: must be -1 (off) or more, got -2"},
		{"log level", []string{"log.level", "verbose"}, `log.level: must be debug, info, warn or error, got "verbose"`},
		{"log format", []string{"log.format", "xml"}, `log.format: must be text or json, got "xml"`},
		{"nats url required", []string{"nats.url", "<delete>"}, "nats.url: required unless nats.embedded.enabled is true"},
		{"embedded instead of url", []string{"nats.url", "<delete>", "nats.embedded.enabled", "true"}, ""},
		{"embedded listen", []string{"nats.embedded.enabled", "true", "nats.embedded.listen", "nowhere"}, `nats.embedded.listen: must be host:port`},
		{"nats url scheme", []string{"nats.url", "http://x:4222"}, `nats.url: scheme must be nats, tls, ws or wss, got "http"`},
		{"nats url list", []string{"nats.url", `"nats://a:4222, b:4222"`}, ""},
		{"nats tls pair", []string{"nats.tls.certFile", "/c.pem"}, "nats.tls.certFile, nats.tls.keyFile: set both or neither"},
		{"http listen", []string{"http.listen", "nope"}, `http.listen: must be host:port or :port, got "nope"`},
		{"http disabled", []string{"http.listen", `""`}, ""},
		{"no username", []string{"bot.username", "<delete>"}, "bot.username: required"},
		{"no auth", []string{"bot.privateKey.path", "<delete>"}, "bot.privateKey.path: required: configure bot.privateKey (RSA) or bot.certificate"},
		{"both auths", []string{"bot.certificate.path", strconv.Quote(certPath), "bot.certificate.password", certPassword}, "bot.certificate: configure either bot.privateKey or bot.certificate, not both"},
		{"certificate auth", []string{"bot.privateKey.path", "<delete>", "bot.certificate.path", strconv.Quote(certPath), "bot.certificate.password", certPassword}, ""},
		{"no host", []string{"host", "<delete>"}, "pod.host: required (set pod.host or the global host)"},
		{"global scheme", []string{"scheme", "ftp"}, `scheme: must be https or http, got "ftp"`},
		{"component scheme", []string{"agent.scheme", "ftp"}, `agent.scheme: must be https or http, got "ftp"`},
		{"http scheme", []string{"scheme", "http"}, ""},
		{"component port", []string{"pod.port", "70000"}, `pod.port: must be between 1 and 65535, got "70000"`},
		{"global port", []string{"port", "0"}, `port: must be between 1 and 65535, got "0"`},
		{"host with scheme", []string{"host", "https://acme.symphony.com"}, "host: must be a host name, without scheme or path"},
		{"proxy port", []string{"proxy.host", "px"}, "proxy.port: required when proxy.host is set"},
		{"bridge pod whitespace", []string{"bridge.pod", `"a b"`}, "bridge.pod: must not contain whitespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(with(base, tc.kv...)), nil, nil)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMissingKeyFile(t *testing.T) {
	base := validBase(t)
	c := mustLoad(t, yamlDoc(with(base, "bot.privateKey.path", "/nonexistent/key.pem")), nil, nil)
	err := c.Validate()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "bot.privateKey.path: open /nonexistent/key.pem") {
		t.Errorf("Validate = %v", err)
	}
	if strings.Contains(err.Error(), "required") {
		t.Errorf("a configured but missing key is not a missing key: %v", err)
	}
}

func TestBadKeyContent(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not a key", "hello", "bot.privateKey.content: no RSA private key found"},
		{"encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted private keys are not supported"},
		{"garbage PEM", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "cannot parse the PKCS#1 RSA private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(with(validBase(t), "bot.privateKey.path", "<delete>", "bot.privateKey.content", strconv.Quote(tc.content))), nil, nil)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("base64 DER", func(t *testing.T) {
		f := getFixtures(t)
		der := derOf(t, f.pkcs8PEM)
		c := mustLoad(t, yamlDoc(with(validBase(t), "bot.privateKey.path", "<delete>", "bot.privateKey.content", b64(der))), nil, nil)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if derOf(t, c.PrivateKeyPEM) == nil || !bytes.Equal(derOf(t, c.PrivateKeyPEM), der) {
			t.Errorf("PrivateKeyPEM does not hold the key")
		}
	})
}

func TestPermissionWarning(t *testing.T) {
	f := getFixtures(t)
	open := writeFile(t, "open.pem", f.pkcs1PEM, 0o644)
	closed := writeFile(t, "closed.pem", f.pkcs1PEM, 0o600)
	c := mustLoad(t, yamlDoc(map[string]string{"bot.privateKey.path": open}), nil, nil)
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "bot.privateKey.path: "+open+" is readable by group or others (mode 0644)") {
		t.Fatalf("warnings %q", c.Warnings)
	}
	if want := (config.SecretFile{Key: "bot.privateKey.path", Path: open, Mode: 0o644, Warning: c.Warnings[0]}); !slices.Contains(c.SecretFiles, want) {
		t.Errorf("SecretFiles %+v lacks %+v", c.SecretFiles, want)
	}
	c = mustLoad(t, yamlDoc(map[string]string{"bot.privateKey.path": closed}), nil, nil)
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
	if want := (config.SecretFile{Key: "bot.privateKey.path", Path: closed, Mode: 0o600}); !slices.Contains(c.SecretFiles, want) {
		t.Errorf("SecretFiles %+v lacks %+v", c.SecretFiles, want)
	}
}

func TestSecretFilePermissionWarnings(t *testing.T) {
	for _, key := range []string{"nats.credsFile", "nats.nkeyFile", "nats.tls.keyFile"} {
		t.Run(key, func(t *testing.T) {
			open := writeFile(t, "secret", []byte("x"), 0o640)
			c := mustLoad(t, yamlDoc(map[string]string{key: open}), nil, nil)
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], key+": "+open+" is readable by group or others (mode 0640)") {
				t.Errorf("warnings %q", c.Warnings)
			}
			if c = mustLoad(t, yamlDoc(map[string]string{key: writeFile(t, "secret", []byte("x"), 0o600)}), nil, nil); len(c.Warnings) != 0 {
				t.Errorf("warnings %q", c.Warnings)
			}
		})
	}
	t.Run("config file", func(t *testing.T) {
		path := writeFile(t, "config.yaml", []byte("nats:\n  token: "+natsToken+"\n"), 0o644)
		c, err := config.Load(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "config file: "+path+" is readable by group or others (mode 0644)") {
			t.Errorf("warnings %q", c.Warnings)
		}
		// Without a secret in it, a readable file is no concern.
		path = writeFile(t, "config.yaml", []byte("nats:\n  url: nats://x:4222\n"), 0o644)
		if c, err = config.Load(path, nil, nil); err != nil || len(c.Warnings) != 0 {
			t.Errorf("warnings %q, err %v", c.Warnings, err)
		}
	})
}

func TestMemoryLimit(t *testing.T) {
	base := validBase(t)
	c := mustLoad(t, yamlDoc(base), nil, nil)
	// 32 MiB + two reads of 64 MiB + 256 Ki dedupe entries (16 MiB).
	want := int64(32<<20) + 2*(64<<20) + dedupe.FullBytes(262144)
	if c.Runtime.MemoryLimit != want || c.MinMemoryLimit() != want || want <= 64<<20 {
		t.Errorf("default memory limit %d (floor %d), want %d", c.Runtime.MemoryLimit, c.MinMemoryLimit(), want)
	}
	if c.Runtime.MaxProcs != 1 || c.Runtime.GCPercent != 400 {
		t.Errorf("runtime defaults %+v", c.Runtime)
	}
	c = mustLoad(t, yamlDoc(with(base, "bridge.readers", "4", "bridge.maxBodyBytes", "2097152", "bridge.dedupeEntries", "0")), nil, nil)
	if want := int64(32<<20 + 4*2<<20); c.Runtime.MemoryLimit != want {
		t.Errorf("memory limit %d, want %d", c.Runtime.MemoryLimit, want)
	}
	c = mustLoad(t, yamlDoc(with(base, "nats.embedded.enabled", "true")), nil, nil)
	if c.Runtime.MemoryLimit != 0 || c.Runtime.MaxProcs != 0 {
		t.Errorf("embedded nats-server: %+v, want no memory limit and Go's GOMAXPROCS", c.Runtime)
	}
	c = mustLoad(t, yamlDoc(with(base, "runtime.memoryLimit", "1073741824")), nil, nil)
	if err := c.Validate(); err != nil || c.Runtime.MemoryLimit != 1<<30 {
		t.Errorf("1 GiB: %d, %v", c.Runtime.MemoryLimit, err)
	}
	c = mustLoad(t, yamlDoc(with(base, "runtime.memoryLimit", "50331648")), nil, nil)
	wantErr := fmt.Sprintf("runtime.memoryLimit: must be at least %d (32 MiB + bridge.maxBodyBytes × bridge.readers + the dedupe set of bridge.dedupeEntries), got 50331648", want)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("Validate = %v\nwant %q", err, wantErr)
	}
}

func TestShortReadTimeoutWarning(t *testing.T) {
	c := mustLoad(t, "readTimeout: 20000\n", nil, nil)
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "readTimeout: 20s is not longer than the Agent's 30s long poll") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	f := getFixtures(t)
	kv := map[string]string{
		"host":                     "acme.symphony.com",
		"bot.username":             "tibot",
		"bot.privateKey.content":   strconv.Quote(string(f.pkcs1PEM)),
		"bot.certificate.content":  strconv.Quote(b64(f.certP12)),
		"bot.certificate.password": certPassword,
		"ssl.trustStore.content":   strconv.Quote(b64(f.trustP12)),
		"ssl.trustStore.password":  storePassword,
		"proxy.host":               "px", "proxy.port": "3128", "proxy.username": "pu", "proxy.password": proxyPassword,
		"nats.url":      "nats://nu:" + natsPassword + "@n:4222",
		"nats.token":    natsToken,
		"nats.password": natsPassword,
		"log.level":     "loud", // so that Validate has something to say
	}
	c := mustLoad(t, yamlDoc(kv), nil, nil)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	outputs := map[string]string{
		"String":    c.String(),
		"%v ptr":    fmt.Sprintf("%v", c),
		"%+v value": fmt.Sprintf("%+v", *c),
		"%#v":       fmt.Sprintf("%#v", c),
		"NATS %+v":  fmt.Sprintf("%+v", c.NATS),
		"NATS %#v":  fmt.Sprintf("%#v", c.NATS),
		"slog":      logged.String(),
		"Validate":  fmt.Sprint(c.Validate()),
	}
	if !strings.Contains(outputs["Validate"], "log.level") || !strings.Contains(outputs["String"], "proxy: http://pu:xxxxx@px:3128") {
		t.Fatalf("the outputs are not what this test thinks they are:\n%s\n%s", outputs["Validate"], outputs["String"])
	}
	for name, out := range outputs {
		for _, s := range []string{certPassword, storePassword, proxyPassword, natsToken, natsPassword, f.keyBody, "PRIVATE KEY"} {
			if strings.Contains(out, s) {
				t.Errorf("%s prints a secret (%.12s...):\n%s", name, s, out)
			}
		}
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	f := getFixtures(t)
	for _, tc := range []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"wrong certificate password", map[string]string{"bot.certificate.content": strconv.Quote(b64(f.certP12)), "bot.certificate.password": "wrong-" + certPassword},
			"bot.certificate.password: cannot decrypt the PKCS#12 certificate: wrong password"},
		{"wrong trust store password", map[string]string{"ssl.trustStore.content": strconv.Quote(b64(f.trustP12)), "ssl.trustStore.password": "wrong-" + storePassword},
			"ssl.trustStore.password: cannot open the trust store: wrong password"},
		{"wrong JKS password", map[string]string{"ssl.trustStore.content": strconv.Quote(b64(f.trustJKS)), "ssl.trustStorePassword": "wrong-" + storePassword},
			"ssl.trustStorePassword: cannot open the trust store: wrong password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.kv), nil, nil)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			for _, s := range []string{certPassword, storePassword} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a password: %v", err)
				}
			}
		})
	}
	t.Run("type error on a secret key", func(t *testing.T) {
		_, err := loadYAML(t, "nats:\n  token: [\""+natsToken+"\"]\n", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "nats.token: must be a string") || strings.Contains(err.Error(), natsToken) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestProblemsReportedOnce(t *testing.T) {
	c := mustLoad(t, yamlDoc(with(validBase(t), "proxy.host", "px")), nil, nil)
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a proxy without a port")
	}
	if n := strings.Count(err.Error(), "proxy.port: required"); n != 1 {
		t.Errorf("reported %d times:\n%v", n, err)
	}
	if err2 := c.Validate(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("Validate is not repeatable: %v", err2)
	}
}

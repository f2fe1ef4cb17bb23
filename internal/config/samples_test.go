package config_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/testshared"

	"github.com/google/go-cmp/cmp"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// samplesDir finds ../shared/symphony-samples/bdk-java next to the
// repository (the samples are never copied into it).
func samplesDir(t *testing.T) string {
	t.Helper()
	return testshared.Path(t, "symphony-samples", "bdk-java")
}

func TestBDKSampleConfig(t *testing.T) {
	c, err := config.Load(filepath.Join(samplesDir(t), "config.yaml"), nil, nil)
	if err != nil {
		t.Fatalf("the BDK sample must load unchanged: %v", err)
	}
	got := map[string]any{
		"pod": c.PodURL, "agent": c.AgentURL, "keyManager": c.KeyManagerURL, "sessionAuth": c.SessionAuthURL,
		"username": c.Username, "keyPath": c.PrivateKeyPath, "includeInvisible": c.Datafeed.IncludeInvisible,
		"retry": c.Datafeed.Retry, "bridge.pod": c.Bridge.Pod, "warnings": c.Warnings,
	}
	retry := symphony.DefaultRetry
	retry.MaxAttempts = 2
	want := map[string]any{
		"pod": "https://devx1.symphony.com:443", "agent": "https://devx1.symphony.com:443", "keyManager": "https://devx1.symphony.com:443",
		"sessionAuth": "", // no global host: only certificate auth would need it
		"username":    "tibot", "keyPath": "/Users/local/conf/agent/privatekey.pem", "includeInvisible": true,
		"retry": retry, "bridge.pod": "devx1",
		"warnings": []string{"ignoring BDK keys that do not concern symbridge: _version, app.appId, app.privateKey.path"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	err = c.Validate()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "bot.privateKey.path: open /Users/local/conf/agent/privatekey.pem") {
		t.Errorf("Validate must name the missing key file: %v", err)
	}
	if !strings.Contains(err.Error(), "nats.url: required") {
		t.Errorf("a BDK file alone says nothing of NATS: %v", err)
	}
	// With the key and NATS supplied by the environment, the same file runs.
	key := writeFile(t, "k.pem", getFixtures(t).pkcs1PEM, 0o600)
	c, err = config.Load(filepath.Join(samplesDir(t), "config.yaml"),
		[]string{"SYMBRIDGE_BOT__PRIVATEKEY__PATH=" + key, "SYMBRIDGE_NATS__URL=nats://127.0.0.1:4222"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestBDKSampleRetryConfig(t *testing.T) {
	c, err := config.Load(filepath.Join(samplesDir(t), "df_retry_config.yaml"), nil, nil)
	if err != nil {
		t.Fatalf("the BDK sample must load unchanged: %v", err)
	}
	for name, u := range map[string]string{"pod": c.PodURL, "agent": c.AgentURL, "keyManager": c.KeyManagerURL, "sessionAuth": c.SessionAuthURL} {
		if u != "https://acme.symphony.com:443" {
			t.Errorf("%s = %q", name, u)
		}
	}
	if c.Username != "tibot" || c.PrivateKeyPath != "/Users/local/conf/agent/privatekey.pem" || c.Bridge.Pod != "acme" {
		t.Errorf("username %q key %q pod %q", c.Username, c.PrivateKeyPath, c.Bridge.Pod)
	}
	// The file's comment: the global retry block must not make the datafeed finite.
	if c.Datafeed.Retry != symphony.DefaultRetry {
		t.Errorf("datafeed.retry = %+v, want the BDK default %+v", c.Datafeed.Retry, symphony.DefaultRetry)
	}
	want := []string{"ignoring BDK keys that do not concern symbridge: retry.initialIntervalMillis, retry.maxAttempts, retry.maxIntervalMillis, retry.multiplier"}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got)\n%s", diff)
	}
	err = c.Validate()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "bot.privateKeyPath: open /Users/local/conf/agent/privatekey.pem") {
		t.Errorf("Validate must name the missing key file by the key used: %v", err)
	}
}

package config_test

import (
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/config"
)

// TestValidateForNATS: a command that only reads the stream validates the
// nats.* and log.* keys by the same rules as run, and nothing else.
func TestValidateForNATS(t *testing.T) {
	natsOnly := map[string]string{"nats.url": "nats://127.0.0.1:4222", "log.level": "debug"}
	for _, tc := range []struct {
		name string
		doc  map[string]string
		want []string // substrings of the error; none: valid
	}{
		{"no bot keys", natsOnly, nil},
		{"other sections broken", with(natsOnly, "bot.privateKey.path", "/nonexistent/key.pem", "bridge.readers", "0", "port", "0", "runtime.gcPercent", "-5"), nil},
		{"nats.url scheme", with(natsOnly, "nats.url", "http://127.0.0.1:4222"), []string{`nats.url: scheme must be nats, tls, ws or wss, got "http"`}},
		{"no nats.url", with(natsOnly, "nats.url", "<delete>"), []string{"nats.url: required unless nats.embedded.enabled is true"}},
		{"nats.stream", with(natsOnly, "nats.stream.replicas", "9", "nats.stream.name", `"a.b"`), []string{"nats.stream.replicas: ", "nats.stream.name: "}},
		{"nats.tls", with(natsOnly, "nats.tls.certFile", "c.pem"), []string{"nats.tls.certFile, nats.tls.keyFile: set both or neither"}},
		{"log", with(natsOnly, "log.level", "loud", "log.format", "xml"), []string{`log.level: must be debug, info, warn or error, got "loud"`, `log.format: must be text or json, got "xml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.doc), nil, nil)
			err := c.ValidateFor(config.ScopeNATS)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("ValidateFor(ScopeNATS): %v", err)
				}
				if c.Validate() == nil {
					t.Error("Validate accepts it too: the case shows nothing")
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateFor(ScopeNATS) = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ValidateFor(ScopeNATS) = %v\nwant it to contain %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "nats.") && !strings.HasPrefix(line, "log.") {
					t.Errorf("ValidateFor(ScopeNATS) reports %q, outside its scope", line)
				}
			}
			// Validate reports the same problems the same way, and none of
			// nats.* or log.* that ValidateFor leaves out.
			full := c.Validate()
			if full == nil || !strings.Contains(full.Error(), tc.want[0]) {
				t.Fatalf("Validate = %v, want it to contain %q too", full, tc.want[0])
			}
			var inScope []string
			for _, line := range strings.Split(full.Error(), "\n") {
				if strings.HasPrefix(line, "nats.") || strings.HasPrefix(line, "log.") {
					inScope = append(inScope, line)
				}
			}
			if got := strings.Join(inScope, "\n"); got != err.Error() {
				t.Errorf("ValidateFor(ScopeNATS) = %q\nValidate's nats.* and log.* problems = %q", err, got)
			}
		})
	}
}

// TestValidateForNATSWithoutFile: with no file at all, an override of
// nats.url is a complete configuration for the scope.
func TestValidateForNATSWithoutFile(t *testing.T) {
	c, err := config.Load("", nil, map[string]any{"nats.url": "nats://127.0.0.1:4222"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateFor(config.ScopeNATS); err != nil {
		t.Errorf("ValidateFor(ScopeNATS): %v", err)
	}
	if c.NATS.Stream.Name != "SYMPHONY" {
		t.Errorf("nats.stream.name = %q, want the default SYMPHONY", c.NATS.Stream.Name)
	}
}

package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/symbridge/symbridge/internal/config"
)

// FuzzLoad feeds arbitrary files and environment values to Load: it may
// refuse them, never panic, and what it loads must validate and print
// without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("host: acme.symphony.com\nbot:\n  username: tibot\n  privateKeyPath: /x\nretry:\n  maxAttempts: 2\n"), "nats://x:4222")
	f.Add([]byte("_version: '2.0'\npod:\n  host: devx1.symphony.com\n  context: /\ndatafeed:\n  includeInvisible: true\n  retry:\n    maxAttempts: 2\n"), "")
	f.Add([]byte("nats:\n  stream:\n    maxAge: 1h\n    duplicates: 2h\nbridge:\n  subject: ${S:-a.b}\n"), "${X}")
	f.Add([]byte("datahose:\n  eventTypes: [MESSAGESENT, 1, true]\nport: 1e3\n"), "-1")
	f.Add([]byte("[1, 2]"), ",,,")
	f.Fuzz(func(t *testing.T, doc []byte, envVal string) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		environ := []string{"SYMBRIDGE_NATS__URL=" + envVal, "SYMBRIDGE_DATAHOSE__EVENTTYPES=" + envVal, "SYMBRIDGE_PORT=" + envVal, "S=" + envVal}
		c, err := config.Load(p, environ, map[string]any{"bridge.pod": envVal})
		if err != nil {
			return
		}
		_ = c.Validate()
		_ = c.String()
	})
}

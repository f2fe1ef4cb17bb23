package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/testshared"
)

// systemdUnit is the unit docs/operations.md shows.
const systemdUnit = "examples/systemd/symbridge.service"

// TestSystemdUnit checks examples/systemd/symbridge.service: it runs `run
// --config`, restarts on failure but not on exit code 2 (what an invalid
// configuration returns), and keeps its hardening. Where systemd-analyze is
// installed, `systemd-analyze verify` must accept the unit without a word
// (unknown keys are only warnings there), with ExecStart pointed at an
// existing file since verify checks it; elsewhere that part is not run, and
// the test says so in its log.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(testshared.RepoRoot(t), systemdUnit)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	if got := exitCode(usagef("x"), &strings.Builder{}); got != 2 {
		t.Fatalf("an invalid configuration exits %d; the unit's RestartPreventExitStatus=2 assumes 2", got)
	}
	for k, want := range map[string]string{
		"ExecStart":                "/usr/local/bin/symbridge run --config %d/config.yaml",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
		"DynamicUser":              "yes",
		"ProtectSystem":            "strict",
		"NoNewPrivileges":          "yes",
		"Environment":              "SYMBRIDGE_BOT__PRIVATEKEY__PATH=%d/bot.pem",
	} {
		if !slices.Contains(keys[k], want) {
			t.Errorf("%s: %s=%v, want %s", systemdUnit, k, keys[k], want)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit was not verified by systemd")
		return
	}
	exe, err := os.Executable() // any existing executable: verify checks ExecStart's
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "symbridge.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(text), "/usr/local/bin/symbridge", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", systemdUnit, err, out)
	}
}

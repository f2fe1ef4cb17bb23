// Package testshared finds, for tests, the reference material kept beside
// the repository in ../shared (the official OpenAPI files and real JSON
// samples). It is never copied into the repository, so a plain clone has no
// ../shared: only the conformance tests, whose point is to compare with the
// official files (listed in .ci/conformance-tests), need it and use [Path],
// which skips them there. Every other test uses [Dir] and runs without it
// (the simulator unvalidated, generated events instead of the samples). CI
// always has it, so under CI (CI set in the environment) its absence fails
// the test either way.
package testshared

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleRoot is the directory holding go.mod, found by walking up from the
// working directory (a test's package directory, or wherever a test
// program under test/ was started).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory: run from the repository")
		}
		dir = parent
	}
}

// RepoRoot is ModuleRoot for a test: it fails the test when there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Path returns ../shared/<parts...> beside the repository, for a
// conformance test: without it the test is skipped (failed under CI).
func Path(t testing.TB, parts ...string) string {
	t.Helper()
	p, err := dir(t, parts)
	if err != nil {
		t.Skipf("conformance test: reference material not present (../shared beside the repository): %v", err)
	}
	return p
}

// Dir returns ../shared/<parts...> beside the repository and true when it
// is there. When it is not, it returns "", false on a developer's machine,
// and the caller runs without it; under CI it fails the test.
func Dir(t testing.TB, parts ...string) (string, bool) {
	t.Helper()
	p, err := dir(t, parts)
	return p, err == nil
}

func dir(t testing.TB, parts []string) (string, error) {
	t.Helper()
	p := filepath.Join(append([]string{RepoRoot(t), "..", "shared"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("reference material missing (../shared beside the repository): %v", err)
		}
		return "", err
	}
	return p, nil
}

// READMEBlock returns the shell code of README.md between the markers
// <!-- name:start --> and <!-- name:end --> (the fenced block's body), for
// the tests that run README's commands as written.
func READMEBlock(t testing.TB, name string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- "+name+":start -->")
	block, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s block", name)
	}
	block = strings.TrimSpace(block)
	block = strings.TrimPrefix(block, "```sh")
	block = strings.TrimSuffix(block, "```")
	if strings.Contains(block, "```") {
		t.Fatalf("README %s block: more than one fenced block between the markers", name)
	}
	return block
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEConfigReference keeps README's configuration table equal to the
// key table the defaults come from. Refresh it with
//
//	UPDATE_README=1 go test ./cmd/symbridge -run TestREADMEConfigReference
func TestREADMEConfigReference(t *testing.T) {
	const start, end = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := cmdConfig([]string{"markdown"}, &table); err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", start, end)
	}
	want := s[:i+len(start)] + table.String() + s[j:]
	if want == s {
		return
	}
	if os.Getenv("UPDATE_README") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's configuration reference differs from `symbridge config markdown`; run UPDATE_README=1 go test ./cmd/symbridge -run TestREADMEConfigReference")
}

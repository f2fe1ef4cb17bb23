package symphonytest

import (
	"slices"
	"testing"
)

// TestIssuedTokens: every token handed out is listed, expired ones too.
func TestIssuedTokens(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	if got := s.IssuedTokens(); len(got) != 0 {
		t.Fatalf("tokens before any login: %d", len(got))
	}
	c := newClient(t, s.url)
	c.login()
	first := []string{c.session, c.km}
	s.ExpireSessions()
	c.login()
	got := s.IssuedTokens()
	want := slices.Sorted(slices.Values(append(first, c.session, c.km)))
	if !slices.Equal(got, want) {
		t.Errorf("IssuedTokens: %d tokens %v, want the 4 issued", len(got), got)
	}
}

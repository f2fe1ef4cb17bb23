package symphonytest

import "sort"

// IssuedTokens returns every session and key-manager token the Agent has
// issued so far, expired ones included, sorted. Tests that prove a client
// never prints its credentials search its output for pieces of them.
func (a *Agent) IssuedTokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.sessions))
	for tok := range a.sessions {
		out = append(out, tok)
	}
	sort.Strings(out)
	return out
}

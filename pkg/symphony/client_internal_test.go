package symphony

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":          0,
		"7":         7 * time.Second,
		" 120 ":     2 * time.Minute,
		"0":         0,
		"-3":        0,
		"999999999": 24 * time.Hour, // capped
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		"soon": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseAgentVersion(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"Agent-24.12.0", 24, 12, true},
		{"Agent-25.8.1-SNAPSHOT-Linux", 25, 8, true},
		{"Agent-2.55.0-SNAPSHOT-Linux-4.4.86+", 2, 55, true},
		{"Agent-24.12", 24, 12, true},
		{"Agent-24", 0, 0, false},
		{"agent-24.12.0", 0, 0, false},
		{"Agent-+24.12", 0, 0, false},
		{"Agent-99999999999999999999.1", 0, 0, false},
		{"", 0, 0, false},
	} {
		major, minor, ok := parseAgentVersion(tc.in)
		if major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("parseAgentVersion(%q) = %d, %d, %v; want %d, %d, %v", tc.in, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
}

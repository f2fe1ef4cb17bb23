package main

import (
	"runtime/debug"
	"testing"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/dedupe"
)

func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1) // a negative limit only reads
}

// TestTuneGC: the defaults apply only where the environment is silent, the
// limit covers the configured dedupe set and is skipped with an embedded
// nats-server, and restore puts the previous settings back. Not parallel:
// the settings are process-wide.
func TestTuneGC(t *testing.T) {
	cfg := func(entries int, embedded bool) *config.Config {
		c := &config.Config{}
		c.Bridge.DedupeEntries = entries
		c.NATS.Embedded.Enabled = embedded
		return c
	}
	const unset = int64(-1)
	tests := []struct {
		name        string
		environ     []string
		cfg         *config.Config
		wantPercent int   // -2: unchanged
		wantLimit   int64 // unset: unchanged
	}{
		{"defaults", []string{"HOME=/x"}, cfg(dedupe.DefaultMaxEntries, false),
			defaultGCPercent, gcBaseLimit + dedupe.FullBytes(dedupe.DefaultMaxEntries)},
		{"bigger dedupe set", nil, cfg(4<<20, false), defaultGCPercent, gcBaseLimit + dedupe.FullBytes(4<<20)},
		{"dedupe disabled", nil, cfg(0, false), defaultGCPercent, gcBaseLimit},
		{"GOGC set", []string{"GOGC=50"}, cfg(0, false), -2, gcBaseLimit},
		{"GOMEMLIMIT set", []string{"GOMEMLIMIT=1GiB"}, cfg(0, false), defaultGCPercent, unset},
		{"embedded nats-server", nil, cfg(0, true), defaultGCPercent, unset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, beforeLimit := gcSettings()
			restore := tuneGC(tt.environ, tt.cfg)
			percent, limit := gcSettings()
			restore()
			if p, l := gcSettings(); p != before || l != beforeLimit {
				t.Errorf("after restore: GOGC %d, limit %d; want %d, %d", p, l, before, beforeLimit)
			}
			wantPercent, wantLimit := tt.wantPercent, tt.wantLimit
			if wantPercent == -2 {
				wantPercent = before
			}
			if wantLimit == unset {
				wantLimit = beforeLimit
			}
			if percent != wantPercent || limit != wantLimit {
				t.Errorf("GOGC %d, limit %d; want %d, %d", percent, limit, wantPercent, wantLimit)
			}
		})
	}
}

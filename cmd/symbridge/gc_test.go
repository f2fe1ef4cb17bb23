package main

import (
	"runtime"
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

// TestTuneProcs: one P unless the environment sets GOMAXPROCS or nats-server
// is embedded; restore puts the previous value back. Not parallel.
func TestTuneProcs(t *testing.T) {
	cfg := func(embedded bool) *config.Config {
		c := &config.Config{}
		c.NATS.Embedded.Enabled = embedded
		return c
	}
	// Two Ps to start from, so that "left alone" differs from the default
	// even on a one-CPU runner.
	prev := runtime.GOMAXPROCS(2)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	before := runtime.GOMAXPROCS(0)
	tests := []struct {
		name    string
		environ []string
		cfg     *config.Config
		want    int
	}{
		{"default", []string{"HOME=/x"}, cfg(false), defaultMaxProcs},
		{"GOMAXPROCS set", []string{"GOMAXPROCS=8"}, cfg(false), before},
		{"embedded nats-server", nil, cfg(true), before},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restore := tuneProcs(tt.environ, tt.cfg)
			got := runtime.GOMAXPROCS(0)
			restore()
			if after := runtime.GOMAXPROCS(0); after != before {
				t.Errorf("after restore: GOMAXPROCS %d, want %d", after, before)
			}
			if got != tt.want {
				t.Errorf("GOMAXPROCS %d, want %d", got, tt.want)
			}
		})
	}
}

// TestDedupeSet: bridge.dedupeEntries 0 disables the set, as documented (a
// nil interface), and any other value bounds it.
func TestDedupeSet(t *testing.T) {
	c := &config.Config{}
	if s := dedupeSet(c); s != nil {
		t.Errorf("dedupeEntries 0: set %#v, want none (a nil interface)", s)
	}
	c.Bridge.DedupeEntries = 1000
	if s, ok := dedupeSet(c).(*dedupe.Set); !ok || s == nil || s.Bytes() > dedupe.FullBytes(1000) {
		t.Errorf("dedupeEntries 1000: set %v", s)
	}
}

package main

import (
	"runtime"
	"slices"
	"testing"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/dedupe"
)

// TestTuneRuntime: the configured settings apply only where the
// environment is silent, Go's defaults (maxProcs 0, no memory limit) are
// left alone, and restore puts the previous settings back. Not parallel:
// the settings are process-wide.
func TestTuneRuntime(t *testing.T) {
	// Two Ps to start from, so that "left alone" differs from the default
	// even on a one-CPU runner.
	prev := runtime.GOMAXPROCS(2)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	defaults := config.RuntimeConfig{MaxProcs: 1, GCPercent: 400, MemoryLimit: 200 << 20}
	const unchanged = -2
	tests := []struct {
		name        string
		environ     []string
		cfg         config.RuntimeConfig
		wantProcs   int
		wantPercent int
		wantLimit   int64
	}{
		{"defaults", []string{"HOME=/x"}, defaults, 1, 400, 200 << 20},
		{"GOMAXPROCS set", []string{"GOMAXPROCS=8"}, defaults, unchanged, 400, 200 << 20},
		{"GOGC set", []string{"GOGC=50"}, defaults, 1, unchanged, 200 << 20},
		{"GOMEMLIMIT set", []string{"GOMEMLIMIT=1GiB"}, defaults, 1, 400, unchanged},
		{"Go's defaults (embedded nats-server)", nil, config.RuntimeConfig{GCPercent: 100}, unchanged, 100, unchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeProcs := runtime.GOMAXPROCS(0)
			before, beforeLimit := gcSettings()
			restore := tuneRuntime(tt.environ, tt.cfg)
			procs := runtime.GOMAXPROCS(0)
			percent, limit := gcSettings()
			restore()
			if p, l := gcSettings(); p != before || l != beforeLimit || runtime.GOMAXPROCS(0) != beforeProcs {
				t.Errorf("after restore: GOGC %d, limit %d; want %d, %d", p, l, before, beforeLimit)
			}
			want := []int64{int64(tt.wantProcs), int64(tt.wantPercent), tt.wantLimit}
			for i, was := range []int64{int64(beforeProcs), int64(before), beforeLimit} {
				if want[i] == unchanged {
					want[i] = was
				}
			}
			if got := []int64{int64(procs), int64(percent), limit}; !slices.Equal(got, want) {
				t.Errorf("GOMAXPROCS, GOGC, limit = %d; want %d", got, want)
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

package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"

	"github.com/symbridge/symbridge/internal/config"
)

// The Go runtime's settings of `symbridge run` come from runtime.* (see
// config.RuntimeConfig): GOMAXPROCS=1, GOGC=400 and a soft memory limit that
// covers the reads in flight and the dedupe set. Every read leaves garbage
// proportional to its batch while the live heap stays small, so Go's default
// (collect whenever the heap doubles) spends a good part of the bridge's CPU
// in the collector; and the bridge waits on the network far more than it
// computes, so a second P mostly makes goroutines hop between threads
// (BENCHMARKS.md has the measurements). An environment variable (GOMAXPROCS,
// GOGC, GOMEMLIMIT) set by the operator wins over its key: the runtime has
// already applied it.

// tuneRuntime applies r, each setting only when its environment variable is
// absent from environ and the setting is not Go's default (maxProcs 0, no
// memory limit). It returns a function that restores the previous settings
// (tests run the command in-process).
func tuneRuntime(environ []string, r config.RuntimeConfig) (restore func()) {
	env := envNames(environ)
	prevProcs, prevPercent, prevLimit := 0, -2, int64(-1)
	if !env["GOMAXPROCS"] && r.MaxProcs > 0 {
		prevProcs = runtime.GOMAXPROCS(r.MaxProcs)
	}
	if !env["GOGC"] {
		prevPercent = debug.SetGCPercent(r.GCPercent)
	}
	if !env["GOMEMLIMIT"] && r.MemoryLimit > 0 {
		prevLimit = debug.SetMemoryLimit(r.MemoryLimit)
	}
	return func() {
		if prevProcs > 0 {
			runtime.GOMAXPROCS(prevProcs)
		}
		if prevPercent != -2 {
			debug.SetGCPercent(prevPercent)
		}
		if prevLimit >= 0 {
			debug.SetMemoryLimit(prevLimit)
		}
	}
}

func envNames(environ []string) map[string]bool {
	m := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		m[name] = true
	}
	return m
}

// gcSettings reads GOGC (-1 = off) and the soft memory limit
// (math.MaxInt64 = none) through runtime/metrics, which, unlike
// debug.SetGCPercent, reads without setting.
func gcSettings() (percent int, limit int64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return int(int64(s[0].Value.Uint64())), int64(s[1].Value.Uint64())
}

// logRuntime logs the settings in force, once tuneRuntime has applied them.
func logRuntime(logger *slog.Logger) {
	percent, limit := gcSettings()
	logger.Info("go runtime settings", "gomaxprocs", runtime.GOMAXPROCS(0), "gogc", percent, "memory_limit", limit)
}

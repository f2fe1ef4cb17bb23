package main

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/dedupe"
)

// Garbage collector settings of `symbridge run` when the environment sets
// none. Every read leaves garbage proportional to its batch (the body, header
// maps, publish futures) while the live heap stays small, so Go's default
// (collect whenever the heap doubles) spends a good part of the bridge's CPU
// in the collector. A higher GOGC collects less often; the soft memory limit
// makes the collector work harder before the process outgrows its budget
// (BENCHMARKS.md has the measurements).
const (
	defaultGCPercent = 400
	// gcBaseLimit is the soft memory limit without the dedupe set, which
	// is added at its full size: reads in flight, their messages and the
	// runtime fit well within it at the default bridge.readers.
	gcBaseLimit = 32 << 20 // bytes
)

// tuneGC applies the settings above, each only when its environment variable
// (GOGC, GOMEMLIMIT) is absent from environ: an operator's explicit choice
// wins. The memory limit is skipped with an embedded nats-server, whose
// memory (the stream's cache) the bridge's budget does not cover: a limit
// below the live heap would make the collector run without end. It returns
// a function that restores the previous settings (tests run the command
// in-process).
func tuneGC(environ []string, cfg *config.Config) (restore func()) {
	var hasGOGC, hasLimit bool
	for _, kv := range environ {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "GOGC":
			hasGOGC = true
		case "GOMEMLIMIT":
			hasLimit = true
		}
	}
	prevPercent, prevLimit := -2, int64(-1)
	if !hasGOGC {
		prevPercent = debug.SetGCPercent(defaultGCPercent)
	}
	if !hasLimit && !cfg.NATS.Embedded.Enabled {
		limit := int64(gcBaseLimit)
		if cfg.Bridge.DedupeEntries > 0 {
			limit += dedupe.FullBytes(cfg.Bridge.DedupeEntries)
		}
		prevLimit = debug.SetMemoryLimit(limit)
	}
	return func() {
		if prevPercent != -2 {
			debug.SetGCPercent(prevPercent)
		}
		if prevLimit >= 0 {
			debug.SetMemoryLimit(prevLimit)
		}
	}
}

// defaultMaxProcs is GOMAXPROCS for `symbridge run` when the environment
// sets none. The bridge waits on the network far more than it computes (at
// ~20 µs of CPU per event one CPU carries ~50 000 events/s, more than an
// Agent hands out), and with a second P its goroutines (readers, the NATS
// read loop, flusher and publish-ack handler, HTTP connections) hop between
// threads, which wakes idle threads and keeps a spinning one looking for
// work. On the 2-vCPU benchmark host, shared with nats-server, one P cost
// ~10 % less CPU per event at the same rate (BENCHMARKS.md, item 10).
const defaultMaxProcs = 1

// tuneProcs sets GOMAXPROCS to defaultMaxProcs unless the environment sets
// it (an operator's choice wins) or nats-server is embedded (JetStream in
// the same process needs the CPUs). It returns a function that restores
// the previous value.
func tuneProcs(environ []string, cfg *config.Config) (restore func()) {
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); name == "GOMAXPROCS" {
			return func() {}
		}
	}
	if cfg.NATS.Embedded.Enabled {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(defaultMaxProcs)
	return func() { runtime.GOMAXPROCS(prev) }
}

package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/bridge"
)

// fakeProgress is a progressSource the test sets; it counts the reporter's
// looks at it, which tells the test that ticks went by.
type fakeProgress struct {
	mu      sync.Mutex
	st      bridge.Stats
	readers int
	looks   int
}

func (f *fakeProgress) Stats() bridge.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	return f.st
}

func (f *fakeProgress) Readers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readers
}

func (f *fakeProgress) set(readers int, fn func(*bridge.Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readers = readers
	fn(&f.st)
}

func (f *fakeProgress) Looks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks
}

// progressLines returns the fields of every "progress" line in JSON logs.
func progressLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == "progress" {
			lines = append(lines, rec)
		}
	}
	return lines
}

// TestReportProgress: a line per interval while events move, with the
// totals; none while idle; a last one at stop, idle or not.
func TestReportProgress(t *testing.T) {
	t.Parallel()
	src := &fakeProgress{}
	var logs testlog.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reportProgress(ctx, src, logger, 5*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	// idleTicks waits for n more ticks (each looks at the stats once).
	idleTicks := func(n int) {
		t.Helper()
		from := src.Looks()
		natstest.WaitFor(t, 10*time.Second, func() error {
			if src.Looks() < from+n {
				return context.DeadlineExceeded
			}
			return nil
		})
	}
	waitLines := func(n int) []map[string]any {
		t.Helper()
		var lines []map[string]any
		natstest.WaitFor(t, 10*time.Second, func() error {
			if lines = progressLines(t, logs.String()); len(lines) < n {
				return context.DeadlineExceeded
			}
			return nil
		})
		return lines
	}

	idleTicks(3)
	if lines := progressLines(t, logs.String()); len(lines) != 0 {
		t.Fatalf("progress lines before any event: %v", lines)
	}

	newest := time.Now().Add(-5 * time.Second)
	src.set(2, func(s *bridge.Stats) {
		s.Published, s.Duplicates, s.DedupeSkipped = 90, 4, 6
		s.DeadLettered, s.PublishRetries, s.NewestStored = 2, 3, newest
	})
	lines := waitLines(1)
	l := lines[0]
	for k, want := range map[string]float64{"stored": 100, "duplicates": 10, "dead_lettered": 2, "publish_retries": 3, "readers": 2} {
		if got, _ := l[k].(float64); got != want {
			t.Errorf("%s = %v, want %v in %v", k, l[k], want, l)
		}
	}
	if r, _ := l["events_per_s"].(float64); r <= 0 {
		t.Errorf("events_per_s = %v, want > 0 in %v", l["events_per_s"], l)
	}
	ageText, _ := l["newest_event_age"].(string)
	if age, err := time.ParseDuration(ageText); err != nil || age < 5*time.Second || age > time.Minute {
		t.Errorf("newest_event_age = %q, want about 5s", ageText)
	}

	idleTicks(3)
	if n := len(progressLines(t, logs.String())); n != 1 {
		t.Fatalf("%d progress lines after idle ticks, want still 1:\n%s", n, logs.String())
	}
	src.set(1, func(s *bridge.Stats) { s.Published = 140 })
	if l := waitLines(2)[1]; l["stored"] != float64(150) || l["readers"] != float64(1) {
		t.Errorf("second line %v, want stored 150, readers 1", l)
	}

	idleTicks(2)
	cancel()
	<-done
	lines = progressLines(t, logs.String())
	if len(lines) != 3 {
		t.Fatalf("%d progress lines after stop, want 3 (the last one at stop):\n%s", len(lines), logs.String())
	}
	if l := lines[2]; l["stored"] != float64(150) || l["events_per_s"] != float64(0) {
		t.Errorf("line at stop %v, want stored 150 and 0 events/s (idle)", l)
	}
}

// TestProgressFields: the rate covers the time since the previous tick,
// idle ticks included; the age is "none" before the first event.
func TestProgressFields(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fields := func(attrs []any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(attrs); i += 2 {
			m[attrs[i].(string)] = attrs[i+1]
		}
		return m
	}
	p := newProgress(bridge.Stats{Published: 10}, t0)
	if _, moved := p.next(bridge.Stats{Published: 10}, 1, t0.Add(30*time.Second)); moved {
		t.Error("an idle interval reported as movement")
	}
	attrs, moved := p.next(bridge.Stats{Published: 40, DeadLettered: 5, DedupeSkipped: 5}, 2, t0.Add(40*time.Second))
	m := fields(attrs)
	if !moved || m["events_per_s"] != 4.0 || m["stored"] != int64(45) || m["duplicates"] != int64(5) ||
		m["dead_lettered"] != int64(5) || m["readers"] != 2 || m["newest_event_age"] != "none" {
		t.Errorf("fields %v (moved %v), want 4 events/s over the last 10s, stored 45, age none", m, moved)
	}
	_, _ = p.next(bridge.Stats{Published: 43, NewestStored: t0.Add(49 * time.Second)}, 1, t0.Add(50*time.Second))
	attrs, _ = p.next(bridge.Stats{Published: 44, NewestStored: t0.Add(49 * time.Second)}, 1, t0.Add(53*time.Second))
	if m := fields(attrs); m["newest_event_age"] != "4s" || m["events_per_s"] != 0.3 {
		t.Errorf("fields %v, want age 4s, 0.3 events/s (rounded)", m)
	}
}

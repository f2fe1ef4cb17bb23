package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/symbridge/symbridge/internal/bridgetest"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

func TestBucketQuantile(t *testing.T) {
	tests := []struct {
		name   string
		q      float64
		bounds []float64
		counts []uint64
		total  uint64
		want   float64
	}{
		{"nothing observed", 0.5, []float64{1, 2}, []uint64{0, 0}, 0, 0},
		{"no buckets", 0.5, nil, nil, 3, 0},
		{"first bucket starts at 0", 0.5, []float64{1, 2}, []uint64{4, 4}, 4, 0.5},
		{"inside a bucket", 0.5, []float64{1, 2, 4}, []uint64{0, 10, 10}, 10, 1.5},
		{"rank on a bucket's edge", 0.5, []float64{1, 2, 4}, []uint64{5, 5, 10}, 10, 1},
		{"upper part", 0.9, []float64{1, 2, 4}, []uint64{5, 5, 10}, 10, 3.6},
		{"in the +Inf bucket: the highest bound", 0.99, []float64{1, 2}, []uint64{1, 2}, 10, 2},
		{"q above 1 is 1", 2, []float64{1, 2}, []uint64{0, 4}, 4, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bucketQuantile(tc.q, tc.bounds, tc.counts, tc.total); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("bucketQuantile(%g, %v, %v, %d) = %g, want %g", tc.q, tc.bounds, tc.counts, tc.total, got, tc.want)
			}
		})
	}
}

// TestBatchLatencyQuantile: the quantiles logged at stop come from the
// histogram served on /metrics: within the width of the bucket holding the
// true value (1.3 times), as histogram_quantile's are, and 0 before any
// batch.
func TestBatchLatencyQuantile(t *testing.T) {
	lat := newBatchLatency()
	if got := lat.quantile(0.5); got != 0 {
		t.Errorf("p50 before any batch = %s, want 0", got)
	}
	for i := 1; i <= 1000; i++ { // 1 ms .. 1 s, evenly
		lat.ObserveBatch(time.Duration(i)*time.Millisecond, 100)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.1, 100 * time.Millisecond}} {
		got := lat.quantile(c.q)
		if float64(got) < float64(c.want)/1.3 || float64(got) > float64(c.want)*1.3 {
			t.Errorf("quantile(%g) = %s, want %s within a factor 1.3", c.q, got, c.want)
		}
	}
}

// oneBatch is a feed that hands out one batch once gate is closed, then
// long-polls until the reader stops.
type oneBatch struct {
	gate  chan struct{}
	mu    sync.Mutex
	batch symphony.Batch
	sent  bool
}

func (f *oneBatch) Name() string { return "one batch" }

func (f *oneBatch) Read(ctx context.Context, _ string) (symphony.Batch, error) {
	select {
	case <-f.gate:
	case <-ctx.Done():
		return symphony.Batch{}, ctx.Err()
	}
	f.mu.Lock()
	sent := f.sent
	f.sent = true
	f.mu.Unlock()
	if !sent {
		return f.batch, nil
	}
	<-ctx.Done()
	return symphony.Batch{}, ctx.Err()
}

// newestEventGauge reads symbridge_newest_event_timestamp_seconds from reg;
// ok is false when it has no sample.
func newestEventGauge(t *testing.T, reg *prometheus.Registry) (v float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "symbridge_newest_event_timestamp_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestNewestEventMetric: symbridge_newest_event_timestamp_seconds is absent
// before any event is stored (a 0 would read as 56 years of lag), then the
// Symphony timestamp of the newest event stored, in seconds.
func TestNewestEventMetric(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	if _, err := bridge.EnsureStream(t.Context(), natstest.JetStream(t, srv), bridge.StreamConfig{Name: "SYMPHONY"}, []string{"symphony.>"}, nil); err != nil {
		t.Fatal(err)
	}
	feed := &oneBatch{gate: make(chan struct{}), batch: symphony.Batch{AckID: "a1"}}
	var newest int64
	for _, raw := range symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 3}).Mix(20) {
		ev := symphony.ParseEvent(raw)
		newest = max(newest, ev.Timestamp)
		feed.batch.Events = append(feed.batch.Events, ev)
	}
	if newest == 0 {
		t.Fatal("the generated events carry no timestamp")
	}

	r := bridgetest.Start(t, t.Context(), bridgetest.Config(t, "acme", bridge.SourceDatafeed, slog.New(slog.DiscardHandler)), feed, srv.URL())
	reg := newMetrics(r.Bridge, coordinatedFeed{feed}, natstest.Connect(t, srv), bridge.SourceDatafeed, newBatchLatency())
	for name, want := range map[string]float64{"symbridge_feed_coordination_alone_total": 2, "symbridge_feed_moves_total": 1} {
		if got := gatherValue(t, reg, name); got != want {
			t.Errorf("%s = %g, want %g (the source's CoordinationStats)", name, got, want)
		}
	}
	if v, ok := newestEventGauge(t, reg); ok {
		t.Errorf("before any event: gauge %g, want no sample", v)
	}
	close(feed.gate)
	want := float64(newest) / 1e3
	natstest.WaitFor(t, 10*time.Second, func() error {
		if v, ok := newestEventGauge(t, reg); !ok || v != want {
			return fmt.Errorf("gauge %g (present %v), want %g", v, ok, want)
		}
		return nil
	})
}

// coordinatedFeed is a source that reports coordination counts, as
// symphony.DatafeedV2 does.
type coordinatedFeed struct{ *oneBatch }

func (coordinatedFeed) CoordinationStats() symphony.CoordinationStats {
	return symphony.CoordinationStats{Alone: 2, Moves: 1}
}

// gatherValue is the value of the single sample of a counter or gauge.
func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

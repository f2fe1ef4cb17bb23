package main

import (
	"math"
	"testing"
	"time"
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

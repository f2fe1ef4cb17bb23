package main

import (
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// newMetrics builds the registry served on /metrics. The bridge keeps plain
// counters (library packages know nothing of Prometheus); they are read at
// scrape time; lat is the batch latency histogram the bridge reports to.
// Names follow Prometheus conventions: one prefix, base units, _total on
// counters, no high-cardinality labels (no stream or user ids).
// Nothing here can carry a secret: only numbers and the version.
func newMetrics(b *bridge.Bridge, src bridge.Source, nc *nats.Conn, source string, lat *batchLatency) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, f func(bridge.Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "symbridge_" + name, Help: help,
		}, func() float64 { return float64(f(b.Stats())) }))
	}
	counter("batches_total", "Reads of the feed that returned a batch (empty ones included).", func(s bridge.Stats) int64 { return s.Batches })
	counter("events_read_total", "Events received from the Agent (redeliveries included).", func(s bridge.Stats) int64 { return s.EventsRead })
	counter("events_published_total", "Events JetStream stored as new messages.", func(s bridge.Stats) int64 { return s.Published })
	counter("events_duplicate_total", "Events JetStream already had (duplicate publish-ack): redeliveries.", func(s bridge.Stats) int64 { return s.Duplicates })
	counter("events_dedupe_skipped_total", "Events not published again because they were stored recently.", func(s bridge.Stats) int64 { return s.DedupeSkipped })
	counter("events_dead_lettered_total", "Events stored on the dead-letter subject instead of their own.", func(s bridge.Stats) int64 { return s.DeadLettered })
	counter("read_errors_total", "Failed reads of the feed.", func(s bridge.Stats) int64 { return s.ReadErrors })
	counter("publish_retries_total", "Re-publishes after a transient JetStream failure.", func(s bridge.Stats) int64 { return s.PublishRetries })
	counter("feed_recreations_total", "Feeds recreated after a 400: Symphony dropped what the old feed held.", func(s bridge.Stats) int64 { return s.FeedRecreations })
	// Feed coordination (datafeed v2); always exported, 0 for other sources.
	cs, _ := src.(interface {
		CoordinationStats() symphony.CoordinationStats
	})
	coord := func() symphony.CoordinationStats {
		if cs == nil {
			return symphony.CoordinationStats{}
		}
		return cs.CoordinationStats()
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "symbridge_feed_coordination_alone_total",
		Help: "Feed steps (choose, replace, recheck) taken without the other instances because the coordination buckets failed.",
	}, func() float64 { return float64(coord().Alone) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "symbridge_feed_moves_total",
		Help: "Moves from a feed of this instance's own to the recorded shared feed, each after draining the old one.",
	}, func() float64 { return float64(coord().Moves) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "symbridge_ready", Help: "1 when /readyz is 200 (NATS connected, reads healthy, publishes succeeding).",
	}, func() float64 {
		if b.Ready() == nil {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "symbridge_nats_connected", Help: "1 while the NATS connection is up.",
	}, func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "symbridge_nats_reconnects_total", Help: "Reconnections to NATS.",
	}, func() float64 { return float64(nc.Stats().Reconnects) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "symbridge_readers", Help: "Concurrent readers of the feed right now.",
	}, func() float64 { return float64(b.Readers()) }))
	reg.MustRegister(newestEvent{b})
	reg.MustRegister(lat.hist)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "symbridge_build_info", Help: "Always 1; labels carry the version and the feed source.",
		ConstLabels: prometheus.Labels{"version": version, "source": source},
	}, func() float64 { return 1 }))
	return reg
}

// newestEventDesc: the lag behind Symphony is time() minus this gauge.
var newestEventDesc = prometheus.NewDesc("symbridge_newest_event_timestamp_seconds",
	"Symphony timestamp (unix seconds) of the newest event stored; time() minus it is the lag behind Symphony. Absent until the first event is stored.",
	nil, nil)

// newestEvent exports bridge.Stats.NewestStored. It is a collector rather
// than a GaugeFunc so that a bridge that has stored nothing yet exports no
// sample instead of 0, which would read as a lag of 56 years.
type newestEvent struct{ b *bridge.Bridge }

func (c newestEvent) Describe(ch chan<- *prometheus.Desc) { ch <- newestEventDesc }

func (c newestEvent) Collect(ch chan<- prometheus.Metric) {
	t := c.b.Stats().NewestStored
	if t.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(newestEventDesc, prometheus.GaugeValue, float64(t.UnixMilli())/1e3)
}

// batchLatency is the symbridge_batch_latency_seconds histogram, fed by the
// bridge as its [bridge.Observer]. Buckets run from 0.5 ms to 60 s, 1.3
// times apart: fine enough for histogram_quantile to place a quantile
// within a bucket's width, linear inside it.
type batchLatency struct {
	hist prometheus.Histogram
}

func newBatchLatency() *batchLatency {
	return &batchLatency{hist: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "symbridge_batch_latency_seconds",
		Help:    "Batch latency: from a read returning a non-empty batch to the batch being stored (its ackId ready for the next read).",
		Buckets: prometheus.ExponentialBucketsRange(0.0005, 60, 46),
	})}
}

// ObserveBatch implements [bridge.Observer].
func (l *batchLatency) ObserveBatch(d time.Duration, _ int) { l.hist.Observe(d.Seconds()) }

// quantile estimates the q-quantile of the latencies observed so far, as
// Prometheus's histogram_quantile does over the same buckets; 0 before any.
func (l *batchLatency) quantile(q float64) time.Duration {
	var m dto.Metric
	if err := l.hist.Write(&m); err != nil {
		return 0
	}
	h := m.GetHistogram()
	var bounds []float64
	var counts []uint64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, b.GetCumulativeCount())
	}
	s := bucketQuantile(q, bounds, counts, h.GetSampleCount())
	return time.Duration(s * float64(time.Second))
}

// bucketQuantile is histogram_quantile over classic buckets: bounds are the
// finite upper bounds in increasing order, counts their cumulative counts,
// total the count of all observations (the +Inf bucket). The quantile is
// interpolated linearly inside the bucket it falls in, from 0 for the
// first bucket; in the +Inf bucket it is the highest finite bound. 0 when
// nothing was observed.
func bucketQuantile(q float64, bounds []float64, counts []uint64, total uint64) float64 {
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, upper := range bounds {
		if float64(counts[i]) >= rank {
			in := counts[i] - below
			if in == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = upper, counts[i]
	}
	return bounds[len(bounds)-1]
}

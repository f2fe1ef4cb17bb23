package main

import (
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/symbridge/symbridge/pkg/bridge"
)

// newMetrics builds the registry served on /metrics. The bridge keeps plain
// counters (library packages know nothing of Prometheus); they are read at
// scrape time. Names follow Prometheus conventions: one prefix, base units,
// _total on counters, no high-cardinality labels (no stream or user ids).
// Nothing here can carry a secret: only numbers and the version.
func newMetrics(b *bridge.Bridge, nc *nats.Conn, source string) *prometheus.Registry {
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
	for _, q := range []float64{0.5, 0.99} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "symbridge_batch_latency_seconds", Help: "Recent batch latency (read returned to batch stored), by quantile.",
			ConstLabels: prometheus.Labels{"quantile": strconv.FormatFloat(q, 'g', -1, 64)},
		}, func() float64 { return b.BatchLatency(q).Seconds() }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "symbridge_build_info", Help: "Always 1; labels carry the version and the feed source.",
		ConstLabels: prometheus.Labels{"version": version, "source": source},
	}, func() float64 { return 1 }))
	return reg
}

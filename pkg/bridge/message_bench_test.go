package bridge_test

import (
	"testing"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

// BenchmarkBuildMsg: the headers of one message (Msg-Id included).
func BenchmarkBuildMsg(b *testing.B) {
	var evs []symphony.Event
	for _, raw := range benchdata.Events(100, 1024, 1) {
		evs = append(evs, symphony.ParseEvent(raw))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if m := bridge.BuildMsg(&evs[i%len(evs)], "symphony.acme.messagesent.room", "acme", "datafeed"); m.Data == nil {
			b.Fatal("no data")
		}
		i++
	}
}

// BenchmarkHotPath is everything the bridge does with one read's answer
// before publishing: decode 100 events, map each to its subject, build each
// message. ns/event is the CPU the bridge spends per event outside NATS.
func BenchmarkHotPath(b *testing.B) {
	body := benchdata.EventList(benchdata.Events(100, 1024, 1), "ackId-0123456789")
	m, err := subjects.Compile(subjects.DefaultTemplate)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		batch, err := symphony.DecodeEventList(body)
		if err != nil {
			b.Fatal(err)
		}
		for i := range batch.Events {
			ev := &batch.Events[i]
			v := subjects.FromEvent(ev, "acme", "datafeed")
			_ = bridge.BuildMsg(ev, m.Subject(&v), "acme", "datafeed")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}

package symphony_test

import (
	"testing"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

// The hot path of the bridge, per read of a datafeed: decode one answer of
// 100 realistic ~1 KiB events, then one Msg-Id per event. Run with
//
//	go test -run '^$' -bench . -benchmem ./pkg/symphony/
//
// The figures are in BENCHMARKS.md.

const benchBatch, benchSize = 100, 1024

func BenchmarkDecodeEventList(b *testing.B) {
	events := benchdata.Events(benchBatch, benchSize, 1)
	body := benchdata.EventList(events, "ackId-0123456789abcdefghijklmnopqrstuvwxyz")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		batch, err := symphony.DecodeEventList(body)
		if err != nil || len(batch.Events) != benchBatch {
			b.Fatalf("%d events, err %v", len(batch.Events), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/event")
}

func BenchmarkParseEvent(b *testing.B) {
	events := benchdata.Events(benchBatch, benchSize, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := symphony.ParseEvent(events[i%len(events)])
		if ev.Err != nil {
			b.Fatal(ev.Err)
		}
		i++
	}
}

func BenchmarkMsgID(b *testing.B) {
	for _, c := range []struct {
		name string
		raw  string
	}{
		{"WithID", ""}, // the generated mix: nearly every event has an id
		{"WithoutID", `{"type":"USERJOINEDROOM","timestamp":1767603602843,"initiator":{"user":{"userId":7}},` +
			`"payload":{"userJoinedRoom":{"stream":{"streamId":"T0r452FKGvhj9KZ9Gxpkul___HoxjtG6hQ","streamType":"ROOM"},"affectedUser":{"userId":8}}}}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			var evs []symphony.Event
			if c.raw == "" {
				for _, raw := range benchdata.Events(benchBatch, benchSize, 1) {
					if ev := symphony.ParseEvent(raw); ev.ID != "" {
						evs = append(evs, ev)
					}
				}
			} else {
				evs = append(evs, symphony.ParseEvent([]byte(c.raw)))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if id := symphony.MsgID(&evs[i%len(evs)]); len(id) != 49 {
					b.Fatal(id)
				}
				i++
			}
		})
	}
}

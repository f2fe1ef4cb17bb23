package subjects_test

import (
	"testing"

	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

// BenchmarkSubjectRealistic maps realistic events with the default template and with
// the stream id in it: one allocation, the subject string itself.
func BenchmarkSubjectRealistic(b *testing.B) {
	var evs []symphony.Event
	for _, raw := range benchdata.Events(100, 1024, 1) {
		evs = append(evs, symphony.ParseEvent(raw))
	}
	for _, tmpl := range []string{subjects.DefaultTemplate, "symphony.{pod}.{source}.{eventType}.{streamType}.{streamId}"} {
		m, err := subjects.Compile(tmpl)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tmpl, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v := subjects.FromEvent(&evs[i%len(evs)], "acme", "datafeed")
				if s := m.Subject(&v); s == "" {
					b.Fatal("empty subject")
				}
				i++
			}
			if a := testing.AllocsPerRun(100, func() {
				v := subjects.FromEvent(&evs[0], "acme", "datafeed")
				_ = m.Subject(&v)
			}); a > 1 {
				b.Fatalf("%v allocations per subject, want at most 1 (the subject)", a)
			}
		})
	}
}

// Package benchdata builds the events the benchmarks share: realistic
// Symphony events from the simulator's [symphonytest.Generator] (every type,
// shared ids, events without id, standard-base64 stream ids), padded to a
// target size, so that the micro-benchmarks and the end-to-end benchmark
// measure the same bytes.
package benchdata

import (
	"bytes"
	"strconv"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// PadKey is the envelope field that pads a short event to the target size.
// Symphony's envelope carries fields the bridge does not route on; the
// decoder has to skip this one the same way.
const PadKey = "benchPad"

// Events returns n realistic events with a deterministic mix (seed). Each
// event shorter than size bytes is padded to exactly size bytes with a
// trailing envelope field; longer ones (large MESSAGESENT) stay as they
// are, so the mean is a little above size.
func Events(n, size int, seed int64) [][]byte {
	return NewSource(size, seed).Next(n)
}

// Source generates the events of [Events] a chunk at a time, for runs too
// long to hold them all. It continues one generator, so no two events it
// returns are the same: the generator's serial, which is in every event's
// payload, keeps counting across calls.
type Source struct {
	g    *symphonytest.Generator
	size int
}

// NewSource returns a Source of events drawn from seed's generator, padded
// to size.
func NewSource(size int, seed int64) *Source {
	return &Source{size: size, g: symphonytest.NewGenerator(symphonytest.GeneratorConfig{
		Seed: seed, NoIDRate: 0.02, StdBase64Rate: 0.05, SharedIDRate: 0.05,
	})}
}

// Next returns the next n events.
func (s *Source) Next(n int) [][]byte {
	out := make([][]byte, 0, n)
	for len(out) < n {
		for _, ev := range s.g.Mix(min(n-len(out), 1000)) {
			out = append(out, Pad(ev, s.size))
		}
	}
	return out[:n]
}

// Pad returns ev grown to size bytes by a last envelope field
// ("benchPad":"xx..."); ev must be a JSON object. An event already that long
// (or too short to hold the field's overhead) is returned unchanged.
func Pad(ev []byte, size int) []byte {
	ev = bytes.TrimSpace(ev)
	overhead := len(`,"` + PadKey + `":""`)
	fill := size - len(ev) - overhead
	if fill < 0 || len(ev) < 2 || ev[len(ev)-1] != '}' {
		return ev
	}
	out := make([]byte, 0, size)
	out = append(out, ev[:len(ev)-1]...)
	out = append(out, `,"`+PadKey+`":"`...)
	for i := range fill {
		out = append(out, 'a'+byte(i%26))
	}
	out = append(out, `"}`...)
	return out
}

// EventList wraps events in a datafeed v2 read answer (V5EventList), the
// way the simulator serves them.
func EventList(events [][]byte, ackID string) []byte {
	n := 32 + len(ackID)
	for _, e := range events {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, `],"ackId":`...)
	b = strconv.AppendQuote(b, ackID)
	return append(b, '}')
}

// MeanSize is the mean length of events in bytes.
func MeanSize(events [][]byte) int {
	if len(events) == 0 {
		return 0
	}
	t := 0
	for _, e := range events {
		t += len(e)
	}
	return t / len(events)
}

package symphonytest

import (
	"slices"
	"testing"
)

func TestExpireFeedDroppingReturnsQueuedAndInFlight(t *testing.T) {
	s := newSim(t, Config{MaxBatch: 2})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(map[string]any{"tag": "chaos"})
	g := NewGenerator(GeneratorConfig{Seed: 3})
	s.Emit(g.Mix(5)...)

	first := c.read(id, "")           // serials 1, 2: acked by the next read
	second := c.read(id, first.AckID) // serials 3, 4: in flight
	if got := serials(t, second.Events); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("second batch serials = %v, want [3 4]", got)
	}

	dropped, ok := s.ExpireFeedDropping(id)
	if !ok {
		t.Fatal("ExpireFeedDropping of a live feed reported false")
	}
	var got []int64
	for _, raw := range dropped {
		n, ok := SerialOf(raw)
		if !ok {
			t.Fatalf("dropped event without serial: %s", raw)
		}
		got = append(got, n)
	}
	slices.Sort(got)
	if want := []int64{3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("dropped serials = %v, want %v (queued and in flight, not acked)", got, want)
	}
	if st := s.Stats(); st.EventsDropped != int64(len(dropped)) || st.FeedsExpired != 1 {
		t.Errorf("Stats: dropped %d, expired %d; want %d, 1", st.EventsDropped, st.FeedsExpired, len(dropped))
	}
	if _, ok := s.ExpireFeedDropping(id); ok {
		t.Error("ExpireFeedDropping of an expired feed reported true")
	}
	c.must(400, "POST", "/agent/v5/datafeeds/"+id+"/read", map[string]any{"ackId": ""})
}

func TestBatchAcked(t *testing.T) {
	s := newSim(t, Config{MaxBatch: 2})
	c := newClient(t, s.url)
	c.login()
	id := c.createFeed(map[string]any{"tag": "chaos"})
	s.Emit(NewGenerator(GeneratorConfig{Seed: 4}).Mix(4)...)

	first := c.read(id, "")
	if acked, known := s.BatchAcked(id, first.AckID); acked || !known {
		t.Fatalf("after hand-out: acked %v known %v, want false true", acked, known)
	}
	c.read(id, first.AckID)
	if acked, known := s.BatchAcked(id, first.AckID); !acked || !known {
		t.Fatalf("after ack: acked %v known %v, want true true", acked, known)
	}
	if _, known := s.BatchAcked(id, "no-such-ack"); known {
		t.Error("unknown ackId reported known")
	}
	if _, known := s.BatchAcked("no-such-feed", first.AckID); known {
		t.Error("unknown feed reported known")
	}
}

package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

func TestSerialOfMatchesTheSimulator(t *testing.T) {
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 7, NoIDRate: 0.3, SharedIDRate: 0.3,
		StdBase64Rate: 0.3, UnknownTypeRate: 0.2})
	events := append(g.All(), g.Mix(500)...)
	for _, raw := range events {
		want, ok := symphonytest.SerialOf(raw)
		if !ok {
			t.Fatalf("generator event without serial: %s", raw)
		}
		if got, ok := serialOf(raw); !ok || got != want {
			t.Fatalf("serialOf = %d, %v; SerialOf = %d in %s", got, ok, want, raw)
		}
	}
	// Spacing the fast scan does not expect: the fallback decodes it.
	if got, ok := serialOf([]byte(`{"payload":{"x":{"symbridgeSerial" : 42}}}`)); !ok || got != 42 {
		t.Errorf("serialOf with spaces = %d, %v; want 42", got, ok)
	}
	// The key inside a message text is escaped, so it is not taken.
	if got, ok := serialOf([]byte(`{"payload":{"m":{"text":"\"symbridgeSerial\":7","symbridgeSerial":8}}}`)); !ok || got != 8 {
		t.Errorf("serialOf = %d, %v; want 8", got, ok)
	}
	if _, ok := serialOf([]byte(`{"payload":{}}`)); ok {
		t.Error("serialOf found a serial in an event without one")
	}
}

func TestLedgerVerdict(t *testing.T) {
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 1})
	evs := g.Mix(6) // serials 1..6
	l := newLedger(10, 0)
	if err := l.recordEmitted(evs); err != nil {
		t.Fatal(err)
	}
	l.markAcked(evs[:2])                    // 1, 2
	l.markAcked(evs[:1])                    // a repeat ack changes nothing
	l.markDropped([][]byte{evs[2], evs[5]}) // 3 (never stored), 6 (stored anyway)
	l.markAcked([][]byte{evs[4]})           // 5: acked, but what lands is corrupted
	c := l.counts()
	if c.emitted != 6 || c.acked != 3 || c.dropped != 2 || c.resolved != 5 || c.ackCalls != 4 {
		t.Errorf("counts = %+v", c)
	}

	tl := l.newTally()
	corrupted := bytes.Replace(slices.Clone(evs[4]), []byte(`"type":"`), []byte(`"type":"X`), 1)
	for _, m := range [][]byte{evs[0], evs[1], evs[1], evs[3], corrupted, evs[5],
		g.Next() /* serial 7: never emitted */, []byte(`{"payload":{}}`)} {
		tl.add(m, false)
	}
	tl.add(evs[2], true) // a dead letter never counts as stored
	got := tl.verdict()
	want := verdict{Emitted: 6, Stored: 4, Lost: 1, Duplicates: 1, Dropped: 1, Unexpected: 2, Corrupted: 1,
		DeadLetter: 1, Messages: 9, LostAcked: 1, FirstLost: []int64{5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
	if line := got.line(); line != "chaos: emitted 6, stored 4, lost 1, duplicates 1, dropped by Symphony 1" {
		t.Errorf("line = %q", line)
	}
}

func TestLedgerRejectsSerialGaps(t *testing.T) {
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 1})
	evs := g.Mix(3)
	l := newLedger(3, 0)
	if err := l.recordEmitted([][]byte{evs[0], evs[2]}); err == nil {
		t.Error("a gap in the serials was accepted")
	}
	l = newLedger(1, 0)
	if err := l.recordEmitted(evs[:2]); err == nil {
		t.Error("more events than the ledger holds were accepted")
	}
}

func TestAckIDFromTail(t *testing.T) {
	for in, want := range map[string]string{
		`{"events":[{"id":"a"}],"ackId":"abc-_123"}`: "abc-_123",
		`..."ackId":"x"}`: "x",
		`{"events":[{"text":"\"ackId\":\"no\""}],"ackId":""}`: "",
		`{"events":[]}`: "",
	} {
		if got := ackIDFromTail([]byte(in)); got != want {
			t.Errorf("ackIDFromTail(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildPlan(t *testing.T) {
	o := options{kills: 12, cycles: 2, stalls: 1}
	plan := buildPlan(o)
	counts := map[action]int{}
	for _, a := range plan {
		counts[a]++
	}
	want := map[action]int{actKill: 12, actStall: 1}
	for _, a := range []action{actServerError, actTooMany, actReset, actTruncated, actTruncatedChunked,
		actNATSRestart, actSessionExpiry, actFeedExpiry} {
		want[a] = 2
	}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("plan counts (-want +got):\n%s", diff)
	}
	// Kills are spread: never more than two in a row with 12 kills among 29.
	if s := describeRuns(plan); strings.Contains(s, "KKK") {
		t.Errorf("kills bunched: %s", s)
	}
}

func describeRuns(plan []action) string {
	var b strings.Builder
	for _, a := range plan {
		if a == actKill {
			b.WriteByte('K')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

package main

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// ledger keeps one slot per emitted event, indexed by the serial the
// generator wrote into its payload: never by the bridge's Msg-Id, so that a
// Msg-Id collision shows up as a loss and an unstable Msg-Id as a duplicate.
// It is safe for concurrent use.
type ledger struct {
	mu       sync.Mutex
	base     int64    // serial of slot 0 is base+1
	hash     []uint64 // FNV-64a of the bytes the Agent was given
	flags    []uint8  // flagAcked, flagDropped
	emitted  int
	resolved int   // slots acked or dropped
	acked    int   // distinct slots acked
	dropped  int   // distinct slots dropped by a deliberate feed expiry
	ackCalls int64 // events seen in OnAck, repeats included
	foreign  int64 // events seen in OnAck or a drop that the ledger never emitted
}

const (
	flagAcked uint8 = 1 << iota
	flagDropped
)

func newLedger(capacity int, base int64) *ledger {
	return &ledger{base: base, hash: make([]uint64, capacity), flags: make([]uint8, capacity)}
}

// serialKey is how the generator's serial appears in an event's JSON. Inside
// a JSON string the quotes would be escaped, so the first unescaped match is
// the payload field itself.
var serialKey = []byte(`"` + symphonytest.SerialKey + `":`)

// serialOf extracts the generator's serial with a byte scan (the stream read
// at the end handles every message once, so json.Unmarshal per message would
// dominate a large run), falling back to the simulator's own decoder.
func serialOf(raw []byte) (int64, bool) {
	if i := bytes.Index(raw, serialKey); i >= 0 {
		j := i + len(serialKey)
		k := j
		for k < len(raw) && raw[k] >= '0' && raw[k] <= '9' {
			k++
		}
		if n, err := strconv.ParseInt(string(raw[j:k]), 10, 64); err == nil {
			return n, true
		}
	}
	return symphonytest.SerialOf(raw)
}

func fnv64(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// slot maps an event to its slot; ok is false for an event the ledger never
// emitted (no serial, or one outside the emitted range).
func (l *ledger) slot(raw []byte) (int, bool) {
	n, ok := serialOf(raw)
	if !ok {
		return 0, false
	}
	i := n - l.base - 1
	if i < 0 || i >= int64(l.emitted) {
		return 0, false
	}
	return int(i), true
}

// recordEmitted registers events about to be given to the Agent. Their
// serials must follow the last one recorded.
func (l *ledger) recordEmitted(events [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, raw := range events {
		n, ok := serialOf(raw)
		want := l.base + int64(l.emitted) + 1
		if !ok || n != want {
			return fmt.Errorf("ledger: event has serial %d (found %v), want %d", n, ok, want)
		}
		if l.emitted >= len(l.hash) {
			return fmt.Errorf("ledger: more than %d events emitted", len(l.hash))
		}
		l.hash[l.emitted] = fnv64(raw)
		l.emitted++
	}
	return nil
}

// markAcked records that the bridge acknowledged events (it claims they are
// stored); the stream read at the end checks the claim.
func (l *ledger) markAcked(events [][]byte) {
	l.mark(events, flagAcked)
}

// markDropped records events Symphony dropped with a feed the run expired
// on purpose.
func (l *ledger) markDropped(events [][]byte) {
	l.mark(events, flagDropped)
}

func (l *ledger) mark(events [][]byte, flag uint8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, raw := range events {
		if flag == flagAcked {
			l.ackCalls++
		}
		i, ok := l.slot(raw)
		if !ok {
			l.foreign++
			continue
		}
		old := l.flags[i]
		if old&flag != 0 {
			continue
		}
		l.flags[i] |= flag
		if old == 0 {
			l.resolved++
		}
		if flag == flagAcked {
			l.acked++
		} else {
			l.dropped++
		}
	}
}

// ledgerCounts is a snapshot for progress lines.
type ledgerCounts struct {
	emitted, resolved, acked, dropped int
	ackCalls, foreign                 int64
}

func (l *ledger) counts() ledgerCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ledgerCounts{emitted: l.emitted, resolved: l.resolved, acked: l.acked, dropped: l.dropped,
		ackCalls: l.ackCalls, foreign: l.foreign}
}

// verdict compares the emitted events with what the stream holds.
type verdict struct {
	Emitted    int // events given to the Agent
	Stored     int // distinct emitted events found in the stream
	Lost       int // emitted, not stored, and not dropped by Symphony
	Duplicates int // stream messages beyond the first for one event
	Dropped    int // not stored because Symphony dropped them with an expired feed
	Unexpected int // stream messages that are no emitted event (no or unknown serial)
	Corrupted  int // stream messages whose bytes differ from what the Agent was given
	DeadLetter int // messages on the dead-letter subject
	Messages   int // stream messages read
	LostAcked  int // lost events the bridge had acknowledged to the Agent
	FirstLost  []int64
}

// tally counts stream messages by serial.
type tally struct {
	l      *ledger
	stored []uint32
	v      verdict
}

func (l *ledger) newTally() *tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &tally{l: l, stored: make([]uint32, l.emitted)}
}

// add counts one stream message. A dead letter is counted apart and never as
// stored: an event that had to be dead-lettered did not land where it belongs.
func (t *tally) add(data []byte, deadLetter bool) {
	t.v.Messages++
	if deadLetter {
		t.v.DeadLetter++
		return
	}
	t.l.mu.Lock()
	i, ok := t.l.slot(data)
	var want uint64
	if ok {
		want = t.l.hash[i]
	}
	t.l.mu.Unlock()
	if !ok || i >= len(t.stored) {
		t.v.Unexpected++
		return
	}
	if fnv64(data) != want {
		t.v.Corrupted++
		return
	}
	t.stored[i]++
}

// verdict settles the counts: every emitted event is stored, dropped by
// Symphony (only if it was not stored anyway) or lost.
func (t *tally) verdict() verdict {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	v := t.v
	v.Emitted = len(t.stored)
	for i, n := range t.stored {
		switch {
		case n > 0:
			v.Stored++
			v.Duplicates += int(n) - 1
		case t.l.flags[i]&flagDropped != 0:
			v.Dropped++
		default:
			v.Lost++
			if t.l.flags[i]&flagAcked != 0 {
				v.LostAcked++
			}
			if len(v.FirstLost) < 10 {
				v.FirstLost = append(v.FirstLost, t.l.base+int64(i)+1)
			}
		}
	}
	return v
}

// line is the run's last line, in the format the issue fixes.
func (v verdict) line() string {
	return fmt.Sprintf("chaos: emitted %d, stored %d, lost %d, duplicates %d, dropped by Symphony %d",
		v.Emitted, v.Stored, v.Lost, v.Duplicates, v.Dropped)
}

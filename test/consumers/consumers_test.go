//go:build consumers

package consumers_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"
)

// events is how many events each run stores (the issue asks for 5 000 at
// least).
const events = 5000

// fleet starts the three Go workers and the C worker on the shared consumer
// and waits until each has a pull request waiting.
func (e *env) fleet() []*proc {
	e.t.Helper()
	goBin, cBin := workers(e.t)
	ws := []*proc{
		e.startWorker(goBin, "go-1", "--quiet"),
		e.startWorker(goBin, "go-2", "--quiet"),
		e.startWorker(goBin, "go-3", "--quiet"),
		e.startWorker(cBin, "c-1", "--quiet"),
	}
	e.waitPulls(len(ws))
	return ws
}

// ledger is who handled each stream sequence, from the --record files, each
// line checked against the Msg-Id JetStream holds at that sequence.
type ledger struct {
	by       map[uint64][]string // sequence -> workers that recorded it
	perProc  map[string]int
	lastOf   map[string]uint64 // each worker's last recorded sequence
	stored   uint64
	problems []string
}

func (e *env) ledger(ws []*proc, stored uint64) *ledger {
	e.t.Helper()
	ids := e.streamIDs(stored)
	l := &ledger{by: map[uint64][]string{}, perProc: map[string]int{}, lastOf: map[string]uint64{}, stored: stored}
	for _, w := range ws {
		for _, r := range records(e.t, w.record) {
			if want, ok := ids[r.seq]; !ok || want != r.msgID {
				l.problems = append(l.problems, fmt.Sprintf("%s recorded sequence %d with Msg-Id %q; the stream holds %q there", w.name, r.seq, r.msgID, want))
				continue
			}
			l.by[r.seq] = append(l.by[r.seq], w.name)
			l.perProc[w.name]++
			l.lastOf[w.name] = r.seq
		}
	}
	return l
}

// missing lists the stored sequences nobody handled.
func (l *ledger) missing() []uint64 {
	var out []uint64
	for seq := uint64(1); seq <= l.stored; seq++ {
		if len(l.by[seq]) == 0 {
			out = append(out, seq)
		}
	}
	return out
}

// twice lists the sequences handled more than once, with by whom.
func (l *ledger) twice() map[uint64][]string {
	out := map[uint64][]string{}
	for seq, who := range l.by {
		if len(who) > 1 {
			out[seq] = who
		}
	}
	return out
}

func (l *ledger) mustBeComplete(t *testing.T) {
	t.Helper()
	for _, p := range l.problems {
		t.Error(p)
	}
	if m := l.missing(); len(m) > 0 {
		t.Errorf("%d of %d stored events handled by no worker (first: %v)", len(m), l.stored, m[:min(len(m), 10)])
	}
}

// mustBeOnce fails the test for every event handled more than once.
func (l *ledger) mustBeOnce(t *testing.T) {
	t.Helper()
	if tw := l.twice(); len(tw) > 0 {
		t.Errorf("%d events handled twice, e.g. %v", len(tw), firstOf(tw))
	}
}

// finish waits until the stream holds every event and the shared consumer
// has had each acked, stops the workers still running (each must exit 0
// within 5 s), and returns the ledger, checked for completeness.
func (e *env) finish(ws []*proc) *ledger {
	e.t.Helper()
	e.waitStored(events)
	e.waitAllAcked(events)
	stopAll(e.t, ws)
	l := e.ledger(ws, events)
	l.mustBeComplete(e.t)
	return l
}

// stopAll SIGTERMs every worker still running: each must exit 0 within 5 s.
func stopAll(t *testing.T, ws []*proc) {
	t.Helper()
	for _, w := range ws {
		select {
		case <-w.done:
			continue // stopped or killed by the test already
		default:
		}
		took, err := w.term(t, 5*time.Second)
		if err != nil {
			t.Errorf("%s after SIGTERM: %v (took %s)", w.name, err, took.Round(time.Millisecond))
		}
	}
}

// TestWorkersShareOneDurable is the first run: three Go workers and one C
// worker share the durable; every event is handled once, by any of them,
// and each takes a fair part. Then the stream is replayed from a time before
// the run and from a sequence.
func TestWorkersShareOneDurable(t *testing.T) {
	e := newEnv(t)
	e.createConsumer()
	before := time.Now().Add(-time.Second)
	ws := e.fleet()

	e.emit(events)
	e.startBridge()
	l := e.finish(ws)
	l.mustBeOnce(t)
	for _, w := range ws {
		if n := l.perProc[w.name]; n*10 < events {
			t.Errorf("%s handled %d of %d events, under 10%%", w.name, n, events)
		}
	}
	if d := e.consumerInfo().Delivered.Consumer; d != events {
		t.Errorf("%d deliveries for %d events: the workers were given events again", d, events)
	}
	t.Logf("handled per worker: %v", l.perProc)

	t.Run("replay since a time", func(t *testing.T) {
		got := e.replay(t, "--since", before.UTC().Format(time.RFC3339Nano))
		wantInOrder(t, got, 1, events)
	})
	t.Run("replay from a sequence", func(t *testing.T) {
		got := e.replay(t, "--seq", strconv.Itoa(events-99))
		wantInOrder(t, got, events-99, events)
	})
	// The replays' ordered consumers are ephemeral (no Durable): only the
	// shared durable may remain once the replays have exited.
	t.Run("no consumer left behind", func(t *testing.T) {
		lister := e.stream.ListConsumers(t.Context())
		for info := range lister.Info() {
			if info.Name != durable {
				t.Errorf("consumer %q (durable %q) left behind", info.Name, info.Config.Durable)
			}
		}
		if err := lister.Err(); err != nil {
			t.Fatalf("list consumers: %v", err)
		}
	})
}

// replay runs the Go worker with the replay flags until it exits by itself
// (caught up) and returns what it recorded.
func (e *env) replay(t *testing.T, flags ...string) []entry {
	t.Helper()
	goBin, _ := workers(t)
	rec := fmt.Sprintf("%s/replay-%d.record", e.dir, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	args := append([]string{"--server", e.srv.URL(), "--stream", streamName, "--record", rec, "--quiet"}, flags...)
	out, err := exec.CommandContext(ctx, goBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go-worker %v: %v\n%s", flags, err, out)
	}
	return records(t, rec)
}

// wantInOrder checks a replay got exactly the sequences from..to, in stream
// order. (Its Msg-Ids are not compared: the ledger does that for the
// workers' records.)
func wantInOrder(t *testing.T, got []entry, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Fatalf("replay got %d events, want %d (sequences %d..%d)", len(got), to-from+1, from, to)
	}
	for i, r := range got {
		if want := uint64(from + i); r.seq != want {
			t.Fatalf("replay event %d is sequence %d, want %d: not in stream order", i, r.seq, want)
		}
	}
}

// TestKilledWorkerIsReplaced SIGKILLs a Go worker in the middle of the run:
// what it held un-acked is redelivered to the others after AckWait, nothing
// is lost, and only the event it recorded but had not yet acked may be
// handled twice.
func TestKilledWorkerIsReplaced(t *testing.T) {
	e := newEnv(t)
	e.createConsumer()
	ws := e.fleet()
	victim := ws[0]

	e.startBridge()
	e.emit(events / 2)
	waitRecorded(t, victim, 100)
	victim.kill()
	e.emit(events - events/2)
	l := e.finish(ws)
	// A worker records, then acks and waits for the server's confirmation,
	// one message at a time: at most its last recorded event was not acked
	// when it died.
	for seq, who := range l.twice() {
		if len(who) != 2 || !slices.Contains(who, victim.name) || seq != l.lastOf[victim.name] {
			t.Errorf("sequence %d handled by %v: only the killed worker's last recorded event (%d) may be handled twice",
				seq, who, l.lastOf[victim.name])
		}
	}
	// The consumer sequence counts every delivery, redeliveries included.
	redelivered := e.consumerInfo().Delivered.Consumer - events
	if redelivered == 0 {
		t.Errorf("no message was redelivered: the killed worker held nothing un-acked, so the test checked no redelivery")
	}
	t.Logf("killed %s after %d events; %d deliveries were redeliveries; handled per worker: %v",
		victim.name, l.perProc[victim.name], redelivered, l.perProc)
}

// TestTerminatedWorkerStopsCleanly SIGTERMs one worker (a Go one, then the
// C one) in the middle of a run: it exits 0 within 5 s, and nothing it
// acknowledged is delivered again.
func TestTerminatedWorkerStopsCleanly(t *testing.T) {
	for _, victimIdx := range []int{1, 3} {
		t.Run(fmt.Sprintf("worker %d", victimIdx), func(t *testing.T) {
			e := newEnv(t)
			e.createConsumer()
			ws := e.fleet()
			victim := ws[victimIdx]

			e.startBridge()
			e.emit(events / 2)
			waitRecorded(t, victim, 100)
			took, err := victim.term(t, 5*time.Second)
			if err != nil {
				t.Errorf("%s after SIGTERM: %v", victim.name, err)
			}
			t.Logf("%s exited %.0f ms after SIGTERM", victim.name, float64(took)/float64(time.Millisecond))
			e.emit(events - events/2)
			l := e.finish(ws)
			// A stopped worker finishes what is in hand and leaves the
			// rest un-acked: nothing it acked comes again.
			l.mustBeOnce(t)
			t.Logf("handled per worker: %v", l.perProc)
		})
	}
}

func firstOf(m map[uint64][]string) string {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for _, k := range keys[:min(len(keys), 5)] {
		out += fmt.Sprintf("%d:%v ", k, m[k])
	}
	return out
}

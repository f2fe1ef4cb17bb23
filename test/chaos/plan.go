package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// action is one step of the chaos plan.
type action int

const (
	actKill action = iota
	actServerError
	actTooMany
	actReset
	actTruncated
	actTruncatedChunked
	actNATSRestart
	actSessionExpiry
	actFeedExpiry
	actStall
)

var actionNames = map[action]string{
	actKill: "SIGKILL", actServerError: "5xx", actTooMany: "429", actReset: "connection reset",
	actTruncated: "truncated body", actTruncatedChunked: "truncated chunked body", actNATSRestart: "NATS restart",
	actSessionExpiry: "401 session expiry", actFeedExpiry: "400 feed expiry", actStall: "stall",
}

func (a action) String() string { return actionNames[a] }

// faultOf is the simulator fault an action injects on the next read.
var faultOf = map[action]symphonytest.FaultKind{
	actServerError: symphonytest.FaultServerError, actTooMany: symphonytest.FaultTooManyRequests,
	actReset: symphonytest.FaultReset, actTruncated: symphonytest.FaultTruncated,
	actTruncatedChunked: symphonytest.FaultTruncatedChunked,
}

// buildPlan interleaves the aimed kills evenly with rounds of every other
// fault, the stalls spread among them.
func buildPlan(o options) []action {
	round := []action{actServerError, actTooMany, actReset, actNATSRestart, actTruncated,
		actTruncatedChunked, actSessionExpiry, actFeedExpiry}
	var others []action
	for range o.cycles {
		others = append(others, round...)
	}
	for i := range o.stalls {
		pos := (i + 1) * len(others) / (o.stalls + 1)
		others = append(others[:pos], append([]action{actStall}, others[pos:]...)...)
	}
	total := len(others) + o.kills
	plan := make([]action, 0, total)
	k, j := 0, 0
	for i := range total {
		// Bresenham: kill number k goes where i crosses k*total/kills.
		if k < o.kills && (j >= len(others) || (i+1)*o.kills >= (k+1)*total) {
			plan = append(plan, actKill)
			k++
		} else {
			plan = append(plan, others[j])
			j++
		}
	}
	return plan
}

func describePlan(plan []action) string {
	counts := map[action]int{}
	for _, a := range plan {
		counts[a]++
	}
	var parts []string
	for a := actKill; a <= actStall; a++ {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d x %s", counts[a], a))
		}
	}
	return fmt.Sprintf("%d actions (%s)", len(plan), strings.Join(parts, ", "))
}

// chaos runs the plan, action i once the emitter has reached segment i+1.
func (r *runner) chaos(ctx context.Context) error {
	for i, a := range r.plan {
		target := (i + 1) * r.seg
		if err := poll(ctx, 20*time.Millisecond, func() bool { return r.led.counts().emitted >= target }); err != nil {
			return fmt.Errorf("waiting for event %d to run action %d/%d (%s): %w", target, i+1, len(r.plan), a, err)
		}
		if err := r.act(ctx, i, a); err != nil {
			return fmt.Errorf("action %d/%d (%s): %w", i+1, len(r.plan), a, err)
		}
		r.done.Add(1)
	}
	return nil
}

// recoverWithin bounds how long an action waits for the bridge to read a
// batch again before it notes a problem and goes on.
const recoverWithin = 60 * time.Second

func (r *runner) act(ctx context.Context, i int, a action) error {
	n := fmt.Sprintf("action %d/%d", i+1, len(r.plan))
	switch a {
	case actKill:
		return r.killAimed(ctx, n)
	case actNATSRestart:
		return r.restartNATS(ctx, n)
	case actSessionExpiry:
		return r.expireSessions(ctx, n)
	case actFeedExpiry:
		return r.expireFeed(ctx, n)
	case actStall:
		return r.stallRead(ctx, n)
	case actServerError:
		return r.fault(ctx, n, a, 3) // a burst: the backoff grows
	default:
		return r.fault(ctx, n, a, 1)
	}
}

// killAimed waits until the Agent hands out a batch, lets the bridge work on
// it for 0 to 10 ms (reading, publishing, waiting for publish-acks), SIGKILLs
// it, and checks with the Agent that the batch was still unacknowledged. A
// kill that came too late is retried, up to 5 times.
func (r *runner) killAimed(ctx context.Context, name string) error {
	for attempt := 1; attempt <= 5; attempt++ {
		r.ho.drain()
		ho, ok := r.nextHandout(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		br := r.br[r.br.leastKilled()]
		if ok {
			br = r.br[ho.instance]
		}
		name := name
		if len(r.br) > 1 {
			name += " (" + br.name + ")"
		}
		var delay time.Duration
		if ok {
			delay = time.Duration(r.rng.Int64N(int64(10*time.Millisecond) + 1))
			if err := sleep(ctx, delay); err != nil {
				return err
			}
		}
		killed := br.kill()
		// A request the bridge sent just before dying may still be served:
		// give it a moment before asking the Agent.
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		inFlight := false
		if ok {
			acked, known := r.agent.BatchAcked(ho.feedID, ho.ackID)
			inFlight = known && !acked
		}
		r.st.add(func(s *chaosStats) {
			s.kills++
			if inFlight {
				s.inFlightKills++
			}
			if !ok {
				s.problems = append(s.problems, name+": no batch handed out within "+recoverWithin.String())
			}
		})
		switch {
		case !ok:
			r.logf("%s: SIGKILL without aim: no batch handed out within %s", name, recoverWithin)
		case !killed:
			r.logf("%s: no bridge was running", name)
		case inFlight:
			r.logf("%s: SIGKILL %s after a batch was handed out, not yet acked", name, delay.Round(time.Millisecond))
		default:
			r.logf("%s: SIGKILL %s after a hand-out, but the batch was already acked; again", name, delay.Round(time.Millisecond))
		}
		if err := sleep(ctx, time.Duration(r.rng.Int64N(int64(300*time.Millisecond)))); err != nil {
			return err
		}
		if err := br.restart(); err != nil {
			return err
		}
		if inFlight || !ok {
			return nil
		}
	}
	return nil
}

// nextHandout waits for the next hand-out, up to recoverWithin. Among
// several instances it prefers, for up to a second, one to an instance killed
// least so far: the kills take turns when they can, and the run never waits
// for a hand-out to an instance whose feed happens to be empty.
func (r *runner) nextHandout(ctx context.Context) (handout, bool) {
	choosy := time.Now().Add(time.Second)
	for {
		ho, ok := r.awaitHandout(ctx)
		if !ok || len(r.br) == 1 || time.Now().After(choosy) || r.br.killedLeast(ho.instance) {
			return ho, ok
		}
	}
}

// awaitHandout waits for the next hand-out, up to recoverWithin. Among
// several instances, the others keep reading while an action waits for one
// of them, and may use up the events the emitter may run ahead: every 200 ms
// without a hand-out, it lets the emitter run one batch further (even beyond
// -events, up to the slack).
func (r *runner) awaitHandout(ctx context.Context) (handout, bool) {
	if len(r.br) == 1 {
		return r.ho.next(ctx, recoverWithin)
	}
	end := time.Now().Add(recoverWithin)
	for {
		ho, ok := r.ho.next(ctx, min(200*time.Millisecond, time.Until(end)))
		if ok || ctx.Err() != nil || !time.Now().Before(end) {
			return ho, ok
		}
		if r.extra.Load() < int64(r.slack()) {
			r.extra.Add(int64(r.o.maxBatch))
		}
	}
}

// waitBridgeReads waits until the bridge is handed a batch again, and
// records a problem when it is not within recoverWithin.
func (r *runner) waitBridgeReads(ctx context.Context, name string, since time.Time) (time.Duration, error) {
	r.ho.drain()
	_, ok := r.awaitHandout(ctx)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	d := time.Since(since)
	if !ok {
		r.st.add(func(s *chaosStats) {
			s.problems = append(s.problems, fmt.Sprintf("%s: the bridge read no batch within %s", name, recoverWithin))
		})
		r.logf("%s: the bridge read no batch within %s", name, recoverWithin)
	}
	return d, nil
}

// fault injects n faults of one kind on the next reads and waits until the
// bridge reads a batch again.
func (r *runner) fault(ctx context.Context, name string, a action, n int) error {
	kind := faultOf[a]
	before := r.agent.Stats().Faults[kind]
	kinds := make([]symphonytest.FaultKind, n)
	for i := range kinds {
		kinds[i] = kind
	}
	r.agent.InjectNext(kinds...)
	wctx, cancel := context.WithTimeout(ctx, recoverWithin)
	err := poll(wctx, 10*time.Millisecond, func() bool { return r.agent.Stats().Faults[kind] >= before+int64(n) })
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.st.add(func(s *chaosStats) {
			s.problems = append(s.problems, fmt.Sprintf("%s: %s was never served (no read within %s)", name, a, recoverWithin))
		})
		return nil
	}
	d, err := r.waitBridgeReads(ctx, name, time.Now())
	if err != nil {
		return err
	}
	r.st.add(func(s *chaosStats) {
		if s.faults == nil {
			s.faults = map[symphonytest.FaultKind]int{}
		}
		s.faults[kind] += n
	})
	r.logf("%s: %d x %s; the bridge read a batch again %s later", name, n, a, d.Round(time.Millisecond))
	return nil
}

// stallRead holds the next datafeed read for longer than the bridge's read
// timeout, as an Agent that accepted a request and went silent would, and
// checks that the bridge gave the read up by itself instead of waiting for
// the stall to end.
func (r *runner) stallRead(ctx context.Context, name string) error {
	r.ho.armStall()
	var res stallResult
	select {
	case res = <-r.ho.stalled:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.o.stall + recoverWithin):
		r.st.add(func(s *chaosStats) {
			s.problems = append(s.problems, fmt.Sprintf("%s: no read came to stall within %s", name, r.o.stall+recoverWithin))
		})
		return nil
	}
	r.st.add(func(s *chaosStats) {
		s.stalls = append(s.stalls, res.held)
		if !res.abandoned {
			s.problems = append(s.problems, fmt.Sprintf("%s: the bridge waited out a %s stall instead of timing out", name, r.o.stall))
		}
	})
	if res.abandoned {
		r.logf("%s: a read stalled; the bridge gave it up after %s", name, res.held.Round(time.Millisecond))
	} else {
		r.logf("%s: a read stalled for the whole %s and the bridge never gave up", name, r.o.stall)
	}
	return nil
}

// restartNATS stops the JetStream server for 0.5 to 2.5 s and starts it
// again on the same port and store.
func (r *runner) restartNATS(ctx context.Context, name string) error {
	down := 500*time.Millisecond + time.Duration(r.rng.Int64N(int64(2*time.Second)))
	if err := r.nats.restart(ctx, down); err != nil {
		return err
	}
	up := time.Now()
	before := r.led.counts().ackCalls
	wctx, cancel := context.WithTimeout(ctx, recoverWithin)
	err := poll(wctx, 20*time.Millisecond, func() bool { return r.led.counts().ackCalls > before })
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.st.add(func(s *chaosStats) {
		s.natsRestarts++
		if err != nil {
			s.problems = append(s.problems, fmt.Sprintf("%s: no batch acknowledged within %s of NATS coming back", name, recoverWithin))
		}
	})
	r.logf("%s: NATS down for %s; the bridge acked a batch again %s after it came back", name,
		down.Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	return nil
}

// expireSessions expires every token (the next call gets 401) and waits for
// the bridge to log in again and read.
func (r *runner) expireSessions(ctx context.Context, name string) error {
	before := r.agent.Stats().Auths
	start := time.Now()
	r.agent.ExpireSessions()
	wctx, cancel := context.WithTimeout(ctx, recoverWithin)
	err := poll(wctx, 10*time.Millisecond, func() bool { return r.agent.Stats().Auths > before })
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.st.add(func(s *chaosStats) {
			s.problems = append(s.problems, fmt.Sprintf("%s: the bridge did not log in again within %s", name, recoverWithin))
		})
	}
	d, err := r.waitBridgeReads(ctx, name, start)
	if err != nil {
		return err
	}
	r.st.add(func(s *chaosStats) { s.sessionExpiries++ })
	r.logf("%s: sessions expired; the bridge logged in again and read a batch %s later", name, d.Round(time.Millisecond))
	return nil
}

// expireFeed expires the bridge's feed as its 30-minute TTL would, noting
// exactly which events Symphony drops with it, and waits for the bridge to
// recreate a feed and read from it. No event is emitted in between (emitMu):
// one emitted while the bridge has no feed would reach nobody.
func (r *runner) expireFeed(ctx context.Context, name string) error {
	r.emitMu.Lock()
	var ids []string
	dropped := 0
	for _, f := range r.chaosFeeds() {
		evs, ok := r.agent.ExpireFeedDropping(f.ID)
		if !ok {
			continue
		}
		ids = append(ids, f.ID)
		dropped += len(evs)
		r.led.markDropped(evs)
	}
	r.emitMu.Unlock()
	start := time.Now()
	if err := r.waitFeed(ctx, recoverWithin); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.st.add(func(s *chaosStats) {
			s.problems = append(s.problems, fmt.Sprintf("%s: the bridge did not recreate its feed within %s", name, recoverWithin))
		})
	}
	d, err := r.waitBridgeReads(ctx, name, start)
	if err != nil {
		return err
	}
	r.st.add(func(s *chaosStats) { s.feedExpiries++ })
	r.logf("%s: feed %s expired, Symphony dropped %d events with it; the bridge read from a new feed %s later",
		name, strings.Join(ids, ","), dropped, d.Round(time.Millisecond))
	return nil
}

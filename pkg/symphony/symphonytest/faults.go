package symphonytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/internal/exempt"
)

// FaultKind is one kind of failure the Agent can inject.
type FaultKind string

// Fault kinds. Every injected fault is counted in Stats.Faults, carries the
// response header [FaultHeader] (when there is a response) and is exempt
// from the spec validator's checks.
const (
	// FaultServerError answers Faults.Status (500 by default).
	FaultServerError FaultKind = "server-error"
	// FaultTooManyRequests answers 429 with a Retry-After header.
	FaultTooManyRequests FaultKind = "too-many-requests"
	// FaultLatency delays the request by Faults.Latency, then serves it
	// normally (the response is not altered).
	FaultLatency FaultKind = "latency"
	// FaultReset closes the connection without answering, before the
	// request is processed (an ackId it carried is not applied).
	FaultReset FaultKind = "reset"
	// FaultTruncated processes the request (a read hands its events out
	// under a new ackId the client never sees: they come back after the
	// visibility timeout), announces the full Content-Length, sends half of
	// the body and closes the connection.
	FaultTruncated FaultKind = "truncated"
	// FaultTruncatedChunked is FaultTruncated with a chunked body cut before
	// its end.
	FaultTruncatedChunked FaultKind = "truncated-chunked"
	// FaultFeedExpired expires the feed being read and answers 400, as when
	// its TTL ran out (on other endpoints: 400 alone).
	FaultFeedExpired FaultKind = "feed-expired"
	// FaultSessionExpired expires every session (see
	// [Agent.ExpireSessions]) and answers 401. On a login endpoint a 401
	// means "credentials rejected": only target logins on purpose.
	FaultSessionExpired FaultKind = "session-expired"
)

// AllFaultKinds lists every fault kind.
func AllFaultKinds() []FaultKind {
	return []FaultKind{FaultServerError, FaultTooManyRequests, FaultLatency, FaultReset,
		FaultTruncated, FaultTruncatedChunked, FaultFeedExpired, FaultSessionExpired}
}

// Target is a group of endpoints faults can hit.
type Target string

// Fault targets.
const (
	TargetRead  Target = "read"  // datafeed v2, datahose and v1 reads
	TargetAuth  Target = "auth"  // the four login endpoints
	TargetAdmin Target = "admin" // list, create and delete feeds; v1 create
	TargetInfo  Target = "info"  // /agent/v1/info and /pod/v2/sessioninfo
)

// FaultHeader is set on every response produced or altered by fault
// injection, with the fault kind as value.
const FaultHeader = exempt.FaultHeader

// Faults is a fault-injection schedule. Each eligible request (see Targets)
// first takes the next kind from Next; when Next is empty, it draws a fault
// with probability Rate, its kind chosen uniformly from Kinds with a random
// source seeded by Seed (so a schedule is reproducible for a given request
// order).
type Faults struct {
	Rate  float64     // probability per eligible request, 0..1
	Kinds []FaultKind // kinds drawn when Rate triggers; empty: all but latency
	Next  []FaultKind // deterministic queue, consumed first
	Seed  int64
	// Targets are the endpoint groups faults hit; empty: reads only.
	Targets []Target
	// Latency is the delay of FaultLatency (default 500 ms).
	Latency time.Duration
	// RetryAfter is the Retry-After of FaultTooManyRequests, sent in whole
	// seconds, at least 1 (default 1 s).
	RetryAfter time.Duration
	// Status is the status of FaultServerError (default 500; 500..599).
	Status int
}

// Validate names the first invalid field.
func (f Faults) Validate() error {
	if f.Rate < 0 || f.Rate > 1 {
		//lint:ignore ST1005 the message starts with the name of the Go field at fault
		return fmt.Errorf("Rate: must be within [0, 1], got %v", f.Rate)
	}
	known := AllFaultKinds()
	for _, k := range append(slices.Clone(f.Kinds), f.Next...) {
		if !slices.Contains(known, k) {
			return fmt.Errorf("Kinds/Next: unknown fault kind %q", k)
		}
	}
	for _, t := range f.Targets {
		switch t {
		case TargetRead, TargetAuth, TargetAdmin, TargetInfo:
		default:
			//lint:ignore ST1005 the message starts with the name of the Go field at fault
			return fmt.Errorf("Targets: unknown target %q", t)
		}
	}
	if f.Latency < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("Latency/RetryAfter: must not be negative")
	}
	if f.Status != 0 && (f.Status < 500 || f.Status > 599) {
		//lint:ignore ST1005 the message starts with the name of the Go field at fault
		return fmt.Errorf("Status: must be a 5xx status, got %d", f.Status)
	}
	return nil
}

// faultState is the live schedule, guarded by Agent.fmu.
type faultState struct {
	f   Faults
	rng *rand.Rand
}

func (s *faultState) set(f Faults) {
	f.Kinds, f.Next, f.Targets = slices.Clone(f.Kinds), slices.Clone(f.Next), slices.Clone(f.Targets)
	if len(f.Kinds) == 0 {
		for _, k := range AllFaultKinds() {
			if k != FaultLatency {
				f.Kinds = append(f.Kinds, k)
			}
		}
	}
	if f.Latency == 0 {
		f.Latency = 500 * time.Millisecond
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.f = f
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x5eed))
}

func (s *faultState) draw(t Target) FaultKind {
	if s.rng == nil {
		return ""
	}
	targets := s.f.Targets
	if len(targets) == 0 {
		targets = []Target{TargetRead}
	}
	if !slices.Contains(targets, t) {
		return ""
	}
	if len(s.f.Next) > 0 {
		k := s.f.Next[0]
		s.f.Next = s.f.Next[1:]
		return k
	}
	if s.f.Rate > 0 && s.rng.Float64() < s.f.Rate {
		return s.f.Kinds[s.rng.IntN(len(s.f.Kinds))]
	}
	return ""
}

// SetFaults replaces the fault schedule at runtime (a zero Faults stops
// injection). It returns an error naming the invalid field, and then changes
// nothing.
func (a *Agent) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("symphonytest: Faults: %w", err)
	}
	a.fmu.Lock()
	a.faults.set(f)
	a.fmu.Unlock()
	return nil
}

// InjectNext appends kinds to the deterministic queue of the schedule: the
// next eligible requests get exactly these faults, in order.
func (a *Agent) InjectNext(kinds ...FaultKind) {
	a.fmu.Lock()
	defer a.fmu.Unlock()
	if a.faults.rng == nil {
		a.faults.set(Faults{})
	}
	a.faults.f.Next = append(a.faults.f.Next, kinds...)
}

// Faults returns the current schedule (with what is left of Next).
func (a *Agent) Faults() Faults {
	a.fmu.Lock()
	defer a.fmu.Unlock()
	f := a.faults.f
	f.Kinds, f.Next, f.Targets = slices.Clone(f.Kinds), slices.Clone(f.Next), slices.Clone(f.Targets)
	return f
}

// admit starts every authenticated endpoint the same way: draw the fault of
// this request, then check the session (and, with needKM, the key manager
// token). ok is false when the response was already written.
func (a *Agent) admit(w http.ResponseWriter, r *http.Request, t Target, needKM bool) (FaultKind, string, bool) {
	fault, done := a.beginFault(w, r, t)
	if done {
		return "", "", false
	}
	account, ok := a.authorize(w, r, needKM)
	return fault, account, ok
}

// beginFault draws the fault of this request. It returns the kind (empty
// for none) and whether the response was already written (or the request
// abandoned). FaultTruncated*, FaultFeedExpired on reads and FaultLatency
// are left to the caller.
func (a *Agent) beginFault(w http.ResponseWriter, r *http.Request, t Target) (FaultKind, bool) {
	a.fmu.Lock()
	kind := a.faults.draw(t)
	f := a.faults.f
	a.fmu.Unlock()
	if kind == "" {
		return "", false
	}
	a.mu.Lock()
	a.stats.Faults[kind]++
	a.mu.Unlock()
	if kind != FaultLatency {
		exempt.Mark(r, "injected fault: "+string(kind))
		w.Header().Set(FaultHeader, string(kind))
	}
	switch kind {
	case FaultLatency:
		if err := a.sleep(r.Context(), f.Latency); err != nil {
			if errors.Is(err, errClosed) {
				exempt.Mark(r, "simulator closed during injected latency")
				writeError(w, http.StatusServiceUnavailable, "simulator closing")
			}
			return kind, true // else the client went away: nothing to answer
		}
		return kind, false
	case FaultServerError:
		writeError(w, f.Status, "injected server error")
		return kind, true
	case FaultTooManyRequests:
		secs := max(1, int((f.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "too many requests")
		return kind, true
	case FaultReset:
		resetConn(w)
		return kind, true
	case FaultSessionExpired:
		a.ExpireSessions()
		writeError(w, http.StatusUnauthorized, "session expired")
		return kind, true
	case FaultFeedExpired:
		if t == TargetRead {
			return kind, false // the read handler expires its feed
		}
		writeError(w, http.StatusBadRequest, "injected client error")
		return kind, true
	default: // truncation: the caller writes
		return kind, false
	}
}

// sleep waits d unless ctx ends or the Agent closes.
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return errClosed
	}
}

// resetConn drops the connection without an answer. Over HTTP/1 it hijacks
// and closes the socket; where hijacking is impossible (HTTP/2) it aborts the
// handler the way net/http documents, which resets the stream.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// writeBody writes a successful response, cutting it short when the fault
// asks for a truncated body.
func writeBody(w http.ResponseWriter, fault FaultKind, status int, contentType string, body []byte) {
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	switch fault {
	case FaultTruncated:
		// Announce everything, send half: net/http then closes the
		// connection, and the client reads an unexpected EOF.
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2])
	case FaultTruncatedChunked:
		h.Del("Content-Length")
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2])
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			_ = conn.Close() // the terminating chunk is never sent
		} else {
			panic(http.ErrAbortHandler)
		}
	default:
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// handout is one non-empty batch the Agent answered a datafeed v2 read with.
type handout struct {
	feedID, ackID string
	instance      int // which bridge (index in the fleet) it went to
	at            time.Time
}

// handouts watches the Agent's responses (as HTTP middleware in front of the
// simulator) so the chaos loop can aim a kill at the moment a batch has just
// been delivered and cannot have been acknowledged yet. It also stalls reads
// on demand: holding the request here, rather than with the simulator's
// latency fault, tells exactly which read stalled and how long the bridge
// waited before giving it up, even with several readers polling at once.
type handouts struct {
	// hosts maps the Agent address each instance dials (the request's
	// Host) to its index; every other address counts as instance 0. Set
	// once the listeners exist (setHosts).
	hosts atomic.Pointer[map[string]int]
	ch    chan handout   // the latest hand-out; older ones are dropped
	reads []atomic.Int64 // datafeed v2 reads answered 200 (empty or not), per instance

	stallArmed atomic.Bool
	stallFor   time.Duration
	stalled    chan stallResult // one per stall
}

// stallResult is how a stalled read ended.
type stallResult struct {
	held      time.Duration
	abandoned bool // the client gave up (its read timeout) before the stall ended
}

// newHandouts watches n instances.
func newHandouts(stall time.Duration, n int) *handouts {
	return &handouts{ch: make(chan handout, 1), reads: make([]atomic.Int64, n),
		stallFor: stall, stalled: make(chan stallResult, 1)}
}

// setHosts names the Agent address ("127.0.0.1:port") each instance dials.
func (h *handouts) setHosts(hosts []string) {
	m := make(map[string]int, len(hosts))
	for i, host := range hosts {
		m[host] = i
	}
	h.hosts.Store(&m)
}

// instance is the index of the instance that sent r.
func (h *handouts) instance(r *http.Request) int {
	if m := h.hosts.Load(); m != nil {
		return (*m)[r.Host]
	}
	return 0
}

// read counts instance i's answered reads.
func (h *handouts) read(i int) int64 { return h.reads[i].Load() }

// armStall makes the next datafeed read stall.
func (h *handouts) armStall() { h.stallArmed.Store(true) }

// hold stalls r for stallFor or until the client goes away, and reports
// whether the request should still be served.
func (h *handouts) hold(r *http.Request) bool {
	start := time.Now()
	// net/http notices a client that hung up (and cancels r.Context()) only
	// once the request body has been read to its end: read it first.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		body = nil // the handler will answer the bad request
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t := time.NewTimer(h.stallFor)
	defer t.Stop()
	res := stallResult{}
	select {
	case <-t.C:
	case <-r.Context().Done():
		res.abandoned = true
	}
	res.held = time.Since(start)
	select {
	case h.stalled <- res:
	default: // nobody waits any more (the run is ending)
	}
	return !res.abandoned
}

const readPrefix, readSuffix = "/agent/v5/datafeeds/", "/read"

func (h *handouts) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.Method != http.MethodPost || !strings.HasPrefix(p, readPrefix) || !strings.HasSuffix(p, readSuffix) {
			next.ServeHTTP(w, r)
			return
		}
		if h.stallArmed.CompareAndSwap(true, false) && !h.hold(r) {
			return // the client gave up: there is nobody to answer
		}
		tw := &tailWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r)
		inst := h.instance(r)
		if tw.status != http.StatusOK || w.Header().Get(symphonytest.FaultHeader) != "" {
			return // an error or an injected fault
		}
		h.reads[inst].Add(1)
		if !bytes.HasPrefix(tw.head, []byte(`{"events":[{`)) {
			return // an empty batch
		}
		ack := ackIDFromTail(tw.tail)
		if ack == "" {
			return
		}
		ho := handout{feedID: strings.TrimSuffix(strings.TrimPrefix(p, readPrefix), readSuffix), ackID: ack,
			instance: inst, at: time.Now()}
		for { // keep only the newest
			select {
			case h.ch <- ho:
				return
			default:
			}
			select {
			case <-h.ch:
			default:
			}
		}
	})
}

// drain forgets hand-outs that happened before now.
func (h *handouts) drain() {
	select {
	case <-h.ch:
	default:
	}
}

// next waits for the next hand-out, up to within.
func (h *handouts) next(ctx context.Context, within time.Duration) (handout, bool) {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case ho := <-h.ch:
		return ho, true
	case <-t.C:
	case <-ctx.Done():
	}
	return handout{}, false
}

// ackIDFromTail finds the ackId at the end of a V5EventList the simulator
// wrote: {"events":[...],"ackId":"..."}.
func ackIDFromTail(tail []byte) string {
	const key = `"ackId":"`
	i := bytes.LastIndex(tail, []byte(key))
	if i < 0 {
		return ""
	}
	rest := tail[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return ""
	}
	return string(rest[:j])
}

// tailWriter records a response's status, first bytes and last bytes. It
// unwraps to the real writer so the simulator can still hijack the
// connection to inject resets and truncated bodies.
type tailWriter struct {
	http.ResponseWriter
	status int
	head   []byte
	tail   []byte
}

const tailKeep = 256

func (w *tailWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tailWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if len(w.head) < 16 {
		w.head = append(w.head, p[:min(len(p), 16-len(w.head))]...)
	}
	w.tail = append(w.tail, p[max(0, len(p)-tailKeep):]...)
	if len(w.tail) > tailKeep {
		w.tail = w.tail[len(w.tail)-tailKeep:]
	}
	return w.ResponseWriter.Write(p)
}

func (w *tailWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// serialFeed is an in-process Source with the Agent's acknowledgement rule:
// it emits events at a steady rate, each carrying a unique serial; a read
// hands out the due events (up to maxBatch) under a fresh ackId, and the
// batch counts as acknowledged only when a later read carries that ackId;
// until then every read gets the same batch again. Events keep coming during
// an outage, so a recovering bridge has a backlog to catch up on, as it
// would have with a real Agent. And, as the Agent may (delivery is at least
// once), every redeliverEvery-th batch is delivered once more, a second
// after its acknowledgement, under a new ackId: JetStream must drop those
// copies by their Msg-Id, whichever server leads the stream by then.
type serialFeed struct {
	pod            string
	rate           float64 // events per second
	maxBatch       int
	redeliverEvery int // 0 = never

	mu          sync.Mutex
	start       time.Time
	next        int             // next serial to hand out (serials start at 1)
	limit       int             // no serial above it is emitted; -1 = none set
	out         *symphony.Batch // handed out, not acknowledged yet
	outLast     int             // last serial of out
	outAgain    bool            // out is a delivery of acknowledged events
	again       []redelivery    // acknowledged batches to deliver again, oldest first
	acked       int             // every serial up to it is acknowledged
	batches     int
	redelivered int // events delivered again after their acknowledgement, and acknowledged again
}

// redeliverDelay is how long after its acknowledgement a batch is delivered
// again.
const redeliverDelay = time.Second

type redelivery struct {
	at     time.Time
	events []symphony.Event
}

func newSerialFeed(pod string, rate float64, maxBatch, redeliverEvery int) *serialFeed {
	return &serialFeed{pod: pod, rate: rate, maxBatch: maxBatch, redeliverEvery: redeliverEvery,
		start: time.Now(), next: 1, limit: -1}
}

func (f *serialFeed) Name() string { return "serial feed " + f.pod }

func (f *serialFeed) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	for {
		f.mu.Lock()
		if f.out != nil && ackID == f.out.AckID {
			f.acked = max(f.acked, f.outLast)
			switch {
			case f.outAgain:
				f.redelivered += len(f.out.Events)
			case f.redeliverEvery > 0 && f.batches%f.redeliverEvery == 0:
				f.again = append(f.again, redelivery{at: time.Now().Add(redeliverDelay), events: f.out.Events})
			}
			f.out = nil
		}
		if f.out != nil { // not acknowledged: the same batch again
			b := *f.out
			f.mu.Unlock()
			return b, nil
		}
		if len(f.again) > 0 && time.Now().After(f.again[0].at) {
			f.batches++
			b := symphony.Batch{AckID: fmt.Sprintf("%s-ack-%d", f.pod, f.batches), FeedID: f.pod + "_f", Events: f.again[0].events}
			f.out, f.outLast, f.outAgain, f.again = &b, f.acked, true, f.again[1:]
			f.mu.Unlock()
			return b, nil
		}
		due := int(f.rate * time.Since(f.start).Seconds())
		if f.limit >= 0 && due > f.limit {
			due = f.limit
		}
		if due >= f.next {
			last := min(due, f.next+f.maxBatch-1)
			f.batches++
			b := symphony.Batch{AckID: fmt.Sprintf("%s-ack-%d", f.pod, f.batches), FeedID: f.pod + "_f"}
			for s := f.next; s <= last; s++ {
				b.Events = append(b.Events, symphony.ParseEvent(serialEvent(f.pod, s)))
			}
			f.out, f.outLast, f.outAgain, f.next = &b, last, false, last+1
			f.mu.Unlock()
			return b, nil
		}
		f.mu.Unlock()
		// Nothing due: a long poll, checked every few milliseconds.
		select {
		case <-ctx.Done():
			return symphony.Batch{}, fmt.Errorf("read %s: %w", f.pod, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stopEmitting ends the emission: no serial after the ones already handed
// out. It returns how many were emitted.
func (f *serialFeed) stopEmitting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = f.next - 1
	return f.limit
}

// drained reports whether emission stopped and everything handed out,
// redeliveries included, is acknowledged.
func (f *serialFeed) drained() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limit < 0 || f.acked < f.limit || f.out != nil || len(f.again) > 0 {
		return fmt.Errorf("acknowledged up to %d of %d; a batch outstanding: %v", f.acked, f.limit, f.out != nil || len(f.again) > 0)
	}
	return nil
}

// emitted is the number of serials handed out at least once.
func (f *serialFeed) emitted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next - 1
}

// ackedUpTo is the highest serial whose batch was acknowledged.
func (f *serialFeed) ackedUpTo() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acked
}

// redeliveredEvents is the number of events delivered again after their
// acknowledgement (and acknowledged again).
func (f *serialFeed) redeliveredEvents() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.redelivered
}

// serialEvent is a MESSAGESENT event whose id, message id and text carry the
// serial: every one has its own Msg-Id.
func serialEvent(pod string, serial int) []byte {
	ts := int64(1767225600000) + int64(serial)
	return fmt.Appendf(nil, `{"id":"%s-%d","messageId":"%s-m%d","timestamp":%d,"type":"MESSAGESENT",`+
		`"initiator":{"user":{"userId":7078106482,"displayName":"Load Bot"}},"payload":{"messageSent":{"message":{`+
		`"messageId":"%s-m%d","timestamp":%d,"message":"<div data-format=\"PresentationML\" data-version=\"2.0\">serial %d</div>",`+
		`"data":"{}","stream":{"streamId":"lJwhJ0nYKh2V4xb_DdxKv3___o6YJ4ZRdA","streamType":"ROOM"}}}}}`,
		pod, serial, pod, serial, ts, pod, serial, ts, serial)
}

// serialOf extracts the serial from a stored event's payload.
func serialOf(pod string, data []byte) (int, error) {
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(ev.ID, pod+"-")
	if !ok {
		return 0, fmt.Errorf("event id %q is not one of pod %s", ev.ID, pod)
	}
	return strconv.Atoi(s)
}

// streamCount is what a stream holds, by serial.
type streamCount struct {
	msgs     int         // messages read
	bySerial map[int]int // serial -> copies stored
	foreign  int         // messages that are not serial events (dead letters...)
}

// countStream reads every message of the stream with an ordered consumer
// and counts the serial events of pod.
func countStream(ctx context.Context, js jetstream.JetStream, stream, pod string) (streamCount, error) {
	c := streamCount{bySerial: map[int]int{}}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return c, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return c, err
	}
	total := int(info.State.Msgs)
	if total == 0 {
		return c, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return c, err
	}
	for c.msgs < total {
		if err := ctx.Err(); err != nil {
			return c, fmt.Errorf("read %d of %d messages: %w", c.msgs, total, err)
		}
		batch, err := cons.Fetch(min(1000, total-c.msgs), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return c, err
		}
		for m := range batch.Messages() {
			c.msgs++
			if serial, err := serialOf(pod, m.Data()); err == nil {
				c.bySerial[serial]++
			} else {
				c.foreign++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return c, err
		}
	}
	return c, nil
}

// lostAndDuplicates compares the stream with the serials 1..sent.
func (c streamCount) lostAndDuplicates(sent int) (lost, dups int) {
	for s := 1; s <= sent; s++ {
		switch n := c.bySerial[s]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	for s, n := range c.bySerial {
		if s < 1 || s > sent {
			dups += n // stored but never sent: counted as extra copies
		}
	}
	return lost, dups
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/backoff"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// maxShrink bounds the halvings of a dead letter's size budget (after that
// the payload is empty; a refusal then is retried under backoff).
const maxShrink = 16

// deadLetterIDPrefix marks dead-letter Msg-Ids, so that a dead letter never
// shares an id with a normal message.
const deadLetterIDPrefix = "dl-"

// item is one event on its way into the stream.
type item struct {
	ev      *symphony.Event
	subject string    // the normal subject; "" for an undecodable event
	msg     *nats.Msg // what is published: the normal message or the dead letter
	msgID   string    // msg's Nats-Msg-Id
	dead    bool      // msg is a dead letter
	reason  string    // why it is a dead letter
	shrink  uint      // halvings of the dead-letter size budget after size rejections
	sent    bool      // msg was published once: publish a copy from now on
}

// ErrPermanent is wrapped by publish errors that retrying cannot fix; the
// event goes to the dead-letter subject instead.
var ErrPermanent = errors.New("permanent publish failure")

// errAckLost: the publish-ack did not come within PublishTimeout plus a grace
// period although the JetStream context should have timed it out (a context
// created without WithPublishAsyncTimeout).
var errAckLost = fmt.Errorf("no publish-ack in time: %w", jetstream.ErrAsyncPublishTimeout)

// storeBatch publishes every event and returns once each one is stored (a
// fresh or duplicate publish-ack, or stored as a dead letter). Transient
// failures are re-published, same Msg-Id, under a backoff capped at
// PublishRetryMax, for as long as it takes. It returns an error only when ctx
// ends first. A failing publish is recorded on r, the reader whose batch it
// is, until the batch is stored.
func (b *Bridge) storeBatch(ctx context.Context, log *slog.Logger, r *reader, events []symphony.Event) error {
	items, done, newest := b.prepare(ctx, events)
	retry := backoff.New(backoff.Config{
		MaxAttempts: -1, Multiplier: 2,
		Initial: min(50*time.Millisecond, b.cfg.PublishRetryMax),
		Max:     b.cfg.PublishRetryMax,
	})
	for len(items) > 0 {
		again, transient := b.publishRound(ctx, log, items)
		if err := ctx.Err(); err != nil {
			return err
		}
		if transient != nil {
			r.setPublishErr(transient)
			b.stats.publishRetries.Add(int64(len(again)))
			attempt := retry.Attempts() + 1
			level := slog.LevelDebug
			if attempt == 1 || attempt%10 == 0 { // an outage would log every few seconds
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "publish failed; retrying with the same Msg-Id", "err", transient,
				"events", len(again), "attempt", attempt)
			if err := retry.Wait(ctx, 0); err != nil {
				return err
			}
		}
		items = again // on no transient failure: only events just turned into dead letters
	}
	r.setPublishErr(nil)
	if b.cfg.Dedupe != nil {
		b.cfg.Dedupe.Mark(done...)
	}
	b.stats.storedUpTo(newest)
	return nil
}

// prepare maps the batch: undecodable events become dead letters, events the
// dedupe set has seen are skipped (counted as stored) before anything is
// built for them. It returns the items to publish, the ids to mark in the
// dedupe set once all are stored, and the batch's newest event timestamp
// (ms; 0 when none has one), found in this loop so that the lag costs the
// hot path one comparison per event.
func (b *Bridge) prepare(ctx context.Context, events []symphony.Event) (items []*item, done []string, newest int64) {
	items = make([]*item, 0, len(events))
	done = make([]string, 0, len(events))
	all := make([]item, len(events)) // one allocation for the batch
	for i := range events {
		ev := &events[i]
		newest = max(newest, ev.Timestamp)
		it := &all[i]
		it.ev = ev
		if ev.Err != nil {
			it.msgID = deadLetterID(ev, "")
		} else {
			it.msgID = symphony.MsgID(ev)
		}
		if b.cfg.Dedupe != nil && b.cfg.Dedupe.Seen(it.msgID) {
			b.stats.dedupeSkipped.Add(1)
			continue
		}
		if ev.Err != nil {
			b.toDeadLetter(ctx, it, ev.Err.Error())
		} else {
			v := subjects.FromEvent(ev, b.cfg.Pod, b.cfg.Source)
			it.subject = b.cfg.Subject.Subject(&v)
			it.msg = b.msgs.build(ev, it.subject, it.msgID)
		}
		items = append(items, it)
		done = append(done, it.msgID)
	}
	return items, done, newest
}

// publishRound publishes items (in chunks of MaxPending) and waits for every
// publish-ack. It returns the items to publish again (transient failures, and
// events just turned into dead letters) and the first transient error, nil
// when there was none.
func (b *Bridge) publishRound(ctx context.Context, log *slog.Logger, items []*item) (again []*item, transient error) {
	for start := 0; start < len(items); start += b.cfg.MaxPending {
		chunk := items[start:min(start+b.cfg.MaxPending, len(items))]
		futures := make([]jetstream.PubAckFuture, len(chunk))
		errs := make([]error, len(chunk))
		for i, it := range chunk {
			// A fresh copy for every attempt after the first: the client
			// may still read the previous attempt's message (its own
			// no-responders retry). The message carries its Nats-Msg-Id
			// header already (BuildMsg, toDeadLetter).
			m := it.msg
			if it.sent {
				m = copyMsg(m)
			}
			it.sent = true
			futures[i], errs[i] = b.js.PublishMsgAsync(m)
		}

		// The chunk's acks are overdue PublishTimeout plus a grace period
		// after its last publish; waiting then ends with errAckLost.
		wctx, cancel := context.WithTimeoutCause(ctx, b.cfg.PublishTimeout+time.Second, errAckLost)
		// Wait for the last publish-ack first. One connection's acks come
		// back in publish order, so once the last is in the loop below
		// takes the others without blocking; waiting for each in turn
		// woke this goroutine for every few acks (a futex wake-up each on
		// an otherwise idle CPU).
		last := len(chunk) - 1
		var lastAck *jetstream.PubAck
		if errs[last] == nil {
			lastAck, errs[last] = awaitAck(wctx, futures[last])
		}
		for i, it := range chunk {
			var ack *jetstream.PubAck
			err := errs[i]
			switch {
			case i == last:
				ack = lastAck
			case err == nil:
				ack, err = awaitAck(wctx, futures[i])
			}
			if ctx.Err() != nil {
				cancel()
				return nil, ctx.Err()
			}
			if err == nil && ack.Duplicate && ack.Sequence == 0 {
				// Seen when two identical ids raced in a cluster: not proof
				// the message is stored.
				err = fmt.Errorf("duplicate publish-ack without a sequence from stream %q", ack.Stream)
			}
			if err == nil {
				b.stored(log, it, futures[i].Msg(), ack)
				continue
			}
			if !isPermanent(err) {
				if transient == nil {
					transient = err
				}
				again = append(again, it)
				continue
			}
			// Permanent: this event cannot be stored as it is.
			if !it.dead {
				log.Warn("event refused by JetStream; sending it to the dead-letter subject",
					"err", err, "subject", it.subject, "msg_id", it.msgID)
				b.toDeadLetter(ctx, it, fmt.Sprintf("%v: %v", ErrPermanent, err))
				again = append(again, it)
				continue
			}
			if isSizeError(err) && it.shrink < maxShrink {
				// Our size estimate was wrong: cut the payload further.
				it.shrink++
				b.toDeadLetter(ctx, it, it.reason)
				again = append(again, it)
				continue
			}
			// A dead letter refused for another reason: never drop it, keep
			// trying (and keep the bridge not ready) until someone fixes it.
			if transient == nil {
				transient = fmt.Errorf("dead letter %s refused: %w", it.msgID, err)
			}
			again = append(again, it)
		}
		cancel()
	}
	return again, transient
}

// awaitAck waits for one future until ctx ends; it then returns
// context.Cause(ctx) (errAckLost when the chunk's deadline passed).
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	okc, errc := f.Ok(), f.Err()
	select { // a result already there wins over an expired deadline
	case ack := <-okc:
		return ack, nil
	case err := <-errc:
		return nil, err
	default:
	}
	select {
	case ack := <-okc:
		return ack, nil
	case err := <-errc:
		return nil, err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// stored books one publish-ack.
func (b *Bridge) stored(log *slog.Logger, it *item, msg *nats.Msg, ack *jetstream.PubAck) {
	switch {
	case it.dead:
		b.stats.deadLettered.Add(1)
		log.Warn("event stored on the dead-letter subject", "subject", msg.Subject,
			"msg_id", it.msgID, "reason", it.reason, "stream", ack.Stream, "seq", ack.Sequence)
	case ack.Duplicate:
		b.stats.duplicates.Add(1)
	default:
		b.stats.published.Add(1)
	}
	b.notifyStored(msg, ack)
}

// isPermanent reports whether retrying err cannot help: the message is over
// the server's max payload or the stream's max message size, it was sent to
// the wrong stream, or its subject is invalid. Everything else is transient
// (timeouts, disconnection, no responders, stalls, a closed or reconnecting
// connection, storage full, insufficient resources, 503s): retried.
func isPermanent(err error) bool {
	if errors.Is(err, nats.ErrBadSubject) || isSizeError(err) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStreamMismatch
}

// jsErrStreamMismatch is JetStream's "expected stream does not match".
const jsErrStreamMismatch jetstream.ErrorCode = 10060

func isSizeError(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// toDeadLetter turns it into a dead letter: published on the dead-letter
// subject, with the reason and the original subject in headers, its payload
// (the event's JSON) cut to fit the size limit, and the Msg-Id of
// [deadLetterID], so that a redelivery of the same event is deduplicated.
func (b *Bridge) toDeadLetter(ctx context.Context, it *item, reason string) {
	ev := it.ev
	v := subjects.FromEvent(ev, b.cfg.Pod, b.cfg.Source)
	subject := b.cfg.DeadLetter.Subject(&v)
	it.dead, it.reason = true, reason
	own := "" // the event's own Msg-Id, computed once for the id and the header
	if ev.Err == nil {
		own = symphony.MsgID(ev)
	}
	it.msgID = deadLetterID(ev, own)

	h := make(nats.Header, 10)
	h[jetstream.MsgIDHeader] = []string{it.msgID}
	h[HeaderDeadLetterReason] = []string{cleanHeader(truncateString(reason, 1024))}
	h[HeaderPod] = []string{cleanHeader(b.cfg.Pod)}
	h[HeaderSource] = []string{cleanHeader(b.cfg.Source)}
	h[HeaderOriginalSize] = []string{strconv.Itoa(len(ev.Raw))}
	if it.subject != "" {
		h[HeaderOriginalSubject] = []string{it.subject}
		h[HeaderOriginalMsgID] = []string{own}
	}
	if ev.Type != "" {
		h[HeaderEventType] = []string{cleanHeader(truncateString(ev.Type, 256))}
	}
	if ev.Timestamp != 0 {
		h[HeaderTimestamp] = []string{strconv.FormatInt(ev.Timestamp, 10)}
	}

	budget := b.deadLetterLimit(ctx, subject) >> it.shrink
	budget -= headerBytes(h) + len(HeaderTruncated) + len(HeaderContentType) + 64 // room for the last headers
	payload := ev.Raw
	if len(payload) > budget {
		payload = payload[:max(budget, 0)]
		h[HeaderTruncated] = []string{"true"}
	} else {
		h[HeaderContentType] = []string{contentTypeJSON}
	}
	it.msg = &nats.Msg{Subject: subject, Header: h, Data: payload}
	it.sent = false
}

// deadLetterID is the Msg-Id of ev's dead letter, prefixed so that it never
// equals a normal message's: for an event that decodes, own, its own Msg-Id
// ([symphony.MsgID]), which a redelivery re-serialised by the Agent keeps;
// for one that does not (own ""), a hash of its raw bytes, the only identity
// it has.
func deadLetterID(ev *symphony.Event, own string) string {
	if own == "" {
		return deadLetterIDPrefix + symphony.RawMsgID(ev.Raw)
	}
	return deadLetterIDPrefix + own
}

// deadLetterLimit is the size a dead letter must fit in: Config.MaxMsgBytes,
// else the server's max payload lowered to the dead-letter stream's
// MaxMsgSize. The server lookup is done once and cached.
func (b *Bridge) deadLetterLimit(ctx context.Context, subject string) int {
	if b.cfg.MaxMsgBytes > 0 {
		return b.cfg.MaxMsgBytes
	}
	if l := b.dlLimit.Load(); l > 0 {
		return int(l)
	}
	limit := int64(1 << 20) // the server's default max payload, until known
	known := false
	if b.nc != nil {
		if mp := b.nc.MaxPayload(); mp > 0 {
			limit, known = mp, true
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if name, err := b.js.StreamNameBySubject(lctx, subject); err == nil {
		if s, err := b.js.Stream(lctx, name); err == nil {
			if mx := int64(s.CachedInfo().Config.MaxMsgSize); mx > 0 && mx < limit {
				limit = mx
			}
		} else {
			known = false
		}
	} else {
		known = false
	}
	if known {
		b.dlLimit.Store(limit)
	}
	return int(limit)
}

func copyMsg(m *nats.Msg) *nats.Msg {
	h := make(nats.Header, len(m.Header))
	for k, v := range m.Header {
		h[k] = v
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

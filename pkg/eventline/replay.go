package eventline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Range selects the messages [Replay] reads.
type Range struct {
	// Subject filters the stream's subjects ("symphony.*.messagesent.>");
	// "" reads every subject.
	Subject string
	// Seq starts the replay at this stream sequence. It wins over Since.
	Seq uint64
	// Since starts the replay at the first message stored at or after it
	// (JetStream's storage time). Seq and Since both zero: the first message.
	Since time.Time
	// Count stops the replay after this many messages (0: no limit).
	Count int
	// Follow keeps the replay reading new messages until ctx ends. Without
	// it the replay stops at the last message the stream held when it began.
	Follow bool
}

// consumerIdle is how long the server keeps the replay's consumer without a
// pull request: the safety net when the process dies before it deletes the
// consumer itself. A live replay always has a pull request waiting.
const consumerIdle = time.Minute

// Replay hands fn, in stream order, the messages of the stream that r
// selects. It reads through an ordered consumer: an ephemeral server-side
// cursor that needs no acknowledgement and that Replay deletes when it
// returns, so no consumer is left on the stream (should the process die
// first, the server drops it after a minute without pulls).
//
// It returns nil when the range is read (its end, r.Count messages) or when
// ctx ends, which is how a follower stops; fn's error, unchanged, stops it
// too. It fails when the stream does not exist or the filter matches none of
// its subjects.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, r Range, fn func(jetstream.Msg) error) (err error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return stopped(ctx, fmt.Errorf("stream %s: %w", stream, err))
	}
	// The end: the stream's last message now. Messages of the filter are
	// a subset, so the replay also stops when the server says none of them
	// is pending (the last one may match another filter, or be gone).
	end := s.CachedInfo().State.LastSeq
	if !r.Follow && end == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: consumerIdle}
	if r.Subject != "" {
		cfg.FilterSubjects = []string{r.Subject}
	}
	switch {
	case r.Seq != 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.Seq
	case !r.Since.IsZero():
		since := r.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return stopped(ctx, fmt.Errorf("ordered consumer on %s: %w", stream, err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(100)) // creates the server-side consumer
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer func() { err = errors.Join(err, remove(ctx, s, it, cons)) }()
	if info := cons.CachedInfo(); !r.Follow && info != nil && info.NumPending == 0 {
		return nil // nothing stored from the start on
	}
	defer context.AfterFunc(ctx, it.Stop)()

	for n := 0; ; {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil // ctx ended
		}
		if err != nil {
			return fmt.Errorf("next message of %s: %w", stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		if !r.Follow && md.Sequence.Stream > end {
			return nil // stored after the replay began (a filter skipped past end)
		}
		if err := fn(msg); err != nil {
			return err
		}
		if n++; r.Count > 0 && n >= r.Count {
			return nil
		}
		if !r.Follow && (md.Sequence.Stream >= end || md.NumPending == 0) {
			return nil
		}
	}
}

// remove stops the iterator and deletes the consumer it reads, on a context
// of its own: a follower's ctx has ended by then, and the deletion is what
// leaves the stream as it was.
func remove(ctx context.Context, s jetstream.Stream, it jetstream.MessagesContext, cons jetstream.Consumer) error {
	it.Stop()
	info := cons.CachedInfo()
	if info == nil {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete the replay's consumer %s (the server drops it after %s idle): %w", info.Name, consumerIdle, err)
	}
	return nil
}

// stopped is err, or nil when err is only ctx ending before the replay
// began: a follower interrupted at any point stops as cleanly.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

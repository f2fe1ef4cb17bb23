package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/dedupe"
	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
)

func TestBridgeStoresEveryEventOnceWithHeaders(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	type want struct {
		raw     []byte
		subject string
	}
	var wants []want
	add := func(subject string, raw []byte) []byte {
		wants = append(wants, want{raw, subject})
		return raw
	}
	var b1, b2 [][]byte
	for i := range 20 {
		b1 = append(b1, add("symphony.acme.messagesent.room", messageSent(i, "lJwhJ0nYKh2V4xb_DdxKv3___o6YJ4ZRdA")))
	}
	// One action, one id, different affected users: all must land.
	b2 = append(b2,
		add("symphony.acme.userjoinedroom.room", userJoined("shared", 1)),
		add("symphony.acme.userjoinedroom.room", userJoined("shared", 2)),
		add("symphony.acme.connectionrequested.none", connectionRequested(1)),
		add("symphony.acme.instantmessagecreated.im", imCreated(1)), // no id, standard base64 stream id
		add("symphony.acme.futurething.none", unknownType(1)),
	)
	f := &feed{batches: []symphony.Batch{
		batch("a1", b1...),
		batch("a2"), // an empty batch: its ackId is adopted too
		batch("a3", b2...),
	}}
	f.onAck = checkStoredBeforeAck(t, e.check)

	cfg := testConfig(t)
	b, err := bridge.New(cfg, f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	var hookMu sync.Mutex
	var hooked []string
	b.OnStored(func(msg *nats.Msg, ack *jetstream.PubAck) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hooked = append(hooked, msg.Header.Get(jetstream.MsgIDHeader))
	})
	stop, _ := runBridge(t, b)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if f.Acked() < 3 {
			return fmt.Errorf("%d of 3 batches acknowledged", f.Acked())
		}
		return nil
	})
	natstest.WaitFor(t, 5*time.Second, func() error {
		if b.Ready() != nil {
			return b.Ready()
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got, want := f.Acks(), []string{"", "a1", "a2", "a3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ackIds sent = %q, want %q", got, want)
	}
	msgs := storedMsgs(t, e.check)
	if len(msgs) != len(wants) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(wants))
	}
	for i, m := range msgs {
		w := wants[i]
		ev := symphony.ParseEvent(w.raw)
		id := symphony.MsgID(&ev)
		if m.Subject != w.subject {
			t.Errorf("msg %d: subject %q, want %q", i, m.Subject, w.subject)
		}
		if !bytes.Equal(m.Data, w.raw) {
			t.Errorf("msg %d: payload differs from the event's bytes", i)
		}
		h := m.Header
		checks := map[string]string{
			jetstream.MsgIDHeader:          id,
			bridge.HeaderEventType:         ev.Type,
			bridge.HeaderPod:               testPod,
			bridge.HeaderSource:            "datafeed",
			bridge.HeaderTimestamp:         strconv.FormatInt(ev.Timestamp, 10),
			bridge.HeaderCESpecVersion:     "1.0",
			bridge.HeaderCEID:              id,
			bridge.HeaderCESource:          "symphony://acme",
			bridge.HeaderCEType:            "com.symphony.event." + strings.ToLower(ev.Type),
			bridge.HeaderCETime:            time.UnixMilli(ev.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"),
			bridge.HeaderCEDataContentType: "application/json",
			bridge.HeaderContentType:       "application/json",
			bridge.HeaderEventID:           ev.ID,
			bridge.HeaderStreamID:          ev.StreamID,
			bridge.HeaderStreamType:        ev.StreamType,
		}
		for k, v := range checks {
			if got := h.Get(k); got != v {
				t.Errorf("msg %d: header %s = %q, want %q", i, k, got, v)
			}
		}
		if ev.ID == "" {
			if _, ok := h[bridge.HeaderEventID]; ok {
				t.Errorf("msg %d: %s set for an event without id", i, bridge.HeaderEventID)
			}
		}
	}
	st := b.Stats()
	if st.Batches != 3 || st.EventsRead != int64(len(wants)) || st.Published != int64(len(wants)) ||
		st.Duplicates != 0 || st.DeadLettered != 0 || st.Stored() != int64(len(wants)) {
		t.Errorf("stats = %+v", st)
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	if len(hooked) != len(wants) {
		t.Errorf("OnStored called %d times, want %d", len(hooked), len(wants))
	}
}

func TestBridgeRedeliveryStoredOnce(t *testing.T) {
	for _, withDedupe := range []bool{false, true} {
		t.Run(fmt.Sprintf("dedupe=%v", withDedupe), func(t *testing.T) {
			e := setup(t, bridge.StreamConfig{})
			a, bb, c := messageSent(1, "s1"), messageSent(2, "s1"), messageSent(3, "s1")
			f := &feed{batches: []symphony.Batch{
				batch("a1", a, bb),
				batch("a2", bb, c, c), // bb redelivered, c twice in one batch
			}}
			f.onAck = checkStoredBeforeAck(t, e.check)
			cfg := testConfig(t)
			if withDedupe {
				cfg.Dedupe = dedupe.New(1000, time.Hour)
			}
			b, err := bridge.New(cfg, f, e.js)
			if err != nil {
				t.Fatal(err)
			}
			stop, _ := runBridge(t, b)
			natstest.WaitFor(t, 10*time.Second, func() error {
				if f.Acked() < 2 {
					return fmt.Errorf("%d of 2 batches acknowledged", f.Acked())
				}
				return nil
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if n := len(storedMsgs(t, e.check)); n != 3 {
				t.Fatalf("stream holds %d messages, want 3", n)
			}
			st := b.Stats()
			if st.Published != 3 || st.Stored() != 5 {
				t.Errorf("stats = %+v, want 3 published, 5 stored", st)
			}
			if withDedupe && st.DedupeSkipped != 1 {
				t.Errorf("DedupeSkipped = %d, want 1 (the redelivered event)", st.DedupeSkipped)
			}
			if !withDedupe && st.Duplicates != 2 {
				t.Errorf("Duplicates = %d, want 2", st.Duplicates)
			}
		})
	}
}

// A second bridge instance (a restart after a crash between publish and ack)
// gets the batch again: it lands once.
func TestBridgeRestartAfterCrashLandsOnce(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	raws := [][]byte{messageSent(1, "s"), messageSent(2, "s"), userJoined("x", 5)}
	for round := range 2 {
		f := &feed{batches: []symphony.Batch{batch("a1", raws...)}}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runBridge(t, b)
		// Wait until the batch is stored but not acknowledged: the crash.
		natstest.WaitFor(t, 10*time.Second, func() error {
			if s := b.Stats(); s.Stored() < 3 {
				return fmt.Errorf("stored %d of 3", s.Stored())
			}
			return nil
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if round == 1 && b.Stats().Duplicates != 3 {
			t.Errorf("after restart: %+v, want 3 duplicates", b.Stats())
		}
	}
	if n := len(storedMsgs(t, e.check)); n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
}

// JetStream goes away in the middle of the work: nothing is acknowledged,
// nothing is read further, the bridge is not ready; when the server is back
// (same port, same store) it catches up; nothing is lost or doubled.
func TestBridgeJetStreamOutage(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	var b1, b2 [][]byte
	for i := range 10 {
		b1 = append(b1, messageSent(i, "s"))
		b2 = append(b2, messageSent(100+i, "s"))
	}
	// Two events of batch 2 were stored by an earlier attempt that never got
	// to acknowledge (mid-batch): they must not be doubled.
	for _, raw := range b2[:2] {
		ev := symphony.ParseEvent(raw)
		if _, err := e.check.PublishMsg(t.Context(), bridge.BuildMsg(&ev, "symphony.acme.messagesent.room", testPod, "datafeed"),
			jetstream.WithMsgID(symphony.MsgID(&ev))); err != nil {
			t.Fatal(err)
		}
	}
	srv := e.srv
	var down sync.Once
	f := &feed{batches: []symphony.Batch{batch("a1", b1...), batch("a2", b2...)}}
	f.onAck = checkStoredBeforeAck(t, e.check)
	f.before = func(ctx context.Context, n int, ackID string) error {
		if ackID == "a1" {
			down.Do(srv.Shutdown) // batch 2 will meet a dead server
		}
		return nil
	}
	cfg := testConfig(t)
	b, err := bridge.New(cfg, f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runBridge(t, b)

	natstest.WaitFor(t, 10*time.Second, func() error {
		if s := b.Stats(); s.PublishRetries < 5 {
			return fmt.Errorf("%d publish retries so far", s.PublishRetries)
		}
		return nil
	})
	if err := b.Ready(); err == nil {
		t.Error("Ready() = nil while JetStream is down")
	}
	readsDuringOutage := f.Reads()
	if got := f.Acks(); strings.Join(got, ",") != ",a1" {
		t.Fatalf("ackIds during the outage = %q, want [\"\" a1]", got)
	}

	srv = natstest.RestartServer(t, srv)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if f.Acked() < 2 {
			return fmt.Errorf("%d of 2 batches acknowledged", f.Acked())
		}
		return nil
	})
	natstest.WaitFor(t, 5*time.Second, b.Ready)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if readsDuringOutage != 2 {
		t.Errorf("reads while JetStream was down = %d, want 2 (no read ahead of the acks)", readsDuringOutage)
	}
	msgs := storedMsgs(t, e.check)
	if len(msgs) != 20 {
		t.Fatalf("stream holds %d messages, want 20", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("Msg-Id %s stored twice", id)
		}
		seen[id] = true
	}
	if st := b.Stats(); st.Duplicates < 2 {
		t.Errorf("stats = %+v, want at least 2 duplicates (the events stored before the outage)", st)
	}
}

func TestBridgeDeadLetters(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	big := bigEvent(2 << 20) // over the server's 1 MiB max payload
	invalid := []byte(`{"id":"broken","timestamp":1,"payload":{}}`)
	ok1, ok2 := messageSent(1, "s"), messageSent(2, "s")
	f := &feed{batches: []symphony.Batch{batch("a1", ok1, big, invalid, ok2)}}
	f.onAck = checkStoredBeforeAck(t, e.check)
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	runUntilAcked(t, b, f, 1)

	msgs := storedMsgs(t, e.check)
	var dead []*jetstream.RawStreamMsg
	normal := 0
	for _, m := range msgs {
		if m.Subject == deadSubj {
			dead = append(dead, m)
		} else {
			normal++
		}
	}
	if normal != 2 || len(dead) != 2 {
		t.Fatalf("stored %d normal and %d dead letters, want 2 and 2", normal, len(dead))
	}
	for _, m := range dead {
		h := m.Header
		reason := h.Get(bridge.HeaderDeadLetterReason)
		switch {
		case bytes.HasPrefix(big, m.Data) && len(m.Data) < len(big):
			if !strings.Contains(reason, "maximum payload") {
				t.Errorf("oversize dead letter: reason %q", reason)
			}
			if h.Get(bridge.HeaderTruncated) != "true" || h.Get(bridge.HeaderOriginalSize) != strconv.Itoa(len(big)) {
				t.Errorf("oversize dead letter headers: %v", h)
			}
			if h.Get(bridge.HeaderOriginalSubject) != "symphony.acme.messagesent.room" {
				t.Errorf("original subject = %q", h.Get(bridge.HeaderOriginalSubject))
			}
			bigEv := symphony.ParseEvent(big)
			if want := "dl-" + symphony.MsgID(&bigEv); h.Get(jetstream.MsgIDHeader) != want {
				t.Errorf("dead letter Msg-Id = %q, want %q (the event's own, prefixed)", h.Get(jetstream.MsgIDHeader), want)
			}
			if len(m.Data) < 512<<10 {
				t.Errorf("truncated to %d bytes; expected close to 1 MiB", len(m.Data))
			}
		case bytes.Equal(m.Data, invalid):
			if !strings.Contains(reason, "invalid event") {
				t.Errorf("invalid event dead letter: reason %q", reason)
			}
			if h.Get(bridge.HeaderContentType) != "application/json" || h.Get(bridge.HeaderTruncated) != "" {
				t.Errorf("invalid event dead letter headers: %v", h)
			}
			if want := "dl-" + symphony.RawMsgID(invalid); h.Get(jetstream.MsgIDHeader) != want {
				t.Errorf("undecodable dead letter Msg-Id = %q, want %q (its raw bytes' hash)", h.Get(jetstream.MsgIDHeader), want)
			}
		default:
			t.Errorf("unexpected dead letter %q (%d bytes)", reason, len(m.Data))
		}
	}
	if st := b.Stats(); st.DeadLettered != 2 || st.Published != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// An event that decodes but is dead-lettered (here: over the max payload)
// and redelivered re-serialised (other key order and whitespace, as an Agent
// may) keeps its dead letter's Msg-Id, its own prefixed "dl-": JetStream
// stores it once.
func TestBridgeDeadLetterRedeliveryReserialised(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	big := bigEvent(2 << 20)
	var fields map[string]any
	d := json.NewDecoder(bytes.NewReader(big))
	d.UseNumber()
	if err := d.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(fields, "", "  ") // keys sorted, indented
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, big) {
		t.Fatal("the redelivery is not re-serialised")
	}
	f := &feed{batches: []symphony.Batch{batch("a1", big), batch("a2", again)}}
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ids []string
	b.OnStored(func(m *nats.Msg, _ *jetstream.PubAck) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	})
	runUntilAcked(t, b, f, 2)

	ev := symphony.ParseEvent(big)
	want := "dl-" + symphony.MsgID(&ev)
	natstest.WaitFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) < 2 {
			return fmt.Errorf("%d messages stored", len(ids))
		}
		return nil
	})
	mu.Lock()
	if len(ids) != 2 || ids[0] != want || ids[1] != want {
		t.Errorf("dead letter Msg-Ids = %q, want %q twice", ids, want)
	}
	mu.Unlock()
	if msgs := storedMsgs(t, e.check); len(msgs) != 1 || msgs[0].Subject != deadSubj {
		t.Errorf("stream holds %d messages, want the one dead letter", len(msgs))
	}
	if st := b.Stats(); st.DeadLettered != 2 {
		t.Errorf("stats = %+v, want both copies dead-lettered", st)
	}
}

// The last event of a chunk is waited for first (publishRound); when its
// publish fails at once (over the max payload, refused by the client), the
// others are still waited for one by one and the dead letter is stored
// before the batch is acknowledged.
func TestBridgeDeadLetterLastInBatch(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	f := &feed{batches: []symphony.Batch{batch("a1", messageSent(1, "s"), messageSent(2, "s"), bigEvent(2<<20))}}
	f.onAck = checkStoredBeforeAck(t, e.check)
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	runUntilAcked(t, b, f, 1)
	dead := 0
	for _, m := range storedMsgs(t, e.check) {
		if m.Subject == deadSubj {
			dead++
		}
	}
	if st := b.Stats(); dead != 1 || st.DeadLettered != 1 || st.Published != 2 {
		t.Errorf("%d dead letters stored; stats = %+v, want 2 published and 1 dead letter", dead, st)
	}
}

// A stream with a small MaxMsgSize refuses the event (API error 10054); the
// dead letter is cut to the stream's limit.
func TestBridgeDeadLetterStreamMaxMsgSize(t *testing.T) {
	e := setup(t, bridge.StreamConfig{MaxMsgSize: 64 << 10})
	big := bigEvent(100 << 10)
	f := &feed{batches: []symphony.Batch{batch("a1", big, messageSent(1, "s"))}}
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	runUntilAcked(t, b, f, 1)
	msgs := storedMsgs(t, e.check)
	var dl *jetstream.RawStreamMsg
	for _, m := range msgs {
		if m.Subject == deadSubj {
			dl = m
		}
	}
	if len(msgs) != 2 || dl == nil {
		t.Fatalf("stored %d messages, want the event and one dead letter", len(msgs))
	}
	if !strings.Contains(dl.Header.Get(bridge.HeaderDeadLetterReason), "10054") {
		t.Errorf("reason = %q, want the 10054 API error", dl.Header.Get(bridge.HeaderDeadLetterReason))
	}
	if len(dl.Data) >= 64<<10 || !bytes.HasPrefix(big, dl.Data) {
		t.Errorf("dead letter payload %d bytes, want a prefix of the event under 64 KiB", len(dl.Data))
	}
}

func bigEvent(size int) []byte {
	pad := strings.Repeat("x", size)
	return fmt.Appendf(nil, `{"id":"big","timestamp":%d,"type":"MESSAGESENT","payload":{"messageSent":{"message":`+
		`{"messageId":"mbig","message":"%s","stream":{"streamId":"s","streamType":"ROOM"}}}}}`, baseTS, pad)
}

func TestBridgeCancelMidBatchDoesNotAdvance(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	srv := e.srv
	f := &feed{batches: []symphony.Batch{batch("a1", messageSent(1, "s")), batch("a2", messageSent(2, "s"))}}
	f.before = func(ctx context.Context, n int, ackID string) error {
		if ackID == "a1" {
			srv.Shutdown() // batch 2 cannot be stored
		}
		return nil
	}
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runBridge(t, b)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if b.Stats().PublishRetries == 0 {
			return errors.New("no publish retry yet")
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if got := f.Acks(); strings.Join(got, ",") != ",a1" {
		t.Errorf("ackIds = %q: a2 must not be sent", got)
	}
	if err := b.Ready(); err == nil {
		t.Error("Ready() = nil after Run returned")
	}
}

func TestBridgeReadErrors(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})

	t.Run("fatal stops Run", func(t *testing.T) {
		f := &feed{before: func(context.Context, int, string) error {
			return fmt.Errorf("login: %w", symphony.ErrAuthRejected)
		}}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Run(t.Context())
		if !errors.Is(err, symphony.ErrAuthRejected) {
			t.Fatalf("Run = %v, want ErrAuthRejected", err)
		}
		if f.Reads() != 1 {
			t.Errorf("reads = %d, want 1", f.Reads())
		}
	})

	t.Run("retries exhausted stops Run", func(t *testing.T) {
		f := &feed{before: func(context.Context, int, string) error {
			return &symphony.APIError{Op: "read datafeed", StatusCode: 503}
		}}
		cfg := testConfig(t)
		cfg.Retry.MaxAttempts = 2
		b, err := bridge.New(cfg, f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Run(t.Context())
		var apiErr *symphony.APIError
		if !errors.Is(err, symphony.ErrRetriesExhausted) || !errors.As(err, &apiErr) {
			t.Fatalf("Run = %v, want ErrRetriesExhausted with the APIError", err)
		}
		if f.Reads() != 2 {
			t.Errorf("reads = %d, want 2", f.Reads())
		}
	})

	t.Run("a cancellation that is not the bridge's own is retried", func(t *testing.T) {
		f := &feed{batches: []symphony.Batch{batch("a1", messageSent(1, "r"))}}
		f.before = func(_ context.Context, n int, _ string) error {
			if n == 0 {
				return fmt.Errorf("read datafeed: %w", context.Canceled)
			}
			return nil
		}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		runUntilAcked(t, b, f, 1)
		if st := b.Stats(); st.Published != 1 {
			t.Errorf("stats = %+v, want the batch stored after the retry", st)
		}
	})

	t.Run("slow retry is no busy loop and reports unready", func(t *testing.T) {
		f := &feed{before: func(context.Context, int, string) error {
			return &symphony.APIError{Op: "read datafeed", StatusCode: 403}
		}}
		cfg := testConfig(t)
		cfg.SlowRetry = 100 * time.Millisecond
		b, err := bridge.New(cfg, f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runBridge(t, b)
		natstest.WaitFor(t, 5*time.Second, func() error {
			if f.Reads() < 4 {
				return fmt.Errorf("%d reads", f.Reads())
			}
			return nil
		})
		if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "refuses") {
			t.Errorf("Ready() = %v, want the refusal", err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		times := f.Times()
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < cfg.SlowRetry {
				t.Errorf("read %d came %s after the previous one, want at least %s", i, gap, cfg.SlowRetry)
			}
		}
	})

	t.Run("unready after failures, ready after recovery, same ackId resent", func(t *testing.T) {
		release := make(chan struct{})
		f := &feed{batches: []symphony.Batch{batch("a1", messageSent(1, "r")), batch("a2", messageSent(2, "r"))}}
		f.before = func(ctx context.Context, n int, ackID string) error {
			switch {
			case n >= 1 && n <= 3: // three failures after the first batch
				return &symphony.APIError{Op: "read datafeed", StatusCode: 502}
			case n == 4:
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runBridge(t, b)
		natstest.WaitFor(t, 5*time.Second, func() error {
			if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "3 consecutive read failures") {
				return fmt.Errorf("Ready() = %v", err)
			}
			return nil
		})
		close(release)
		natstest.WaitFor(t, 5*time.Second, func() error {
			if f.Acked() < 2 {
				return errors.New("batches not acknowledged")
			}
			return b.Ready()
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := []string{"", "a1", "a1", "a1", "a1", "a2"}
		if got := f.Acks(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("ackIds = %q, want %q", got, want)
		}
		if st := b.Stats(); st.ReadErrors != 3 {
			t.Errorf("ReadErrors = %d, want 3", st.ReadErrors)
		}
	})

	t.Run("Retry-After is the minimum wait", func(t *testing.T) {
		f := &feed{batches: []symphony.Batch{batch("a1")}}
		f.before = func(_ context.Context, n int, _ string) error {
			if n == 0 {
				return &symphony.APIError{Op: "read datafeed", StatusCode: 429, RetryAfter: 150 * time.Millisecond}
			}
			return nil
		}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runBridge(t, b)
		natstest.WaitFor(t, 5*time.Second, func() error {
			if f.Reads() < 2 {
				return errors.New("no second read")
			}
			return nil
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if times := f.Times(); times[1].Sub(times[0]) < 150*time.Millisecond {
			t.Errorf("second read %s after a 429 with Retry-After 150ms", times[1].Sub(times[0]))
		}
	})

	t.Run("feed recreation is counted", func(t *testing.T) {
		re := batch("n1", messageSent(1, "x"))
		re.FeedRecreated = true
		f := &feed{batches: []symphony.Batch{re}}
		b, err := bridge.New(testConfig(t), f, e.js)
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runBridge(t, b)
		natstest.WaitFor(t, 5*time.Second, func() error {
			if b.Stats().FeedRecreations != 1 || f.Reads() < 2 {
				return fmt.Errorf("stats %+v", b.Stats())
			}
			return nil
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBridgeRunTwiceAndNotRunning(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	b, err := bridge.New(testConfig(t), &feed{}, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil {
		t.Error("Ready() = nil before Run")
	}
	stop, _ := runBridge(t, b)
	natstest.WaitFor(t, 5*time.Second, b.Ready)
	if err := b.Run(t.Context()); !errors.Is(err, bridge.ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := testConfig(t)
	tests := []struct {
		name   string
		change func(*bridge.Config)
		field  string
	}{
		{"ok", func(*bridge.Config) {}, ""},
		{"no pod", func(c *bridge.Config) { c.Pod = "" }, "bridge: Config.Pod"},
		{"bad source", func(c *bridge.Config) { c.Source = "v1" }, "bridge: Config.Source"},
		{"no subject", func(c *bridge.Config) { c.Subject = nil }, "bridge: Config.Subject"},
		{"no dead letter", func(c *bridge.Config) { c.DeadLetter = nil }, "bridge: Config.DeadLetter"},
		{"negative timeout", func(c *bridge.Config) { c.PublishTimeout = -1 }, "bridge: Config.PublishTimeout"},
		{"bad retry", func(c *bridge.Config) { c.Retry.MaxAttempts = -5 }, "bridge: Config.Retry.MaxAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.field) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
	two := base
	two.Retry.MaxAttempts, two.Retry.Multiplier = -5, 0.5
	if err := two.Validate(); err == nil || !strings.Contains(err.Error(), "bridge: Config.Retry.MaxAttempts") ||
		!strings.Contains(err.Error(), "bridge: Config.Retry.Multiplier") {
		t.Errorf("Validate() with two retry problems = %v, want each named with its prefix", err)
	}
	var zero bridge.Config
	zero.Pod, zero.Source, zero.Subject, zero.DeadLetter = "p", "datahose", base.Subject, base.DeadLetter
	if err := zero.Validate(); err != nil {
		t.Fatal(err)
	}
	if zero.PublishTimeout != bridge.DefaultPublishTimeout || zero.MaxPending != bridge.DefaultMaxPending ||
		zero.Retry != symphony.DefaultRetry || zero.SlowRetry != bridge.DefaultSlowRetry ||
		zero.UnhealthyAfter != bridge.DefaultUnhealthyAfter || zero.Logger == nil {
		t.Errorf("defaults not applied: %+v", zero)
	}
}

// TestBridgeNewestStored: Stats.NewestStored is the newest Symphony
// timestamp among the events stored (zero before any), not the last one
// seen: a later batch of older events does not lower it.
func TestBridgeNewestStored(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	f := &feed{batches: []symphony.Batch{
		batch("a1", messageSent(5, "s1"), messageSent(9, "s1"), messageSent(2, "s1")),
		batch("a2", messageSent(3, "s1"), userJoined("j1", 5)), // older than ev9
	}}
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().NewestStored; !got.IsZero() {
		t.Errorf("NewestStored before any event = %s, want the zero time", got)
	}
	runUntilAcked(t, b, f, 2)

	var want int64
	for _, bt := range f.batches {
		for _, ev := range bt.Events {
			want = max(want, ev.Timestamp)
		}
	}
	if want != baseTS+9 {
		t.Fatalf("test events: newest timestamp %d, want %d", want, baseTS+9)
	}
	st := b.Stats()
	if !st.NewestStored.Equal(time.UnixMilli(want)) {
		t.Errorf("NewestStored = %s, want %s (the newest stored event)", st.NewestStored, time.UnixMilli(want))
	}
	if st.Stored() != 5 {
		t.Errorf("stats = %+v, want 5 stored", st)
	}
}

package component_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// stdBase64StreamID matches a stream id written in standard base64.
var stdBase64StreamID = regexp.MustCompile(`"streamId":"[^"]*[+/=][^"]*"`)

// checkMessage compares one stored message with the event the Agent sent:
// subject, every header, and the payload byte for byte. The expectations are
// spelled out here rather than taken from pkg/bridge, so that a change of
// the published format fails this test.
func checkMessage(t *testing.T, m storedMsg, raw []byte, source string) {
	t.Helper()
	ev := symphony.ParseEvent(raw)
	if ev.Err != nil {
		t.Fatalf("test event does not parse: %v: %s", ev.Err, raw)
	}
	serial := serialOf(t, raw)
	streamType := "none"
	if ev.HasStream {
		streamType = "unknown"
		if ev.StreamType != "" {
			streamType = strings.ToLower(ev.StreamType)
		}
	}
	if want := "symphony." + pod + "." + strings.ToLower(ev.Type) + "." + streamType; m.subject != want {
		t.Errorf("serial %d (%s): subject %q, want %q", serial, ev.Type, m.subject, want)
	}
	if !bytes.Equal(m.data, raw) {
		t.Errorf("serial %d (%s): payload differs from what the Agent sent:\n got %s\nwant %s", serial, ev.Type, m.data, raw)
	}
	msgID := symphony.MsgID(&ev)
	want := map[string]string{
		"Nats-Msg-Id":          msgID,
		"Symphony-Event-Id":    ev.ID,
		"Symphony-Event-Type":  ev.Type,
		"Symphony-Stream-Id":   "",
		"Symphony-Stream-Type": ev.StreamType,
		"Symphony-Timestamp":   strconv.FormatInt(ev.Timestamp, 10),
		"Symphony-Pod":         pod,
		"Symphony-Source":      source,
		"ce-specversion":       "1.0",
		"ce-id":                msgID,
		"ce-source":            "symphony://" + pod,
		"ce-type":              "com.symphony.event." + strings.ToLower(ev.Type),
		"ce-time":              time.UnixMilli(ev.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"),
		"ce-datacontenttype":   "application/json",
		"content-type":         "application/json",
	}
	if ev.HasStream {
		want["Symphony-Stream-Id"] = ev.StreamID
		if strings.ContainsAny(ev.StreamID, "+/=") {
			t.Errorf("serial %d: stream id %q not normalised to URL-safe base64", serial, ev.StreamID)
		}
	}
	for name, v := range want {
		got, present := m.header[name] // exact spelling: NATS header names are case-sensitive
		switch {
		case v == "" && present:
			t.Errorf("serial %d (%s): header %s = %q, want it absent", serial, ev.Type, name, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			t.Errorf("serial %d (%s): header %s = %q, want %q", serial, ev.Type, name, got, v)
		}
	}
}

// TestEveryEventLandsOnceWithSubjectHeadersAndPayload: N generated events of
// every type (with the quirks Symphony has: shared ids, no id, standard
// base64 stream ids, unknown types, connection events without a stream) give
// exactly N messages, each with its subject, headers and the Agent's bytes.
func TestEveryEventLandsOnceWithSubjectHeadersAndPayload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	f := h.openDatafeed(h.newClient())

	events := h.gen.All()
	events = append(events, h.gen.Mix(150)...)
	events = append(events,
		h.gen.Event("MESSAGEREACTIONADDED"),
		h.gen.Event(symphony.TypeMessageSent, symphonytest.WithStdBase64StreamID()),
		h.gen.Event(symphony.TypeUserJoinedRoom, symphonytest.WithoutID()),
		h.gen.Event(symphony.TypeConnectionAccepted),
	)
	events = append(events, h.gen.Action(symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom)...)

	// The mix must really hold every quirk, or the test proves less than it says.
	types, ids := map[string]bool{}, map[string]int{}
	var noID, stdB64, unknown, noStream int
	for _, raw := range events {
		ev := symphony.ParseEvent(raw)
		types[ev.Type] = true
		ids[ev.ID]++
		if ev.ID == "" {
			noID++
		}
		if stdBase64StreamID.Match(raw) {
			stdB64++
		}
		if !symphony.IsKnownType(ev.Type) {
			unknown++
		}
		if !ev.HasStream {
			noStream++
		}
	}
	for _, typ := range symphony.KnownTypes() {
		if !types[typ] {
			t.Errorf("no %s event in the test mix", typ)
		}
	}
	shared := 0
	for id, n := range ids {
		if id != "" && n > 1 {
			shared++
		}
	}
	if noID == 0 || stdB64 == 0 || unknown == 0 || noStream == 0 || shared == 0 {
		t.Fatalf("mix lacks a quirk: %d without id, %d standard base64, %d unknown types, %d without stream, %d shared ids",
			noID, stdB64, unknown, noStream, shared)
	}

	h.emit(events...)
	r := h.startBridge(f, bridge.SourceDatafeed)
	h.checkExactlyOnce()
	r.Alive(t)

	if got := len(h.col.all()); got != len(events) {
		t.Errorf("stream holds %d messages, want exactly %d", got, len(events))
	}
	for _, raw := range events {
		s := serialOf(t, raw)
		msgs := h.col.withSerial(s)
		if len(msgs) != 1 {
			t.Errorf("serial %d: %d messages", s, len(msgs))
			continue
		}
		checkMessage(t, msgs[0], raw, bridge.SourceDatafeed)
	}
	// The stream is the truth: the bridge's Published/Duplicates split
	// shifts when a publish-ack is late and the retry is acked as a
	// duplicate.
	if st := r.Bridge.Stats(); st.DeadLettered != 0 {
		t.Errorf("bridge stats %+v, want no dead letter", st)
	}
	if got := h.ackedEvents(); got < len(events) {
		t.Errorf("the Agent saw %d events acknowledged, want at least %d", got, len(events))
	}
}

// killBeforeAck is a Source that kills the bridge at the worst moment: the
// batch it handed out is fully stored in JetStream (the bridge is calling
// Read again to acknowledge it) and the ackId has not reached the Agent.
type killBeforeAck struct {
	src  bridge.Source
	kill context.CancelFunc

	mu     sync.Mutex
	last   int    // events in the last batch handed out
	killed string // the ackId that never reached the Agent
}

func (k *killBeforeAck) Name() string { return k.src.Name() }

func (k *killBeforeAck) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	k.mu.Lock()
	last := k.last
	k.mu.Unlock()
	if ackID != "" && last > 0 {
		k.mu.Lock()
		k.killed = ackID
		k.mu.Unlock()
		k.kill()
		<-ctx.Done()
		return symphony.Batch{}, fmt.Errorf("killed: %w", ctx.Err())
	}
	b, err := k.src.Read(ctx, ackID)
	k.mu.Lock()
	k.last = len(b.Events)
	k.mu.Unlock()
	return b, err
}

func (k *killBeforeAck) killedAck() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed
}

// TestKilledBetweenPublishAndAck: a bridge dies after storing a batch and
// before acknowledging it. A fresh bridge (new client, new feed reader,
// first ackId "") gets the batch again after the visibility timeout; it
// lands once (JetStream answers duplicate acks) and nothing is lost.
func TestKilledBetweenPublishAndAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	f := h.openDatafeed(h.newClient())
	events := h.gen.Mix(40) // one batch: fewer than the Agent's MaxBatch
	h.emit(events...)

	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	k := &killBeforeAck{src: f, kill: kill}
	first := h.startBridgeCtx(ctx, k, bridge.SourceDatafeed)
	select {
	case <-first.Done():
	case <-time.After(waitLong):
		t.Fatal("the first bridge was not killed")
	}
	if first.Err() != nil {
		t.Fatalf("killed bridge: Run returned %v, want nil", first.Err())
	}
	if k.killedAck() == "" {
		t.Fatal("the bridge was never about to acknowledge a batch")
	}
	if st := first.Bridge.Stats(); st.Stored() != int64(len(events)) {
		t.Fatalf("first bridge stored %d events before dying, want the whole batch of %d", st.Stored(), len(events))
	}
	if n := h.ackedEvents(); n != 0 {
		t.Fatalf("the Agent saw %d events acknowledged by the killed bridge", n)
	}
	if fs := h.agent.Feeds(); len(fs) != 1 || fs[0].InFlight+fs[0].Queued != len(events) {
		t.Fatalf("feeds after the kill: %+v, want one feed still holding the %d un-acked events", fs, len(events))
	}

	// A restart: nothing survives but the feed's tag.
	second := h.startBridge(symphony.NewDatafeedV2(h.newClient(), symphony.DatafeedOptions{}), bridge.SourceDatafeed)
	h.checkExactlyOnce()
	second.Alive(t)
	if st := second.Bridge.Stats(); st.Duplicates < int64(len(events)) || st.Published != 0 {
		t.Errorf("restarted bridge stats %+v: want the %d redelivered events acknowledged as duplicates, none published anew",
			st, len(events))
	}
	if st := h.agent.Stats(); st.FeedsCreated != 1 || st.Redeliveries < int64(len(events)) {
		t.Errorf("agent stats %+v: want the one feed reused and the batch redelivered", st)
	}
	if got := len(h.col.all()); got != len(events) {
		t.Errorf("stream holds %d messages, want %d", got, len(events))
	}
}

// TestJetStreamOutage: while JetStream is down the bridge reports not ready,
// the Agent gets no acknowledgement (the batch it handed out even comes back
// after the visibility timeout), and when the server returns every event is
// stored once.
func TestJetStreamOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	r := h.startBridge(h.openDatafeed(h.newClient()), bridge.SourceDatafeed)
	h.emit(h.gen.Mix(20)...)
	h.checkExactlyOnce()
	r.WaitReady(t, waitLong)
	ackedBefore := h.ackedEvents()

	h.srv.Shutdown()
	natstest.WaitFor(t, waitLong, func() error {
		if r.Bridge.Ready() == nil {
			return fmt.Errorf("bridge still ready with NATS down")
		}
		return nil
	})
	during := h.gen.Mix(30)
	delivered := h.agent.Stats().EventsDelivered
	h.emit(during...)
	// The bridge reads the batch, cannot store it, and keeps retrying; the
	// Agent puts the un-acked events back after the visibility timeout.
	natstest.WaitFor(t, waitLong, func() error {
		h.agent.Feeds() // applies the visibility timeout
		st := h.agent.Stats()
		if st.EventsDelivered < delivered+int64(len(during)) || st.Redeliveries < int64(len(during)) {
			return fmt.Errorf("agent: %d delivered (want %d), %d redelivered", st.EventsDelivered, delivered+int64(len(during)), st.Redeliveries)
		}
		if r.Bridge.Stats().PublishRetries == 0 {
			return fmt.Errorf("no publish retried yet")
		}
		return nil
	})
	if n := h.ackedEvents(); n != ackedBefore {
		t.Errorf("the Agent saw %d events acknowledged while JetStream was down", n-ackedBefore)
	}
	if err := r.Bridge.Ready(); err == nil {
		t.Error("bridge ready while JetStream is down")
	} else {
		t.Logf("not ready while down: %v", err)
	}
	r.Alive(t)

	h.srv = natstest.RestartServer(t, h.srv)
	h.checkExactlyOnce()
	r.WaitReady(t, waitLong)
	r.Alive(t)
	if got := len(h.col.all()); got != 50 {
		t.Errorf("stream holds %d messages, want 50", got)
	}
}

// TestSharedAndMissingIDsAllLand: events of one action share Symphony's id
// (two users added at once, a room and its creator, a message and its
// suppression) and events without id; each one is a message of its own.
func TestSharedAndMissingIDsAllLand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	f := h.openDatafeed(h.newClient())
	const ts = int64(1767603600000)
	var events [][]byte
	events = append(events, h.gen.Action(symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom)...)
	events = append(events, h.gen.Action(symphony.TypeRoomCreated, symphony.TypeUserJoinedRoom)...)
	events = append(events, h.gen.Action(symphony.TypeRoomMemberPromotedToOwner, symphony.TypeRoomMemberPromotedToOwner)...)
	events = append(events,
		h.gen.Event(symphony.TypeMessageSent, symphonytest.WithID("shared-1"), symphonytest.WithTimestamp(ts)),
		h.gen.Event(symphony.TypeMessageSuppressed, symphonytest.WithID("shared-1"), symphonytest.WithTimestamp(ts)),
		h.gen.Event(symphony.TypeUserJoinedRoom, symphonytest.WithoutID(), symphonytest.WithTimestamp(ts)),
		h.gen.Event(symphony.TypeUserJoinedRoom, symphonytest.WithoutID(), symphonytest.WithTimestamp(ts)),
		h.gen.Event(symphony.TypeConnectionRequested, symphonytest.WithoutID()),
	)

	ids := map[string]int{}
	var noID int
	for _, raw := range events {
		ev := symphony.ParseEvent(raw)
		if ev.ID == "" {
			noID++
		} else {
			ids[ev.ID]++
		}
	}
	if len(ids) != 4 || noID != 3 {
		t.Fatalf("test events: ids %v and %d without id, want 4 shared ids and 3 without", ids, noID)
	}

	h.emit(events...)
	r := h.startBridge(f, bridge.SourceDatafeed)
	h.checkExactlyOnce()
	r.Alive(t)
	msgIDs := map[string]bool{}
	for _, m := range h.col.all() {
		msgIDs[m.header.Get(jetstream.MsgIDHeader)] = true
	}
	if len(msgIDs) != len(events) {
		t.Errorf("%d distinct Msg-Ids for %d events", len(msgIDs), len(events))
	}
	if got := len(h.col.all()); got != len(events) {
		t.Errorf("stream holds %d messages, want %d", got, len(events))
	}
}

// TestMalformedEventsAreDeadLettered: an event whose type is not a string
// and an event without type, in the middle of a batch, go to the dead-letter
// subject with the reason; the rest of the batch lands and the batch is
// acknowledged.
func TestMalformedEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	f := h.openDatafeed(h.newClient())

	good := h.gen.Mix(10)
	numType := bytes.Replace(h.gen.Event(symphony.TypeMessageSent), []byte(`"type":"MESSAGESENT"`), []byte(`"type":42`), 1)
	noType := bytes.Replace(h.gen.Event(symphony.TypeRoomCreated), []byte(`"type":"ROOMCREATED",`), nil, 1)
	bad := [][]byte{numType, noType}
	for _, raw := range bad {
		if ev := symphony.ParseEvent(raw); ev.Err == nil {
			t.Fatalf("malformed test event parses: %s", raw)
		}
	}
	// Queued before the first read, so they come as one batch.
	h.emit(good[:5]...)
	h.emitMalformed(bad...)
	h.emit(good[5:]...)
	r := h.startBridge(f, bridge.SourceDatafeed)
	h.checkExactlyOnce()
	r.Alive(t)

	var all []int64
	for _, raw := range append(slices.Clone(good), bad...) {
		s := serialOf(t, raw)
		all = append(all, s)
	}
	oneBatch := false
	for _, b := range h.ackedBatches() {
		if len(b) == len(all) && !slices.ContainsFunc(all, func(s int64) bool { return !slices.Contains(b, s) }) {
			oneBatch = true
		}
	}
	if !oneBatch {
		t.Errorf("no acknowledged batch holds all %d events (good and malformed): %v", len(all), h.ackedBatches())
	}

	for _, raw := range bad {
		s := serialOf(t, raw)
		msgs := h.col.withSerial(s)
		if len(msgs) != 1 {
			t.Fatalf("malformed serial %d: %d messages", s, len(msgs))
		}
		m := msgs[0]
		if m.subject != deadSubject {
			t.Errorf("malformed serial %d on %q, want %q", s, m.subject, deadSubject)
		}
		if !bytes.Equal(m.data, raw) {
			t.Errorf("dead letter payload differs from the event:\n got %s\nwant %s", m.data, raw)
		}
		reason := m.header.Get("Symphony-Dead-Letter-Reason")
		if !strings.Contains(strings.ToLower(reason), "type") {
			t.Errorf("dead letter of serial %d: reason %q does not say what is wrong", s, reason)
		}
		if m.header.Get(jetstream.MsgIDHeader) == "" {
			t.Errorf("dead letter of serial %d has no Msg-Id", s)
		}
	}
	for _, raw := range good {
		s := serialOf(t, raw)
		if msgs := h.col.withSerial(s); len(msgs) == 1 {
			checkMessage(t, msgs[0], raw, bridge.SourceDatafeed)
		}
	}
	if st := r.Bridge.Stats(); st.DeadLettered < 2 {
		t.Errorf("bridge stats %+v: want the 2 dead letters counted", st)
	}
	if got := len(h.col.all()); got != len(good)+len(bad) {
		t.Errorf("stream holds %d messages, want %d", got, len(good)+len(bad))
	}
}

// TestDatahose: the datahose source end to end; only the configured event
// types are delivered and stored, marked as coming from the datahose.
func TestDatahose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	wantTypes := []string{symphony.TypeMessageSent, symphony.TypeRoomCreated}
	d, err := symphony.NewDatahose(h.newClient(), symphony.DatahoseOptions{EventTypes: wantTypes})
	if err != nil {
		t.Fatal(err)
	}
	r := h.startBridge(d, bridge.SourceDatahose)
	feed := h.waitFeed(symphonytest.KindDatahose) // created by the first read
	if !slices.Equal(feed.EventTypes, wantTypes) || feed.Tag != "datahose-"+botUser {
		t.Errorf("datahose feed %+v: want eventTypes %v and tag datahose-%s", feed, wantTypes, botUser)
	}

	events := append(h.gen.All(), h.gen.Mix(40)...)
	var wanted [][]byte
	for _, raw := range events {
		if slices.Contains(wantTypes, symphony.ParseEvent(raw).Type) {
			wanted = append(wanted, raw)
		}
	}
	if len(wanted) < 3 || len(wanted) == len(events) {
		t.Fatalf("%d of %d events have the wanted types: the filter would prove nothing", len(wanted), len(events))
	}
	h.record(wanted)
	h.agent.Emit(events...)
	h.checkExactlyOnce()
	r.Alive(t)

	if got := len(h.col.all()); got != len(wanted) {
		t.Errorf("stream holds %d messages, want the %d of types %v", got, len(wanted), wantTypes)
	}
	for _, raw := range wanted {
		s := serialOf(t, raw)
		if msgs := h.col.withSerial(s); len(msgs) == 1 {
			checkMessage(t, msgs[0], raw, bridge.SourceDatahose)
		}
	}
}

// TestDatafeedV1: the legacy datafeed v1 end to end. v1 is at-most-once
// (a read removes the events) and outside the zero-loss guarantees; with a
// healthy JetStream the events simply land.
func TestDatafeedV1(t *testing.T) {
	t.Parallel()
	h := newHarness(t, symphonytest.Config{})
	dir := t.TempDir()
	f := symphony.NewDatafeedV1(h.newClient(), symphony.DatafeedV1Options{IDFilePath: dir + string(filepath.Separator)})
	id, err := f.Open(t.Context())
	if err != nil {
		t.Fatalf("open datafeed v1: %v", err)
	}
	idFile, err := os.ReadFile(filepath.Join(dir, symphony.DatafeedIDFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(idFile)); !strings.HasPrefix(got, id+"@") {
		t.Errorf("datafeed.id holds %q, want %q@<agent URL>", got, id)
	}

	events := h.gen.Mix(30)
	h.emit(events...)
	r := h.startBridge(f, bridge.SourceDatafeed)
	h.checkExactlyOnce()
	r.Alive(t)
	for _, raw := range events {
		s := serialOf(t, raw)
		if msgs := h.col.withSerial(s); len(msgs) == 1 {
			checkMessage(t, msgs[0], raw, bridge.SourceDatafeed)
		}
	}
	if st := h.agent.Stats(); st.EventsConsumed != int64(len(events)) || st.V1FeedsCreated != 1 {
		t.Errorf("agent stats %+v: want %d events consumed by v1 reads from one feed", st, len(events))
	}
}

package bridge_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// oneBatch is a Source handing out one batch, then stopping the example
// once the batch is acknowledged (the read that carries its ackId).
type oneBatch struct {
	batch symphony.Batch
	stop  context.CancelFunc
}

func (s *oneBatch) Name() string { return "example" }

func (s *oneBatch) Read(ctx context.Context, ackID string) (symphony.Batch, error) {
	if ackID == s.batch.AckID {
		s.stop()
		<-ctx.Done()
		return symphony.Batch{}, ctx.Err()
	}
	return s.batch, nil
}

// The whole JetStream side: connect, a JetStream context with bounded async
// publishing, the stream, the bridge. A real deployment reads from a
// symphony client instead of oneBatch and connects to its own NATS URL.
func Example() {
	dir, err := os.MkdirTemp("", "bridge-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true, JetStreamMaxStore: 64 << 20})
	if err != nil {
		panic(err)
	}
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		panic("server not ready")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := bridge.Connect(ctx, bridge.NATSConfig{URL: srv.ClientURL()}, nil)
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	subject, _ := subjects.Compile("symphony.{pod}.{eventType}.{streamType}")
	dead, _ := subjects.Compile("symphony.{pod}._invalid")
	cfg := bridge.Config{Pod: "acme", Source: bridge.SourceDatafeed, Subject: subject, DeadLetter: dead}
	js, err := bridge.NewJetStream(nc, bridge.JetStreamConfig{})
	if err != nil {
		panic(err)
	}
	if _, err := bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "SYMPHONY"},
		[]string{subject.Filter(), dead.Filter()}, nil); err != nil {
		panic(err)
	}

	src := &oneBatch{stop: cancel, batch: symphony.Batch{AckID: "ack-1", Events: []symphony.Event{
		symphony.ParseEvent([]byte(`{"id":"e1","type":"MESSAGESENT","timestamp":1767225600000,` +
			`"payload":{"messageSent":{"message":{"messageId":"m1","stream":{"streamId":"s1","streamType":"ROOM"}}}}}`)),
		symphony.ParseEvent([]byte(`not json`)),
	}}}
	b, err := bridge.New(cfg, src, js)
	if err != nil {
		panic(err)
	}
	b.OnStored(func(msg *nats.Msg, ack *jetstream.PubAck) {
		fmt.Println(ack.Sequence, msg.Subject)
	})
	if err := b.Run(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", b.Stats())
	// Output:
	// 1 symphony.acme.messagesent.room
	// 2 symphony.acme._invalid
	// {Batches:1 EventsRead:2 Published:1 Duplicates:0 DedupeSkipped:0 DeadLettered:1 ReadErrors:0 PublishRetries:0 FeedRecreations:0 HookDropped:0 NewestStored:2026-01-01 00:00:00 +0000 UTC}
}

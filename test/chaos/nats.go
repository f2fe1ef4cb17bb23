package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natsembed"
)

// natsNode is the JetStream server the bridge stores into. It runs in the
// driver (the bridge is the process being killed, not NATS) and restarts on
// the same loopback port with the same store directory, so the bridge's
// reconnect finds its stream and messages again.
type natsNode struct {
	dir      string
	maxStore int64

	mu   sync.Mutex
	srv  *server.Server
	addr string // 127.0.0.1:port, fixed after the first start
}

func (n *natsNode) start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return errors.New("nats: already running")
	}
	listen := n.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	// The port of a server just shut down can take a moment to be free again.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		n.srv, err = natsembed.Start(ctx, natsembed.Config{Dir: n.dir, Listen: listen, MaxStore: n.maxStore})
		if err == nil {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("nats: start on %s: %w", listen, err)
	}
	if n.addr == "" {
		a, ok := n.srv.Addr().(*net.TCPAddr)
		if !ok {
			return fmt.Errorf("nats: unexpected listen address %v", n.srv.Addr())
		}
		n.addr = a.String()
	}
	return nil
}

func (n *natsNode) stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// restart stops the server, keeps it down for down, and starts it again.
func (n *natsNode) restart(ctx context.Context, down time.Duration) error {
	n.stop()
	t := time.NewTimer(down)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	// Start even when ctx ended: the verification still needs the stream.
	return n.start(context.WithoutCancel(ctx))
}

func (n *natsNode) url() string { return "nats://" + n.addr }

// observer is the driver's own NATS client: it watches the stream for
// progress lines and reads it whole at the end. It reconnects across NATS
// restarts like the bridge does.
type observer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
}

func newObserver(url, stream string) (*observer, error) {
	nc, err := nats.Connect(url, nats.Name("symbridge-chaos"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("observer: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("observer: %w", err)
	}
	return &observer{nc: nc, js: js, stream: stream}, nil
}

func (o *observer) close() { o.nc.Close() }

// messages returns how many messages the stream holds, or -1 when the stream
// cannot be asked right now (NATS restarting, stream not yet created).
func (o *observer) messages(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := o.js.Stream(ctx, o.stream)
	if err != nil {
		return -1
	}
	return int64(s.CachedInfo().State.Msgs)
}

// readAll reads the whole stream with an ordered consumer and hands each
// message's subject and data to fn, in stream order.
func (o *observer) readAll(ctx context.Context, fn func(subject string, data []byte)) (int, error) {
	s, err := o.js.Stream(ctx, o.stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", o.stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return 0, nil
	}
	cons, err := o.js.OrderedConsumer(ctx, o.stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return 0, fmt.Errorf("ordered consumer: %w", err)
	}
	defer it.Stop()
	read := 0
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return read, fmt.Errorf("reading the stream after %d of %d messages: %w", read, st.Msgs, err)
		}
		read++
		fn(m.Subject(), m.Data())
		meta, err := m.Metadata()
		if err != nil {
			return read, fmt.Errorf("message metadata: %w", err)
		}
		if meta.Sequence.Stream >= st.LastSeq {
			return read, nil
		}
	}
}

// isDeadLetter reports whether subject is the bridge's dead-letter subject
// (symphony.{pod}._invalid).
func isDeadLetter(subject string) bool { return strings.HasSuffix(subject, "._invalid") }

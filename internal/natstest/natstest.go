// Package natstest runs real, embedded nats-servers with JetStream for tests:
// a random port, a store under t.TempDir(), bounded memory and disk, no
// logging, no signal handlers, shut down when the test ends. RestartServer
// brings a server back on the same port and store, to test outages.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Option adjusts the server options before start.
type Option func(*server.Options)

// Server is a running embedded server and what it takes to restart it.
type Server struct {
	*server.Server
	t    testing.TB
	opts []Option
	port int
	dir  string
}

// RunServer starts a JetStream-enabled server on 127.0.0.1 and a random port,
// storing under a fresh t.TempDir(). It is shut down in t.Cleanup.
func RunServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, port: server.RANDOM_PORT, dir: t.TempDir()}
	s.start()
	return s
}

// RestartServer shuts s down (if it still runs) and starts a new server on
// the same port with the same store directory, so clients reconnect to it and
// find their streams and messages.
func RestartServer(t testing.TB, s *Server) *Server {
	t.Helper()
	s.Shutdown()
	ns := &Server{t: t, opts: s.opts, port: s.port, dir: s.dir}
	ns.start()
	return ns
}

func (s *Server) start() {
	s.t.Helper()
	o := &server.Options{
		Host:               "127.0.0.1",
		Port:               s.port,
		JetStream:          true,
		StoreDir:           s.dir,
		NoLog:              true,
		NoSigs:             true,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  256 << 20,
	}
	for _, opt := range s.opts {
		opt(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		s.t.Fatalf("natstest: new server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.t.Fatalf("natstest: server not ready within 10s")
	}
	s.Server = ns
	if addr, ok := ns.Addr().(*net.TCPAddr); ok {
		s.port = addr.Port
	}
	s.t.Cleanup(s.Shutdown)
}

// Shutdown stops the server and waits until it is down. Safe to call twice.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

// Port is the server's client port (kept across restarts).
func (s *Server) Port() int { return s.port }

// StoreDir is the JetStream store directory (kept across restarts).
func (s *Server) StoreDir() string { return s.dir }

// URL is the client URL (kept across restarts).
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Connect returns a client connection closed in t.Cleanup. It reconnects
// quickly and forever, so it survives RestartServer.
func Connect(t testing.TB, s *Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	nc, err := nats.Connect(s.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection to s.
func JetStream(t testing.TB, s *Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, s))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// WaitFor polls f every 10 ms until it returns nil, failing the test with
// f's last error when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: still failing after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

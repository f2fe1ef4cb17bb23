// Package natsembed runs an in-process nats-server with JetStream, for
// `symbridge demo` and for `symbridge run` with nats.embedded.enabled. Events
// stored there live on one unreplicated local disk: fine for a demo or a
// laptop, not for production (the caller warns each start).
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config of the embedded server.
type Config struct {
	// Dir holds the JetStream file store (a "jetstream" folder is created in it).
	Dir string
	// Listen is host:port; port 0 picks a free one. Loopback by default so
	// that other local processes can consume but nothing else can.
	Listen string
	// MaxStore caps JetStream's disk use in bytes (0 = 1 GiB).
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept connections (0 = 10 s).
	ReadyTimeout time.Duration
}

// Validate names the offending Go field (callers name their own keys).
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("natsembed: Config.Dir: required")
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		return fmt.Errorf("natsembed: Config.Listen: %w", err)
	}
	return nil
}

func splitListen(l string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(l)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port, got %q: %w", l, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", l)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ClientURL is the URL another process (`symbridge tail`) connects with to
// the embedded server of a configuration listening on listen: its host, or
// loopback when it listens on every interface. A random port (0) cannot be
// known from outside: an error.
func ClientURL(listen string) (string, error) {
	host, port, err := splitListen(listen)
	switch {
	case err != nil:
		return "", err
	case port == server.RANDOM_PORT:
		return "", fmt.Errorf("listen address %q has a random port: give the server's URL", listen)
	case host == "" || net.ParseIP(host).IsUnspecified(): // a nil IP (a name) is not unspecified
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// Start runs the server and waits until it accepts connections. Stop it with
// Shutdown followed by WaitForShutdown.
func Start(ctx context.Context, cfg Config) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitListen(cfg.Listen)
	maxStore := cfg.MaxStore
	if maxStore == 0 {
		maxStore = 1 << 30
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("natsembed: Config.Dir: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName:         "symbridge-embedded",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  maxStore,
		NoLog:              true,
		NoSigs:             true, // signals belong to main
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go s.Start() // owned by the returned server: Shutdown stops it
	timeout := cfg.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for !s.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.Shutdown()
			s.WaitForShutdown()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("embedded nats-server on %s: not ready after %s", cfg.Listen, timeout)
		}
	}
	return s, nil
}

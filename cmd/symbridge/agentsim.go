package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// cmdAgentSim serves the Agent simulator (pod login, key manager, datafeed
// v2, datahose, datafeed v1) over HTTP until ctx ends.
func cmdAgentSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("agent-sim", "agent-sim [flags]")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve on (plain HTTP; set scheme: http in the bot's config)")
	rate := fs.Float64("rate", 5, "events per second to generate (0 = none)")
	username := fs.String("username", "", "the only service account allowed to log in (default: any)")
	pubKey := fs.String("public-key", "", "PEM public key (or certificate) that verifies login JWTs (default: signatures not checked)")
	longPoll := fs.Duration("long-poll", 30*time.Second, "how long an empty read is held")
	visibility := fs.Duration("visibility-timeout", symphonytest.DefaultVisibilityTimeout, "how long an un-acked batch waits before redelivery")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	cfg := symphonytest.Config{Username: *username, LongPoll: *longPoll, VisibilityTimeout: *visibility, AgentVersion: "Agent-25.8.1"}
	if *pubKey != "" {
		k, err := readPublicKey(*pubKey)
		if err != nil {
			return usagef("--public-key: %w", err)
		}
		cfg.PublicKey = k
	} else {
		fmt.Fprintln(stderr, "agent-sim: no --public-key: login JWT signatures are not checked")
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	agent := symphonytest.New(cfg)
	defer agent.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := &http.Server{Handler: agent.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "agent-sim: serving the Symphony Agent, pod and key manager at http://%s\n", ln.Addr())
	if *rate > 0 {
		var emitted atomic.Int64
		genCtx, stop := context.WithCancel(ctx)
		defer stop()
		wg.Add(1)
		go func() { defer wg.Done(); generate(genCtx, agent, *rate, &emitted) }()
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	agent.Close() // release held long polls so Shutdown does not wait for them
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	wg.Wait()
	return nil
}

func readPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			return k, nil
		}
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
	}
	return nil, errors.New("not an RSA public key")
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// natsServer is a nats-server child process on a loopback port.
type natsServer struct {
	cmd     *exec.Cmd
	url     string
	version string
	done    chan struct{}
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// startNATS builds nats-server at the version go.mod pins and runs it with
// JetStream on a free loopback port and a throwaway store.
func startNATS(ctx context.Context, root, tmp string) (*natsServer, error) {
	bin := filepath.Join(tmp, "nats-server")
	if err := goBuild(ctx, root, bin, "github.com/nats-io/nats-server/v2"); err != nil {
		return nil, err
	}
	out, _ := exec.Command(bin, "--version").Output()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	store := filepath.Join(tmp, "store")
	log, err := os.Create(filepath.Join(tmp, "nats-server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", store)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &natsServer{cmd: cmd, url: fmt.Sprintf("nats://127.0.0.1:%d", port), version: strings.TrimSpace(string(out)), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(s.url)
		if err == nil {
			nc.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("nats-server did not come up: %w", err)
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("nats-server exited at start (see %s)", log.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *natsServer) stop() { stopProcess(s.cmd.Process, os.Interrupt, s.done, 10*time.Second) }

// stopProcess sends sig to p and waits until done is closed (p was
// reaped), killing p if that takes longer than grace.
func stopProcess(p *os.Process, sig os.Signal, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}

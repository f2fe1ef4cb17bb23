package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bridgeProc runs symbridge as a separate child process, so a SIGKILL leaves
// no in-process state behind: whatever the next process knows, it learns
// from the Agent and from JetStream. Its output goes to one log file.
type bridgeProc struct {
	name                 string // "bridge", or "bridge 2" among several
	bin, config, logPath string

	mu         sync.Mutex
	cur        *child
	starts     int
	kills      int
	unexpected []string // exits nobody asked for
}

type child struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has been reaped
	err      error         // Wait's result, set before done closes
	expected bool          // the driver killed or stopped it (guarded by bridgeProc.mu)
	started  time.Time
}

// start launches a new bridge process. The caller holds no lock.
func (b *bridgeProc) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.startLocked()
}

func (b *bridgeProc) startLocked() error {
	if b.cur != nil {
		select {
		case <-b.cur.done:
		default:
			return fmt.Errorf("%s: already running", b.name)
		}
	}
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("bridge log: %w", err)
	}
	b.starts++
	fmt.Fprintf(logf, "=== chaos: %s start #%d at %s ===\n", b.name, b.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.bin, "run", "--config", b.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = bridgeEnv()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", b.name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), started: time.Now()}
	b.cur = c
	go func() { // owned by c: ends when the process is reaped
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return nil
}

// bridgeEnv is a minimal environment: no SYMBRIDGE_* override and no proxy
// from the caller's shell may change what the run tests.
func bridgeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SYMBRIDGE_"), strings.EqualFold(k, "HTTP_PROXY"),
			strings.EqualFold(k, "HTTPS_PROXY"), strings.EqualFold(k, "ALL_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// kill SIGKILLs the running bridge and waits until it is reaped. It reports
// false when no bridge was running.
func (b *bridgeProc) kill() bool {
	b.mu.Lock()
	c := b.cur
	if c == nil || isDone(c) {
		b.mu.Unlock()
		return false
	}
	c.expected = true
	b.kills++
	_ = c.cmd.Process.Kill() // SIGKILL
	b.mu.Unlock()
	<-c.done
	return true
}

// stop asks the bridge to stop (SIGTERM) and kills it after grace.
func (b *bridgeProc) stop(grace time.Duration) error {
	b.mu.Lock()
	c := b.cur
	if c == nil || isDone(c) {
		b.mu.Unlock()
		return nil
	}
	c.expected = true
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	b.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("bridge did not stop within %s of SIGTERM; killed", grace)
	}
}

func isDone(c *child) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// supervise restarts a bridge that exited on its own (a bug: the loop must
// never die), recording why, until ctx ends. It is the only other place
// that starts a bridge, under the same lock as kill/start.
func (b *bridgeProc) supervise(ctx context.Context, logf func(string, ...any)) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		if c := b.cur; c != nil && isDone(c) && !c.expected {
			c.expected = true // reported once
			why := fmt.Sprintf("%s exited by itself after %s: %v", b.name, time.Since(c.started).Round(time.Millisecond), c.err)
			b.unexpected = append(b.unexpected, why)
			logf("%s; restarting it", why)
			if err := b.startLocked(); err != nil {
				logf("restart failed: %v", err)
			}
		}
		b.mu.Unlock()
	}
}

// restart starts a bridge if none runs (after a kill).
func (b *bridgeProc) restart() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && !isDone(b.cur) {
		return nil
	}
	return b.startLocked()
}

func (b *bridgeProc) counts() (starts, kills int, unexpected []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts, b.kills, append([]string(nil), b.unexpected...)
}

// tail returns the last n lines of the bridge log.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

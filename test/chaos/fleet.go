package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// fleet is the bridge processes of a run: one, or -instances of them with
// the same configuration (the same account, datafeed.tag and NATS), each
// dialling the Agent on a port of its own so that the driver can tell which
// instance a hand-out went to, and each with its own log.
type fleet []*bridgeProc

// newFleet prepares n bridges; config(i) and agentURLs[i] are instance i's.
// One instance keeps the single-bridge names (symbridge.yaml, bridge.log).
func newFleet(dir, bin string, n int) fleet {
	f := make(fleet, n)
	for i := range f {
		name, cfg, log := "bridge", "symbridge.yaml", "bridge.log"
		if n > 1 {
			name = fmt.Sprintf("bridge %d", i+1)
			cfg, log = fmt.Sprintf("symbridge-%d.yaml", i+1), fmt.Sprintf("bridge-%d.log", i+1)
		}
		f[i] = &bridgeProc{name: name, bin: bin, config: filepath.Join(dir, cfg), logPath: filepath.Join(dir, log)}
	}
	return f
}

// start launches every bridge at once (their start-ups overlap).
func (f fleet) start() error {
	var errs []error
	for _, b := range f {
		errs = append(errs, b.start())
	}
	return errors.Join(errs...)
}

// stop stops every bridge, side by side (SIGTERM, SIGKILL after grace).
func (f fleet) stop(grace time.Duration) error {
	errs := make([]error, len(f))
	var wg sync.WaitGroup
	for i, b := range f {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.stop(grace); err != nil {
				errs[i] = fmt.Errorf("%s: %w", b.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// supervise runs every bridge's supervise until ctx ends.
func (f fleet) supervise(ctx context.Context, logf func(string, ...any)) {
	var wg sync.WaitGroup
	for _, b := range f {
		wg.Add(1)
		go func() { defer wg.Done(); b.supervise(ctx, logf) }()
	}
	wg.Wait()
}

// counts sums the bridges' counts.
func (f fleet) counts() (starts, kills int, unexpected []string) {
	for _, b := range f {
		s, k, u := b.counts()
		starts, kills, unexpected = starts+s, kills+k, append(unexpected, u...)
	}
	return starts, kills, unexpected
}

// logs describes where the bridges log.
func (f fleet) logs() string {
	if len(f) == 1 {
		return f[0].logPath
	}
	return filepath.Join(filepath.Dir(f[0].logPath), "bridge-*.log")
}

// leastKilled is the index of a bridge killed least often.
func (f fleet) leastKilled() int {
	best, least := 0, -1
	for i, b := range f {
		if _, k, _ := b.counts(); least < 0 || k < least {
			best, least = i, k
		}
	}
	return best
}

// killedLeast reports whether bridge i was killed least often.
func (f fleet) killedLeast(i int) bool {
	_, k, _ := f[i].counts()
	_, least, _ := f[f.leastKilled()].counts()
	return k == least
}

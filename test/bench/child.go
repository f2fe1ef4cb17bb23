package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/bridge"
)

// runChildRole runs this binary again as the raw or naive publisher into
// stream, paced (raw only) or at full speed. The child reads the CPU time
// of nats-server and of this process over its own window.
func (w *workload) runChildRole(ctx context.Context, role, stream string, p pace) (result, error) {
	cfgPath, err := w.configFile(w.agentHost, w.agentPort, stream)
	if err != nil {
		return result{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "child", "-role", role, "-config", cfgPath,
		"-events-file", w.eventsFile, "-batch", fmt.Sprint(w.o.batch),
		"-count", fmt.Sprint(p.events), "-rate", fmt.Sprint(p.rate),
		"-nats-pid", fmt.Sprint(w.natsPID), "-driver-pid", fmt.Sprint(os.Getpid()))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("child %s: %w", role, err)
	}
	return decodeResult(&out)
}

// runChild is the raw or naive publisher process. It loads the events,
// builds the bridge's messages from them and creates the stream as
// `symbridge run` would (all untimed), then publishes them all, timed.
func runChild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	role := fs.String("role", "", "raw or naive")
	cfgPath := fs.String("config", "", "symbridge config file")
	eventsFile := fs.String("events-file", "", "events")
	batch := fs.Int("batch", 100, "raw: events per async batch")
	count := fs.Int("count", 0, "publish the first count events (0: all)")
	rate := fs.Float64("rate", 0, "raw: one batch every batch/rate seconds (0: full speed)")
	natsPID := fs.Int("nats-pid", 0, "nats-server's pid, for its CPU time (0: unknown)")
	driverPID := fs.Int("driver-pid", 0, "the driver's pid, for its CPU time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := pace{events: *count, rate: *rate}
	if p.rate > 0 && *role != "raw" {
		return fmt.Errorf("role %s cannot be paced", *role)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	events, err := readEvents(*eventsFile)
	if err != nil {
		return err
	}
	if p.events > 0 {
		events = events[:min(p.events, len(events))]
	}
	msgs, err := buildMsgs(cfg, events)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATS.URL, nats.Name("symbridge-bench-"+*role))
	if err != nil {
		return err
	}
	defer nc.Close()
	// The bridge's own JetStream context (same max pending, same timeout).
	js, err := bridge.NewJetStream(nc, bridge.JetStreamConfig{MaxPending: cfg.Bridge.MaxPending, PublishTimeout: cfg.Bridge.PublishTimeout})
	if err != nil {
		return err
	}
	if _, err := bridge.EnsureStream(ctx, js, streamConfig(cfg, cfg.NATS.Stream.Name), nil, nil); err != nil {
		return err
	}

	var lat []time.Duration
	cpu0, nats0, driver0 := selfCPU(), cpuOf(*natsPID), cpuOf(*driverPID)
	start := time.Now()
	switch *role {
	case "raw":
		var interval time.Duration
		if p.rate > 0 {
			interval = p.interval(*batch)
		}
		lat, err = publishRaw(ctx, js, msgs, *batch, interval)
	case "naive":
		lat, err = publishNaive(ctx, js, msgs, *batch)
	default:
		return fmt.Errorf("unknown role %q", *role)
	}
	elapsed := time.Since(start)
	cpu, natsCPU, driverCPU := selfCPU()-cpu0, cpuOf(*natsPID)-nats0, cpuOf(*driverPID)-driver0
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(result{
		Events: len(msgs), Elapsed: elapsed, CPU: cpu, NATSCPU: natsCPU, DriverCPU: driverCPU,
		PeakRSS: procStatus(os.Getpid(), "VmHWM"),
		P50:     percentile(lat, 0.50), P99: percentile(lat, 0.99), Batches: len(lat),
	})
}

// publishRaw publishes each batch with PublishMsgAsync and waits for all
// its publish-acks before the next: one bridge reader's shape, nothing else.
// The JetStream context bounds pending publishes (MaxPending). With an
// interval, a batch starts at most once per interval (a ticker: after a
// slow batch the next one starts at once, without catching up the missed
// ones).
func publishRaw(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, batch int, interval time.Duration) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, len(msgs)/batch+1)
	futures := make([]jetstream.PubAckFuture, 0, batch)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for i := 0; i < len(msgs); i += batch {
		if tick != nil && i > 0 {
			select {
			case <-tick:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		t := time.Now()
		futures = futures[:0]
		for _, m := range msgs[i:min(i+batch, len(msgs))] {
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				return nil, err
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					return nil, errors.New("duplicate publish-ack in a fresh stream")
				}
			case err := <-f.Err():
				return nil, err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}

// publishNaive publishes one event at a time and waits for its ack. The
// latency reported is that of a batch of `batch` events, for comparison.
func publishNaive(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, batch int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, len(msgs)/batch+1)
	for i := 0; i < len(msgs); i += batch {
		t := time.Now()
		for _, m := range msgs[i:min(i+batch, len(msgs))] {
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				return nil, err
			}
			if ack.Duplicate {
				return nil, errors.New("duplicate publish-ack in a fresh stream")
			}
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

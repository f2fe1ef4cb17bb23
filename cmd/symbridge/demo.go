package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// cmdDemo runs the simulated Agent, an embedded JetStream and the real
// bridge path (the same runBridge as `symbridge run`), printing one line per
// message as it lands in JetStream.
func cmdDemo(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [flags]")
	duration := fs.Duration("duration", 0, "stop by itself after this long (0 = until Ctrl-C)")
	dir := fs.String("dir", "", "JetStream store directory (default: a temporary one, removed at the end)")
	rate := fs.Float64("rate", 20, "events per second the simulated Agent generates")
	listen := fs.String("nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens (a busy port falls back to a free one)")
	httpListen := fs.String("http-listen", "", "serve /healthz and /readyz here (default: off)")
	quiet := fs.Bool("quiet", false, "no live view, only the summary")
	logLevel := fs.String("log-level", "warn", "log level of the bridge (debug, info, warn, error)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *rate <= 0 {
		return usagef("--rate: must be positive, got %g", *rate)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	storeDir := *dir
	if storeDir == "" {
		d, err := os.MkdirTemp("", "symbridge-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		storeDir = d
	}
	natsListen := *listen
	if ln, err := net.Listen("tcp", natsListen); err != nil {
		natsListen = "127.0.0.1:0"
	} else {
		ln.Close()
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	agent := symphonytest.New(symphonytest.Config{
		Username: "symbridge-demo", PublicKey: &key.PublicKey,
		LongPoll: 5 * time.Second, AgentVersion: "Agent-25.8.1",
	})
	defer agent.Close()
	agentURL, err := url.Parse(agent.Start())
	if err != nil {
		return err
	}

	cfg, err := config.Load("", filterEnv(environ), map[string]any{
		"scheme":                 "http",
		"host":                   agentURL.Hostname(),
		"port":                   agentURL.Port(),
		"bot.username":           "symbridge-demo",
		"bot.privateKey.content": string(keyPEM),
		"bridge.pod":             "demo",
		"nats.embedded.enabled":  true,
		"nats.embedded.dir":      storeDir,
		"nats.embedded.listen":   natsListen,
		"http.listen":            *httpListen,
		"log.level":              *logLevel,
	})
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return usageError{err}
	}

	var stored atomic.Int64
	var outMu sync.Mutex
	view := func(msg *nats.Msg, ack *jetstream.PubAck) {
		n := stored.Add(1)
		if *quiet {
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		dup := ""
		if ack.Duplicate {
			dup = " (duplicate)"
		}
		fmt.Fprintf(stdout, "%6d  seq=%-6d %-52s %-26s %s%s\n", n, ack.Sequence, msg.Subject,
			msg.Header.Get(bridge.HeaderEventType), snippet(msg.Data, 60), dup)
	}

	// The generator is owned by this function: it stops when ctx ends and
	// genWG is waited for before returning.
	var emitted atomic.Int64
	var genWG sync.WaitGroup
	genCtx, stopGen := context.WithCancel(ctx)
	defer func() { stopGen(); genWG.Wait() }()
	started := func(natsURL string) {
		fmt.Fprintf(stdout, "symbridge demo: simulated Agent at %s, embedded JetStream at %s (stream %s)\n",
			agentURL, natsURL, cfg.NATS.Stream.Name)
		fmt.Fprintf(stdout, "watch it from another shell: nats --server %s sub 'symphony.>'\n\n", natsURL)
		genWG.Add(1)
		go func() {
			defer genWG.Done()
			generate(genCtx, agent, *rate, &emitted)
		}()
	}

	err = runBridge(ctx, cfg, logger, runHooks{onStored: view, started: started})
	stopGen()
	genWG.Wait()
	fmt.Fprintf(stdout, "\nsymbridge demo: %d events generated, %d messages stored in JetStream\n", emitted.Load(), stored.Load())
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// generate emits a steady mix of every event type at about rate events/s.
func generate(ctx context.Context, agent *symphonytest.Agent, rate float64, emitted *atomic.Int64) {
	gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{
		Seed: time.Now().UnixNano(), Now: time.Now,
		NoIDRate: 0.03, StdBase64Rate: 0.05, SharedIDRate: 0.05, UnknownTypeRate: 0.01,
	})
	// Start with one event of every type, so a short demo shows them all.
	all := gen.All()
	agent.Emit(all...)
	emitted.Add(int64(len(all)))
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(max(interval, 10*time.Millisecond))
	defer tick.Stop()
	per := max(1, int(rate*max(interval, 10*time.Millisecond).Seconds()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			evs := gen.Mix(per)
			agent.Emit(evs...)
			emitted.Add(int64(len(evs)))
		}
	}
}

func snippet(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// filterEnv keeps the environment except SYMBRIDGE_* variables, so a shell
// set up for `symbridge run` cannot point the demo at a real Agent.
func filterEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

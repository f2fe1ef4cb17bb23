package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/symbridge/symbridge/internal/backoff"
	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/internal/dedupe"
	"github.com/symbridge/symbridge/internal/natsembed"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
)

func cmdRun(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run --config FILE [--nats-url URL] [--log-level LEVEL]")
	path := fs.String("config", "", "configuration file (a BDK config.yaml works as it is)")
	natsURL := fs.String("nats-url", "", "overrides nats.url")
	logLevel := fs.String("log-level", "", "overrides log.level")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	cfg, err := config.Load(*path, environ, flagOverrides(map[string]string{"nats.url": *natsURL, "log.level": *logLevel}))
	if err != nil {
		return usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return usageError{err}
	}
	defer tuneRuntime(environ, cfg.Runtime)()
	logRuntime(logger)
	err = runBridge(ctx, cfg, logger, runHooks{})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// SIGINT/SIGTERM before start-up finished (NATS or the Agent still
		// unreachable): as clean a stop as one in the read loop, exit 0.
		logger.Info("symbridge stopped during start-up", "reason", err)
		return nil
	}
	return err
}

// runHooks lets the demo watch the bridge without a second code path.
type runHooks struct {
	onStored func(msg *nats.Msg, ack *jetstream.PubAck)
	started  func(natsURL string)
}

// runBridge wires the configuration into the real bridge path and runs it
// until ctx ends (nil) or the bridge stops on an error.
func runBridge(ctx context.Context, cfg *config.Config, logger *slog.Logger, hooks runHooks) error {
	logger.Info("symbridge starting", "version", versionString(), "source", cfg.Bridge.Source, "pod", cfg.Bridge.Pod)
	for _, w := range startupWarnings(cfg) {
		logger.Warn(w)
	}
	subj, dead, err := bridgeSubjects(cfg)
	if err != nil {
		return err
	}

	natsURL := cfg.NATS.URL
	if cfg.NATS.Embedded.Enabled {
		logger.Warn("nats.embedded.enabled: events are stored on one unreplicated local disk; use an external JetStream cluster in production",
			"dir", cfg.NATS.Embedded.Dir, "listen", cfg.NATS.Embedded.Listen)
		srv, err := natsembed.Start(ctx, natsembed.Config{Dir: cfg.NATS.Embedded.Dir, Listen: cfg.NATS.Embedded.Listen})
		if err != nil {
			return err
		}
		defer shutdownServer(srv)
		natsURL = srv.ClientURL()
	}
	natsOpts, err := natsOptions(cfg)
	if err != nil {
		return usageError{err}
	}
	// Health endpoints come up first, so that a bridge waiting for NATS or
	// for the Agent at start-up is alive (/healthz) and says why it is not
	// ready (/readyz) instead of being invisible.
	life := &lifecycle{}
	life.setStep("connecting to NATS")
	hs, err := startHealth(cfg.HTTP.Listen, life.ready, life, logger)
	if err != nil {
		return err
	}
	defer hs.Close()
	nc, err := bridge.Connect(ctx, bridge.NATSConfig{URL: natsURL, Name: "symbridge", PingInterval: cfg.NATS.PingInterval,
		Options: natsOpts, Waiting: life.failed}, logger)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := bridge.NewJetStream(nc, bridge.JetStreamConfig{MaxPending: cfg.Bridge.MaxPending, PublishTimeout: cfg.Bridge.PublishTimeout})
	if err != nil {
		return err
	}
	life.setStep("creating or checking the stream")
	if err := retryStartup(ctx, logger, life, "stream", func(ctx context.Context) error {
		_, err := bridge.EnsureStream(ctx, js, cfg.NATS.Stream.Bridge(), streamFilters(subj, dead), logger)
		if permanentStreamError(err) {
			return permanent{err}
		}
		return err
	}); err != nil {
		return err
	}

	var coord symphony.FeedCoordinator
	if coordinates(cfg) {
		life.setStep("opening the feed coordination buckets")
		if coord, err = feedCoordinator(ctx, cfg, js, logger); err != nil {
			return err
		}
	}

	client, err := symphony.NewClient(clientConfig(cfg))
	if err != nil {
		return usageError{err}
	}
	life.setStep("authenticating")
	if err := retryStartup(ctx, logger, life, "authenticate", client.Authenticate); err != nil {
		return err
	}
	life.setStep("opening the feed")
	src, err := openSource(ctx, cfg, client, coord, logger, life)
	if err != nil {
		return err
	}
	if hooks.started != nil {
		hooks.started(natsURL) // the feed exists now: events emitted from here on reach it
	}

	lat := newBatchLatency()
	b, err := bridge.New(bridge.Config{
		Pod: cfg.Bridge.Pod, Source: cfg.Bridge.Source,
		Subject: subj, DeadLetter: dead,
		PublishTimeout: cfg.Bridge.PublishTimeout, MaxPending: cfg.Bridge.MaxPending,
		Readers:   cfg.Bridge.Readers,
		SlowRetry: cfg.Bridge.SlowRetry,
		Retry:     sourceRetry(cfg),
		Dedupe:    dedupeSet(cfg),
		Observer:  lat,
		Logger:    logger,
	}, src, js)
	if err != nil {
		return usageError{err}
	}
	if hooks.onStored != nil {
		b.OnStored(hooks.onStored)
	}
	life.running(b, promhttp.HandlerFor(newMetrics(b, src, nc, cfg.Bridge.Source, lat), promhttp.HandlerOpts{}))
	// The progress reporter lives as long as Run: stopped once Run has
	// returned, it logs its last line with the final counts.
	// WithoutCancel: a SIGTERM ends ctx before Run has stored its last
	// batch; the last line waits for stopProgress below.
	progressCtx, stopProgress := context.WithCancel(context.WithoutCancel(ctx))
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		reportProgress(progressCtx, b, logger, progressInterval)
	}()
	err = b.Run(ctx)
	stopProgress()
	<-progressDone
	st := b.Stats()
	logger.Info("symbridge stopped", "stats", fmt.Sprintf("%+v", st),
		"batch_p50", lat.quantile(0.5), "batch_p99", lat.quantile(0.99))
	return err
}

// startupWarnings are the configuration's warnings, logged at each start
// of run and reported by check.
func startupWarnings(cfg *config.Config) []string {
	w := append(slices.Clone(cfg.Warnings), natsWarnings(cfg)...)
	if p := cfg.AgentProxyURL; cfg.PodProxyURL != p || cfg.KeyManagerProxyURL != p || cfg.SessionAuthProxyURL != p {
		w = append(w, "per-component proxies differ; symbridge sends all Symphony traffic through the Agent's proxy (agent.proxy, else proxy)")
	}
	if cfg.InsecureSkipVerify {
		w = append(w, "ssl.insecureSkipVerify: the Agent's and pod's TLS certificates are not verified; anyone on the path can read events and steal tokens")
	}
	return w
}

// bridgeSubjects compiles the subject templates. Validate compiled both
// already; a caller that skipped it still gets the key named.
func bridgeSubjects(cfg *config.Config) (subj, dead *subjects.Mapper, err error) {
	if subj, err = subjects.Compile(cfg.Bridge.Subject); err != nil {
		return nil, nil, usagef("bridge.subject: %w", err)
	}
	if dead, err = subjects.Compile(cfg.Bridge.DeadLetter); err != nil {
		return nil, nil, usagef("bridge.deadLetter: %w", err)
	}
	return subj, dead, nil
}

// streamFilters are the subjects the stream must capture: every subject the
// bridge publishes to, dead letters included.
func streamFilters(subj, dead *subjects.Mapper) []string {
	return []string{subj.Filter(), dead.Filter()}
}

func shutdownServer(s *server.Server) { s.Shutdown(); s.WaitForShutdown() }

func sourceRetry(cfg *config.Config) symphony.RetryConfig {
	if cfg.Bridge.Source == "datahose" {
		return cfg.Datahose.Retry
	}
	return cfg.Datafeed.Retry
}

func clientConfig(cfg *config.Config) symphony.ClientConfig {
	return symphony.ClientConfig{
		PodURL: cfg.PodURL, AgentURL: cfg.AgentURL, KeyManagerURL: cfg.KeyManagerURL, SessionAuthURL: cfg.SessionAuthURL,
		Username: cfg.Username, PrivateKeyPEM: cfg.PrivateKeyPEM, Certificate: cfg.Certificate,
		RootCAs: cfg.TrustStore, InsecureSkipVerify: cfg.InsecureSkipVerify, ProxyURL: cfg.AgentProxyURL,
		ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout, MaxBodyBytes: cfg.Bridge.MaxBodyBytes,
		UserAgent: "symbridge/" + version,
	}
}

// The feeds' options from the configuration, for run and check alike.
func datahoseOptions(cfg *config.Config) symphony.DatahoseOptions {
	return symphony.DatahoseOptions{Tag: cfg.Datahose.Tag, EventTypes: cfg.Datahose.EventTypes, Scopes: cfg.Datahose.Scopes}
}

// datafeedOptions: coord and logger are run's (check passes nil for both:
// it plans without coordinating).
func datafeedOptions(cfg *config.Config, coord symphony.FeedCoordinator, logger *slog.Logger) symphony.DatafeedOptions {
	return symphony.DatafeedOptions{Tag: cfg.Datafeed.Tag, IncludeInvisible: cfg.Datafeed.IncludeInvisible,
		Coordinator: coord, Logger: logger}
}

func datafeedV1Options(cfg *config.Config) symphony.DatafeedV1Options {
	return symphony.DatafeedV1Options{IDFilePath: cfg.Datafeed.IDFilePath}
}

// natsWarnings are the warnings of the nats.* keys: part of run's start-up
// warnings, and logged by tail, which uses only those keys.
func natsWarnings(cfg *config.Config) []string {
	if cfg.NATS.TLS.InsecureSkipVerify {
		return []string{"nats.tls.insecureSkipVerify: the NATS server's certificate is not verified; anyone on the path can read and forge events"}
	}
	return nil
}

// natsOptions turns the nats.* credential and TLS keys into client options.
// The values are secrets: they go to nats.go and nowhere else.
func natsOptions(cfg *config.Config) ([]nats.Option, error) {
	n := cfg.NATS
	var opts []nats.Option
	switch {
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkeyFile: %w", err)
		}
		opts = append(opts, o)
	}
	if n.Token != "" {
		opts = append(opts, nats.Token(n.Token.Reveal()))
	}
	if n.User != "" {
		opts = append(opts, nats.UserInfo(n.User, n.Password.Reveal()))
	}
	if n.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.TLS.CAFile))
	}
	if n.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.TLS.CertFile, n.TLS.KeyFile))
	}
	if n.TLS.InsecureSkipVerify { // warned about by natsWarnings
		opts = append(opts, nats.Secure(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // asked for explicitly
	}
	return opts, nil
}

// openSource opens the configured feed, retrying transient failures.
func openSource(ctx context.Context, cfg *config.Config, client *symphony.Client, coord symphony.FeedCoordinator, logger *slog.Logger, life *lifecycle) (bridge.Source, error) {
	switch {
	case cfg.Bridge.Source == "datahose":
		d, err := symphony.NewDatahose(client, datahoseOptions(cfg))
		if err != nil {
			return nil, usageError{err}
		}
		logger.Info("reading the datahose", "feed", d.Name())
		return d, nil
	case cfg.Datafeed.Version == "v1":
		logger.Warn("datafeed.version v1: a read removes events from the Agent, so a crash between read and publish loses them (at-most-once); use v2 where the Agent allows it")
		f := symphony.NewDatafeedV1(client, datafeedV1Options(cfg))
		if err := retryStartup(ctx, logger, life, "open datafeed v1", func(ctx context.Context) error { _, err := f.Open(ctx); return err }); err != nil {
			return nil, err
		}
		return f, nil
	default:
		f := symphony.NewDatafeedV2(client, datafeedOptions(cfg, coord, logger))
		var res symphony.OpenResult
		if err := retryStartup(ctx, logger, life, "open datafeed", func(ctx context.Context) error {
			var err error
			res, err = f.Open(ctx)
			return err
		}); err != nil {
			return nil, err
		}
		logger.Info("reading datafeed v2", "feed", res.FeedID, "created", res.Created, "tag", cfg.Datafeed.Tag)
		if len(res.OtherFeeds) > 0 {
			logger.Warn("other datafeeds exist on this account; symbridge reads its own (tagged) feed, so each program still gets every event, but check that none of them is a stale feed",
				"others", res.OtherFeeds)
		}
		return f, nil
	}
}

// retryStartup retries a start-up step on transient errors with the BDK's
// default backoff capped at 30 s; credentials rejected and bad usage stop at
// once. Each failure retried is logged and recorded on life for /readyz.
func retryStartup(ctx context.Context, logger *slog.Logger, life *lifecycle, what string, fn func(context.Context) error) error {
	bo := backoff.New(backoff.Config{MaxAttempts: -1, Initial: 500 * time.Millisecond, Multiplier: 2, Max: 30 * time.Second})
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm permanent
		if errors.As(err, &perm) {
			return fmt.Errorf("%s: %w", what, perm.err)
		}
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			// A certificate we do not trust will not become trusted by
			// waiting: ssl.trustStore (or the system roots) must change.
			return fmt.Errorf("%s: %w (add the issuing CA with ssl.trustStore)", what, err)
		}
		if symphony.Classify(err) == symphony.ClassFatal {
			return fmt.Errorf("%s: %w", what, err)
		}
		logger.Warn("start-up step failed; retrying", "step", what, "err", err, "attempt", bo.Attempts()+1)
		life.failed(err)
		if err := bo.Wait(ctx, 0); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// permanent marks a start-up error that retrying cannot mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// permanentStreamError: a stream that does not capture our subjects, or a
// request JetStream refuses as invalid (overlapping subjects, more replicas
// than servers, ...), needs an operator, not a retry. Unavailability
// (timeouts, no responders, 503 insufficient resources) is retried.
func permanentStreamError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, bridge.ErrStreamCoverage) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusBadRequest
}

// dedupeSet is the bridge's set of recently stored Msg-Ids; nil (no set:
// every event is published, and JetStream's duplicate window drops what
// it has seen) when bridge.dedupeEntries is 0, as documented.
func dedupeSet(cfg *config.Config) bridge.Deduper {
	if cfg.Bridge.DedupeEntries <= 0 {
		return nil // a nil interface, not a nil *dedupe.Set in one
	}
	return dedupe.New(cfg.Bridge.DedupeEntries, cfg.NATS.Stream.Duplicates)
}

package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/symbridge/symbridge/internal/defaults"
	"github.com/symbridge/symbridge/internal/redact"
)

// NATSConfig says how to connect to NATS.
type NATSConfig struct {
	// URL is the server URL, or several separated by commas. Credentials in
	// it are never logged.
	URL string
	// Name is the client name shown by the server (default "symbridge").
	Name string
	// PingInterval is how often the client pings the server (default 10 s;
	// the client's 2-minute default hides a dead server for minutes).
	PingInterval time.Duration
	// MaxPingsOut is how many pings may go unanswered before the connection
	// is considered dead (default 2).
	MaxPingsOut int
	// ConnectTimeout bounds one connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// Options are applied after the bridge's own (credentials, TLS, ...);
	// they may override them.
	Options []nats.Option
	// Waiting, when set, is told the error of the failed attempts while
	// Connect waits for the first connection (on Connect's goroutine, the
	// same error possibly several times), so that a status page can say why
	// start-up is stuck. It is not called once connected.
	Waiting func(err error)
}

// Connection defaults.
const (
	DefaultClientName     = "symbridge"
	DefaultPingInterval   = 10 * time.Second
	DefaultMaxPingsOut    = 2
	DefaultConnectTimeout = 5 * time.Second
)

// Connect connects to NATS and blocks until the connection is up, retrying
// until ctx ends (a server that is down at start-up is waited for, not an
// error). A refusal that waiting will not mend stops it with the reason: the
// server rejecting the credentials (twice, as nats.go decides) or a TLS
// handshake failing on a certificate, either side's. The connection then
// reconnects forever and buffers nothing while disconnected
// (ReconnectBufSize -1): a publish made during an outage fails
// at once, visibly, instead of leaving late in the background; the bridge's
// retry with the same Msg-Id is what makes it safe. Disconnections and
// reconnections are logged; [Bridge.Ready] reports the connection state.
func Connect(ctx context.Context, cfg NATSConfig, logger *slog.Logger) (*nats.Conn, error) {
	if cfg.URL == "" {
		return nil, errors.New("bridge: NATSConfig.URL: required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultClientName
	}
	cfg.PingInterval = defaults.Positive(cfg.PingInterval, DefaultPingInterval)
	cfg.MaxPingsOut = defaults.Positive(cfg.MaxPingsOut, DefaultMaxPingsOut)
	cfg.ConnectTimeout = defaults.Positive(cfg.ConnectTimeout, DefaultConnectTimeout)
	shown := redact.URLList(cfg.URL) // the URLs as logs and errors show them
	log := logger.With("nats", shown)
	// failed carries the errors of connection attempts to the start-up wait
	// below; once connected nobody reads it and the handler drops them.
	failed := make(chan error, 1)
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(cfg.PingInterval),
		nats.MaxPingsOutstanding(cfg.MaxPingsOut),
		nats.Timeout(cfg.ConnectTimeout),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			} else {
				log.Info("disconnected from NATS")
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("NATS connection attempt failed", "err", err)
			select {
			case failed <- err:
			default:
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("NATS error", "err", err, "subject", sub.Subject)
				return
			}
			log.Error("NATS error", "err", err)
		}),
	}
	nc, err := nats.Connect(cfg.URL, append(opts, cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", shown, err)
	}

	status := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(status)
	if nc.Status() != nats.CONNECTED {
		log.Warn("NATS not reachable yet; waiting for it")
	}
	// nats.go reports the first failed attempt to the handler and later
	// ones only as LastError: watch both.
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for nc.Status() != nats.CONNECTED {
		var err error
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to NATS %s: %w", shown, ctx.Err())
		case err = <-failed:
		case <-poll.C:
			err = nc.LastError()
		case st, ok := <-status:
			if !ok || st == nats.CLOSED {
				if err := nc.LastError(); err != nil {
					return nil, fmt.Errorf("connect to NATS %s: connection closed: %w", shown, err)
				}
				return nil, fmt.Errorf("connect to NATS %s: connection closed", shown)
			}
		}
		// After a failed round LastError is ErrNoServers, which would hide
		// the cause reported before it (connection refused, no such host).
		if err != nil && cfg.Waiting != nil && !errors.Is(err, nats.ErrNoServers) {
			cfg.Waiting(err)
		}
		if err != nil && certificateRefused(err) {
			nc.Close()
			if closedAfterHandshake(err) {
				return nil, fmt.Errorf("connect to NATS %s: %w (the server probably wants a client certificate it did not get or accept)",
					shown, err)
			}
			return nil, fmt.Errorf("connect to NATS %s: %w", shown, err)
		}
	}
	return nc, nil
}

// certificateRefused reports whether a TLS handshake failed on a
// certificate: ours did not verify the server's, the server sent an alert,
// or it closed the connection right after the handshake (how a TLS 1.3
// server refuses a missing or unknown client certificate, as nats.go notes).
// Retrying with the same files cannot help. Every case but the last is
// recognised by its type.
func certificateRefused(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || remoteAlert(err) || closedAfterHandshake(err)
}

// remoteAlert reports a TLS alert received from the server. crypto/tls
// reports one over TCP only as a *net.OpError whose Op is "remote error",
// around an unexported alert type (its exported tls.AlertError is for
// QUIC): the Op field, not the error text, is the only mark there is.
func remoteAlert(err error) bool {
	var op *net.OpError
	var alert tls.AlertError
	return errors.As(err, &alert) || (errors.As(err, &op) && op.Op == "remote error")
}

// closedAfterHandshake recognises nats.go's error for a server that closed
// the connection right after a completed TLS handshake. It has no type of
// its own: nats.go wraps nats.ErrTLS around the io.EOF or reset it met, as
// it does around a handshake that failed half-way (a server going down,
// worth waiting for), so only its text tells the two apart.
func closedAfterHandshake(err error) bool {
	return errors.Is(err, nats.ErrTLS) && strings.Contains(err.Error(), "closed by remote after TLS handshake")
}

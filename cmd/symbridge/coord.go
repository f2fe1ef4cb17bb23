package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/backoff"
	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// Feed coordination (issue 12) on JetStream key-value: the instances that
// read one account's datafeed v2 with one tag agree on one feed through two
// buckets. The records bucket (datafeed.coordination.bucket) holds, per
// symphony.FeedKey, the feed they share. The claims bucket (the same name +
// "-claims") holds the exclusive claims taken around a feed's creation or
// recovery; its max age makes a claim that is not refreshed disappear by
// itself, on the server's clock, so a holder that dies blocks the others for
// one claim TTL at most.

const (
	// defaultClaimTTL is the claims bucket's max age, when symbridge creates
	// it: how long a dead holder's claim blocks the others.
	defaultClaimTTL = 10 * time.Second
	// recordHistory keeps the last few records of a key, for operators
	// (nats kv history).
	recordHistory = 5
	// coordSetupTimeout bounds opening or creating the buckets at start-up
	// (run's limit for one NATS step): a request the user may not publish is
	// dropped, and shows as no answer at all.
	coordSetupTimeout = 5 * time.Second
	// releaseTimeout bounds the deletion of a claim on release, which has no
	// context of its own.
	releaseTimeout = 2 * time.Second
	// claimPollMin and claimPollMax bound the wait between two attempts at a
	// claim that another instance holds.
	claimPollMin = 50 * time.Millisecond
	claimPollMax = 500 * time.Millisecond
)

// kvCoordConfig configures a [kvCoordinator].
type kvCoordConfig struct {
	// Bucket is the records bucket; the claims are in Bucket +
	// config.ClaimsBucketSuffix.
	Bucket string
	// Replicas of both buckets when symbridge creates them (the stream's).
	Replicas int
	// ClaimTTL is the claims bucket's max age when symbridge creates it
	// (default defaultClaimTTL; JetStream's minimum is 100ms). An existing
	// bucket keeps its own, which the claims' refresh then follows.
	ClaimTTL time.Duration
}

// kvCoordinator is a symphony.FeedCoordinator on JetStream key-value. It
// logs nothing: its errors go to DatafeedV2, which decides alone on any of
// them and says so through its own logger.
type kvCoordinator struct {
	records, claims jetstream.KeyValue
	ttl             time.Duration // the claims bucket's max age
	host            string
}

var _ symphony.FeedCoordinator = (*kvCoordinator)(nil)

// newKVCoordinator opens both buckets, creating those that are missing.
// An existing claims bucket without a max age is refused: its claims would
// never lapse.
func newKVCoordinator(ctx context.Context, js jetstream.JetStream, cfg kvCoordConfig) (*kvCoordinator, error) {
	ttl := cfg.ClaimTTL
	if ttl <= 0 {
		ttl = defaultClaimTTL
	}
	replicas := max(cfg.Replicas, 1)
	records, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "symbridge: the datafeed v2 feed shared by the instances of one bot and tag",
		History: recordHistory, Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	claimsName := cfg.Bucket + config.ClaimsBucketSuffix
	claims, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: claimsName, Description: "symbridge: claims around the creation of a shared datafeed v2 feed; they lapse unless refreshed",
		TTL: ttl, Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	st, err := claims.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("feed coordination: bucket %s: %w", claimsName, err)
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("feed coordination: bucket %s has no max age, so a claim whose holder dies would never lapse; delete the bucket (symbridge recreates it) or give it a max age", claimsName)
	}
	host, _ := os.Hostname()
	return &kvCoordinator{records: records, claims: claims, ttl: st.TTL(), host: host}, nil
}

// openBucket opens a bucket, or creates it when it is missing. Opening first
// needs only read permissions once an operator (or a first instance) has
// created the buckets, and leaves an existing bucket's settings alone.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Created meanwhile by another instance, with other settings.
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("feed coordination: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// claimHolder is the value of a claim, for operators (nats kv get).
type claimHolder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// Claim takes the claim on key, waiting while another instance holds it.
// While held, a goroutine refreshes it every third of the claim TTL; release
// stops that goroutine and deletes the claim.
func (c *kvCoordinator) Claim(ctx context.Context, key string) (release func(), err error) {
	value, err := json.Marshal(claimHolder{Host: c.host, PID: os.Getpid(), Since: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("feed coordination: claim %s: %w", key, err)
	}
	bo := backoff.New(backoff.Config{MaxAttempts: -1, Initial: claimPollMin, Multiplier: 2, Max: min(claimPollMax, c.ttl/4)})
	for {
		rev, err := c.claims.Create(ctx, key, value)
		switch {
		case err == nil:
			return c.hold(key, value, rev), nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("feed coordination: claim %s: %w", key, ctx.Err())
		case !casConflict(err):
			return nil, fmt.Errorf("feed coordination: claim %s: %w", key, err)
		}
		// Held by another instance (or just taken by one after a release):
		// try again until it is released or lapses.
		if err := bo.Wait(ctx, 0); err != nil {
			return nil, fmt.Errorf("feed coordination: claim %s: %w", key, err)
		}
	}
}

// casConflict: the key exists, or its revision changed (JetStream's "wrong
// last sequence", 10071, or 10164 on replicated streams).
func casConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// hold starts the refresh of a claim just taken at revision rev and returns
// its release.
func (c *kvCoordinator) hold(key string, value []byte, rev uint64) func() {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	lost := false // written by the goroutine only, read after done
	go func() {
		defer close(done)
		every := c.ttl / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			uctx, cancel := context.WithTimeout(ctx, every)
			r, err := c.claims.Update(uctx, key, value, rev)
			cancel()
			switch {
			case err == nil:
				rev = r
			case casConflict(err):
				// Lapsed (this process stalled longer than the TTL) and
				// perhaps taken by another instance: nothing left to hold.
				lost = true
				return
			}
			// Other errors (NATS unreachable for a moment): try again at
			// the next tick, the claim lasts a full TTL from the last one.
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			<-done
			if lost {
				return
			}
			// Best effort: a claim not deleted lapses within the TTL.
			dctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			defer cancel()
			_ = c.claims.Delete(dctx, key, jetstream.LastRevision(rev))
		})
	}
}

// Recorded returns the record under key; a zero record when there is none.
func (c *kvCoordinator) Recorded(ctx context.Context, key string) (symphony.FeedRecord, error) {
	e, err := c.records.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return symphony.FeedRecord{}, nil
	}
	if err != nil {
		return symphony.FeedRecord{}, fmt.Errorf("feed coordination: record %s: %w", key, err)
	}
	var rec symphony.FeedRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return symphony.FeedRecord{}, fmt.Errorf("feed coordination: record %s (revision %d): %w", key, e.Revision(), err)
	}
	return rec, nil
}

// Record records rec under key.
func (c *kvCoordinator) Record(ctx context.Context, key string, rec symphony.FeedRecord) error {
	b, err := json.Marshal(rec)
	if err == nil {
		_, err = c.records.Put(ctx, key, b)
	}
	if err != nil {
		return fmt.Errorf("feed coordination: record %s: %w", key, err)
	}
	return nil
}

// coordinates reports whether run coordinates its feed: datafeed v2 with
// datafeed.coordination.enabled.
func coordinates(cfg *config.Config) bool {
	return cfg.Bridge.Source == "datafeed" && cfg.Datafeed.Version == "v2" && cfg.Datafeed.Coordination.Enabled
}

// feedCoordinator is run's coordinator when coordinates(cfg): nil when the
// buckets cannot be opened or created, which is logged in one warning; the
// feed is then decided alone, as without coordination. The error is ctx's
// only: run is stopping.
func feedCoordinator(ctx context.Context, cfg *config.Config, js jetstream.JetStream, logger *slog.Logger) (symphony.FeedCoordinator, error) {
	return feedCoordinatorWithin(ctx, cfg, js, logger, coordSetupTimeout)
}

func feedCoordinatorWithin(ctx context.Context, cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, timeout time.Duration) (symphony.FeedCoordinator, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := newKVCoordinator(sctx, js, kvCoordConfig{Bucket: cfg.Datafeed.Coordination.Bucket, Replicas: cfg.NATS.Stream.Replicas})
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	logger.Warn("datafeed.coordination: cannot use the key-value buckets; this instance decides alone which feed to read, so instances that start together or recover from a 400 together may each create a feed and read copies of every event (grant the permissions in docs/security.md, or set datafeed.coordination.enabled false)",
		"bucket", cfg.Datafeed.Coordination.Bucket, "err", withPermissionCause(err, js.Conn()))
	return nil, nil
}

// withPermissionCause adds to a request that timed out the permission
// violation the server reported meanwhile, if any: a request to a subject
// the user may not publish to is dropped and never answered.
func withPermissionCause(err error, nc *nats.Conn) error {
	if nc == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w (%v)", err, last)
	}
	return err
}

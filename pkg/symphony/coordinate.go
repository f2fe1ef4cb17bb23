package symphony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// FeedCoordinator lets several instances that read one account's datafeed
// v2 with one tag agree on one feed. Without it each instance that finds no
// feed at start-up, or that recovers from a 400, creates a feed of its own,
// and every feed of the account receives a full copy of every event: N
// instances then read N copies (finos/symphony-bdk-java#782).
//
// The coordinator holds, per key ([FeedKey]), an exclusive claim that lapses
// by itself when its holder dies, and a record of the feed the instances
// share. pkg/symphony depends on nothing behind it; cmd/symbridge backs it
// with a JetStream key-value bucket.
//
// Any error other than the context's makes [DatafeedV2] do that one step on
// its own, as it would without a coordinator: correct, only less efficient.
type FeedCoordinator interface {
	// Claim blocks until this instance holds the claim on key, or ctx ends.
	// The claim lapses by itself (within seconds) if this process dies
	// holding it. release gives it back; it is safe to call once, with the
	// claim lapsed or not.
	Claim(ctx context.Context, key string) (release func(), err error)
	// Recorded returns the feed recorded under key; a zero FeedRecord and a
	// nil error when none is.
	Recorded(ctx context.Context, key string) (FeedRecord, error)
	// Record records rec under key. DatafeedV2 calls it only while it holds
	// the claim on key.
	Record(ctx context.Context, key string, rec FeedRecord) error
}

// FeedRecord is the feed that the instances of one account and tag share.
type FeedRecord struct {
	ID string `json:"id"`
	// Created is no earlier than the feed's creation, on the clock of the
	// instance that recorded it: the time its create call returned, or the
	// time it adopted a feed it found. A feed left for this one is drained
	// until it hands out events stamped after Created (plus a margin for
	// clocks), so an upper bound errs on the safe side.
	Created time.Time `json:"created"`
}

// FeedKey is the coordination key of the datafeed v2 feed of one account:
// pod, bot username and tag, hashed, because a tag holds up to 100 arbitrary
// characters and a key-value key does not. It is made of [0-9a-f] only.
func FeedKey(pod, username, tag string) string {
	h := sha256.New()
	for _, s := range []string{pod, username, tag} {
		// Length-prefixed: ("a", "bc") and ("ab", "c") must not meet.
		var n [8]byte
		for i, l := 0, uint64(len(s)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

package symphonytest

import (
	"context"
	"sync"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// Coordinator is an in-memory [symphony.FeedCoordinator] for tests: several
// DatafeedV2 of one test share it as instances share symbridge's JetStream
// bucket. Its claim lapses only when released (a test that wants a dead
// holder simply never releases and calls [Coordinator.Lapse]). Set Err to
// make every call fail, as an unreachable bucket does.
type Coordinator struct {
	mu      sync.Mutex
	records map[string]symphony.FeedRecord
	held    map[string]chan struct{} // closed on release
	err     error
	claims  int
}

// NewCoordinator returns an empty coordinator.
func NewCoordinator() *Coordinator {
	return &Coordinator{records: map[string]symphony.FeedRecord{}, held: map[string]chan struct{}{}}
}

// SetErr makes every later call fail with err (nil: work again).
func (c *Coordinator) SetErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Claims is the number of claims granted so far.
func (c *Coordinator) Claims() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims
}

// Claim implements [symphony.FeedCoordinator].
func (c *Coordinator) Claim(ctx context.Context, key string) (func(), error) {
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		ch, busy := c.held[key]
		if !busy {
			ch = make(chan struct{})
			c.held[key] = ch
			c.claims++
			c.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { c.release(key, ch) }) }, nil
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Coordinator) release(key string, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key] == ch {
		delete(c.held, key)
		close(ch)
	}
}

// Recorded implements [symphony.FeedCoordinator].
func (c *Coordinator) Recorded(_ context.Context, key string) (symphony.FeedRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return symphony.FeedRecord{}, c.err
	}
	return c.records[key], nil
}

// Record implements [symphony.FeedCoordinator].
func (c *Coordinator) Record(_ context.Context, key string, rec symphony.FeedRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.records[key] = rec
	return nil
}

// Records returns a copy of every record, by key.
func (c *Coordinator) Records() map[string]symphony.FeedRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]symphony.FeedRecord, len(c.records))
	for k, v := range c.records {
		out[k] = v
	}
	return out
}

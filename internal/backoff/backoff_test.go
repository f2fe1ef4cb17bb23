package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextGrowsToMaxAndResets(t *testing.T) {
	b := New(Config{MaxAttempts: -1, Initial: 10 * time.Millisecond, Multiplier: 3, Max: 50 * time.Millisecond})
	want := []time.Duration{10, 30, 50, 50}
	for i, w := range want {
		d, err := b.Next()
		if err != nil || d != w*time.Millisecond {
			t.Fatalf("wait %d = %s, %v; want %s", i, d, err, w*time.Millisecond)
		}
	}
	if b.Attempts() != len(want) {
		t.Errorf("Attempts() = %d, want %d", b.Attempts(), len(want))
	}
	b.Reset()
	if d, _ := b.Next(); d != 10*time.Millisecond || b.Attempts() != 1 {
		t.Errorf("after Reset: wait %s, %d attempts; want 10ms, 1", d, b.Attempts())
	}
}

func TestMaxAttempts(t *testing.T) {
	b := New(Config{MaxAttempts: 3, Initial: time.Millisecond, Multiplier: 2, Max: time.Second})
	for i := range 2 {
		if _, err := b.Next(); err != nil {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := b.Next(); !errors.Is(err, ErrExhausted) {
		t.Errorf("third failure: %v, want ErrExhausted", err)
	}
}

func TestWaitHonoursMinAndContext(t *testing.T) {
	b := New(Config{MaxAttempts: -1, Initial: time.Millisecond, Multiplier: 2, Max: time.Second})
	start := time.Now()
	if err := b.Wait(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("waited %s, want at least the 30ms minimum", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on an ended context: %v, want context.Canceled", err)
	}
}

package dedupe

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock for TTL tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

func newWithClock(maxEntries int, ttl time.Duration) (*Set, *clock) {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s := New(maxEntries, ttl)
	s.now = c.now
	return s, c
}

func id(i int) string { return "sb1-i-" + strconv.Itoa(i) }

func TestSeenAfterMark(t *testing.T) {
	s := New(10, 0)
	if s.Seen("a") {
		t.Fatal("empty set has seen a")
	}
	s.Mark("a", "b")
	s.Mark()
	for _, x := range []string{"a", "b"} {
		if !s.Seen(x) {
			t.Errorf("Seen(%q) = false after Mark", x)
		}
	}
	if s.Seen("c") {
		t.Error("Seen(c) = true, never marked")
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}
}

func TestEvictsOldestWhenFull(t *testing.T) {
	const n = 100
	s := New(n, 0)
	for i := range 3 * n {
		s.Mark(id(i))
		if s.Len() > n {
			t.Fatalf("Len() = %d after %d marks, bound %d", s.Len(), i+1, n)
		}
	}
	for i := range 3 * n {
		if want := i >= 2*n; s.Seen(id(i)) != want {
			t.Errorf("Seen(%s) = %v, want %v", id(i), !want, want)
		}
	}
}

// TestMarkAgainMovesToBack: an id marked again outlives ids marked after its
// first mark, its stale slot is skipped, and the bound still holds.
func TestMarkAgainMovesToBack(t *testing.T) {
	s := New(4, 0)
	s.Mark("a", "b", "c")
	s.Mark("a") // ring: a(stale) b c a
	s.Mark("d") // full: pops the stale a, which must not forget a
	if !s.Seen("a") || s.Len() != 4 {
		t.Fatalf("after popping a stale slot: Seen(a)=%v Len()=%d, want true 4", s.Seen("a"), s.Len())
	}
	s.Mark("e") // pops b, the oldest live id
	want := map[string]bool{"a": true, "b": false, "c": true, "d": true, "e": true}
	for x, w := range want {
		if s.Seen(x) != w {
			t.Errorf("Seen(%q) = %v, want %v", x, !w, w)
		}
	}
	s.Mark("a", "a", "a", "a", "a") // re-marks on a full set: a stays, the bound holds
	if !s.Seen("a") || s.Len() > 4 {
		t.Errorf("after re-marks: Seen(a)=%v Len()=%d, want true <= 4", s.Seen("a"), s.Len())
	}
}

func TestTTL(t *testing.T) {
	s, c := newWithClock(100, time.Minute)
	s.Mark("old")
	c.add(40 * time.Second)
	s.Mark("new")
	c.add(20 * time.Second) // old is exactly one TTL old: still remembered
	if !s.Seen("old") {
		t.Error("Seen(old) = false at exactly the TTL")
	}
	c.add(time.Nanosecond)
	if s.Seen("old") {
		t.Error("Seen(old) = true past the TTL")
	}
	if !s.Seen("new") {
		t.Error("Seen(new) = false within the TTL")
	}
	s.Mark("newer") // drops old from memory
	if s.Len() != 2 {
		t.Errorf("Len() = %d after the expired id was dropped, want 2", s.Len())
	}
	c.add(time.Hour)
	if s.Seen("new") || s.Seen("newer") {
		t.Error("ids seen an hour past the TTL")
	}
	s.Mark("x")
	if s.Len() != 1 {
		t.Errorf("Len() = %d, want 1 (expired ids dropped on Mark)", s.Len())
	}
}

func TestTTLRefreshedByMark(t *testing.T) {
	s, c := newWithClock(100, time.Minute)
	s.Mark("a", "b")
	c.add(50 * time.Second)
	s.Mark("a")
	c.add(50 * time.Second)
	s.Mark("c") // b expired; a's stale slot is dropped, a itself kept
	if !s.Seen("a") || s.Seen("b") {
		t.Errorf("Seen(a)=%v Seen(b)=%v, want true false", s.Seen("a"), s.Seen("b"))
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}
}

func TestNoTTLNeverExpires(t *testing.T) {
	s, c := newWithClock(10, 0)
	s.Mark("a")
	c.add(1000 * time.Hour)
	if !s.Seen("a") {
		t.Error("Seen(a) = false without a TTL")
	}
}

func TestDefaults(t *testing.T) {
	s := New(0, -time.Second)
	if s.max != DefaultMaxEntries || s.ttl != 0 {
		t.Errorf("New(0, -1s): max %d ttl %v, want %d and no TTL", s.max, s.ttl, DefaultMaxEntries)
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	s.Mark("a")
	if s.Seen("a") || s.Len() != 0 || s.Bytes() != 0 {
		t.Error("a nil Set remembered something")
	}
}

func TestBytes(t *testing.T) {
	const n = 10000
	s := New(n, 0)
	empty := s.Bytes()
	ids := make([]string, 2*n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sb1-i-%044d", i) // 50 bytes, like the bridge's ids
	}
	s.Mark(ids[:n/2]...)
	half := s.Bytes()
	s.Mark(ids[n/2 : n]...)
	full := s.Bytes()
	if !(empty < half && half < full) {
		t.Errorf("Bytes() empty %d, half %d, full %d: want increasing", empty, half, full)
	}
	// At least a 16-byte digest and a mark time per id; at most 100 bytes
	// per id whatever the id's length (the Set stores no id bytes).
	if lo, hi := int64(n*(16+8)), int64(n*100); full < lo || full > hi {
		t.Errorf("Bytes() = %d for %d ids, want within [%d, %d]", full, n, lo, hi)
	}
	s.Mark(ids[n:]...) // evicts all of the first half: the estimate stays bounded
	if got := s.Bytes(); got > full {
		t.Errorf("Bytes() = %d after eviction, want <= %d", got, full)
	}
}

// TestBytesMatchesHeap: the estimate is close to what a full default Set
// really takes on the heap, so that the bridge's memory budget can rely on it.
func TestBytesMatchesHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a default-size Set")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(0, time.Hour)
	for i := range DefaultMaxEntries + DefaultMaxEntries/2 { // full, then evicting
		s.Mark(fmt.Sprintf("sb1-i-%043d", i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	est := s.Bytes()
	if heap < est/2 || heap > est*3/2 {
		t.Errorf("full default Set: Bytes() = %d, heap grew by %d: estimate off by more than half", est, heap)
	}
	t.Logf("full default Set: Bytes() = %d, heap grew by %d", est, heap)
	if full := FullBytes(0); est != full {
		t.Errorf("full default Set: Bytes() = %d, FullBytes(0) = %d", est, full)
	}
	if est > 20<<20 {
		t.Errorf("full default Set: Bytes() = %d, want at most 20 MiB", est)
	}
	runtime.KeepAlive(s)
}

// TestIDsOfAnyLength: ids longer than the stack buffer that keyOf hashes
// from, and ids differing only in their last byte, are told apart.
func TestIDsOfAnyLength(t *testing.T) {
	s := New(100, 0)
	long := strings.Repeat("x", 1000)
	s.Mark(long+"a", "", "sb1-i-"+strings.Repeat("A", 43))
	for x, want := range map[string]bool{
		long + "a": true, long + "b": false, long: false, "": true,
		"sb1-i-" + strings.Repeat("A", 43): true, "sb1-h-" + strings.Repeat("A", 43): false,
	} {
		if s.Seen(x) != want {
			t.Errorf("Seen(%.20q... len %d) = %v, want %v", x, len(x), !want, want)
		}
	}
}

// TestConcurrent exercises Seen and Mark from several goroutines (run with
// -race); the bound holds and every id marked last is still seen.
func TestConcurrent(t *testing.T) {
	const (
		workers = 8
		per     = 2000
		bound   = 4 * per
	)
	s := New(bound, time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				x := id(w*per + i)
				if s.Seen(x) {
					t.Errorf("Seen(%s) before any Mark", x)
					return
				}
				s.Mark(x)
				if !s.Seen(x) && s.Len() < bound {
					t.Errorf("Seen(%s) = false right after Mark", x)
					return
				}
				_ = s.Bytes()
			}
		}()
	}
	wg.Wait()
	if s.Len() != bound {
		t.Errorf("Len() = %d, want the bound %d", s.Len(), bound)
	}
}

func BenchmarkSet(b *testing.B) {
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = fmt.Sprintf("sb1-i-%044d", i)
	}
	b.Run("Mark", func(b *testing.B) {
		s := New(DefaultMaxEntries, 35*time.Minute)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Mark(ids[i%len(ids)])
			i++
		}
	})
	b.Run("Seen", func(b *testing.B) {
		s := New(DefaultMaxEntries, 35*time.Minute)
		s.Mark(ids[:DefaultMaxEntries]...)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = s.Seen(ids[i%(2*DefaultMaxEntries)])
			i++
		}
	})
	b.Run("SeenParallel", func(b *testing.B) {
		s := New(DefaultMaxEntries, 35*time.Minute)
		s.Mark(ids[:DefaultMaxEntries]...)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = s.Seen(ids[i%(2*DefaultMaxEntries)])
				i++
			}
		})
	})
}

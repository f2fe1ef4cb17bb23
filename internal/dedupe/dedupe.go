package dedupe

import (
	"sync"
	"time"
)

// DefaultMaxEntries is the bound New uses when given maxEntries <= 0:
// 256 Ki ids, about 30 MiB with the bridge's 50-byte message ids.
const DefaultMaxEntries = 256 << 10

// Memory estimate per entry, used by [Set.Bytes]: a map slot (16-byte key
// header, 16-byte value, ~8 bytes of bucket overhead, at Go's load factor)
// plus a ring slot (16-byte string header, 8-byte sequence).
const (
	mapEntryBytes  = 48
	ringEntryBytes = 24
	setBaseBytes   = 128
)

type entry struct {
	seq uint64 // matches the ring slot that owns the id
	at  int64  // when it was marked, unix nanoseconds
}

type slot struct {
	id  string
	seq uint64
}

// Set is a bounded set of recently stored message ids. When full it forgets
// the id marked longest ago (FIFO by mark time; marking an id again moves it
// to the back). With a TTL, an id marked longer ago than the TTL counts as
// absent. A Set is safe for concurrent use; a nil *Set is a valid, empty set
// that remembers nothing (dedupe disabled).
type Set struct {
	max int
	ttl time.Duration
	now func() time.Time // injectable clock (tests)

	mu      sync.RWMutex
	ids     map[string]entry
	ring    []slot // FIFO of marks, oldest at head; grows up to max
	head    int    // index of the oldest slot
	size    int    // slots in use, live or stale
	seq     uint64
	idBytes int64 // sum of the lengths of the ids in ids
}

// New returns a Set that remembers at most maxEntries ids (<= 0 means
// [DefaultMaxEntries]) and, when ttl > 0, treats ids marked longer ago than
// ttl as absent. Memory grows with use, up to the bound.
func New(maxEntries int, ttl time.Duration) *Set {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &Set{
		max: maxEntries,
		ttl: max(ttl, 0),
		now: time.Now,
		ids: make(map[string]entry),
	}
}

// Seen reports whether id was marked and is still remembered (not evicted,
// not older than the TTL).
func (s *Set) Seen(id string) bool {
	if s == nil {
		return false
	}
	var now int64
	if s.ttl > 0 {
		now = s.now().UnixNano()
	}
	s.mu.RLock()
	e, ok := s.ids[id]
	s.mu.RUnlock()
	return ok && !s.expired(e.at, now)
}

// Mark remembers ids as stored. Call it only after each id's publish-ack:
// see the package documentation. The Set keeps the strings; pass ids that do
// not point into a larger buffer (such as a response body), or the whole
// buffer stays in memory.
func (s *Set) Mark(ids ...string) {
	if s == nil || len(ids) == 0 {
		return
	}
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpired(now)
	for _, id := range ids {
		if s.size == s.max {
			s.popHead()
		}
		s.seq++
		// An id marked again leaves its older slot stale: popHead skips it
		// by seq, so the id lives on from its latest mark.
		if _, ok := s.ids[id]; !ok {
			s.idBytes += int64(len(id))
		}
		s.ids[id] = entry{seq: s.seq, at: now}
		s.push(slot{id: id, seq: s.seq})
	}
}

// Len returns the number of ids remembered, including any past the TTL that
// have not been dropped yet (they are dropped on the next Mark).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ids)
}

// Bytes estimates the memory the Set holds, in bytes, to count it against the
// bridge's memory budget. It is an estimate: Go's map overhead varies.
func (s *Set) Bytes() int64 {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return setBaseBytes + int64(len(s.ids))*mapEntryBytes + int64(cap(s.ring))*ringEntryBytes + s.idBytes
}

func (s *Set) expired(at, now int64) bool {
	return s.ttl > 0 && now-at > int64(s.ttl)
}

// dropExpired pops expired ids from the head; marks are in time order, so
// the first live one ends the scan.
func (s *Set) dropExpired(now int64) {
	if s.ttl <= 0 {
		return
	}
	for s.size > 0 {
		sl := s.ring[s.head]
		e, live := s.ids[sl.id]
		if live && e.seq == sl.seq && !s.expired(e.at, now) {
			return
		}
		s.popHead()
	}
}

// popHead removes the oldest slot, and its id unless the id was marked again
// later (then the slot is stale).
func (s *Set) popHead() {
	sl := s.ring[s.head]
	s.ring[s.head] = slot{}
	s.head = (s.head + 1) % len(s.ring)
	s.size--
	if e, ok := s.ids[sl.id]; ok && e.seq == sl.seq {
		delete(s.ids, sl.id)
		s.idBytes -= int64(len(sl.id))
	}
}

// push appends a slot at the tail, growing the ring (doubling, up to max)
// when it is full. The caller has made room when size == max.
func (s *Set) push(sl slot) {
	if s.size == len(s.ring) {
		n := min(max(2*len(s.ring), 1024), s.max)
		ring := make([]slot, n)
		for i := range s.size {
			ring[i] = s.ring[(s.head+i)%len(s.ring)]
		}
		s.ring, s.head = ring, 0
	}
	s.ring[(s.head+s.size)%len(s.ring)] = sl
	s.size++
}

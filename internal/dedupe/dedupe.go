package dedupe

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/symbridge/symbridge/internal/defaults"
)

// DefaultMaxEntries is the bound New uses when given maxEntries <= 0:
// 256 Ki ids, about 16 MiB when full (see [Set.Bytes]).
const DefaultMaxEntries = 256 << 10

// Memory estimate per entry, used by [Set.Bytes]. A map slot is a 16-byte
// key, a 4-byte sequence number and a control byte; Go's maps fill their
// tables to between 7/16 and 7/8, so about 40 bytes per id (measured:
// TestBytesMatchesHeap). A ring slot is the key again and the mark time.
const (
	mapEntryBytes  = 40
	ringEntryBytes = 24
	setBaseBytes   = 128
)

// key is a fixed-size digest of an id: the first 16 bytes of its SHA-256.
// Fixed-size keys and no pointers keep the Set compact (no string headers,
// no id bytes) and invisible to the garbage collector, which would otherwise
// rescan hundreds of thousands of strings on every cycle. Two distinct ids
// share a key with probability about n²/2¹²⁹ (n ids remembered): a shared
// key would skip one publish, and JetStream's duplicate window does not
// depend on the Set, but at 2¹⁸ ids that is below 10⁻²⁸.
type key [16]byte

func keyOf(id string) key {
	// A stack copy spares the conversion's allocation for ids of usual size
	// (the bridge's are 49 bytes).
	var buf [128]byte
	var b []byte
	if len(id) <= len(buf) {
		b = buf[:copy(buf[:], id)]
	} else {
		b = []byte(id)
	}
	sum := sha256.Sum256(b)
	return key(sum[:16])
}

// slot is one mark in the ring. Its sequence number is implicit: the ring
// holds consecutive sequence numbers from headSeq on.
type slot struct {
	k  key
	at int64 // when it was marked, unix nanoseconds
}

// Set is a bounded set of recently stored message ids. When full it forgets
// the id marked longest ago (FIFO by mark time; marking an id again moves it
// to the back). With a TTL, an id marked longer ago than the TTL counts as
// absent. A Set is safe for concurrent use; a nil *Set is a valid, empty set
// that remembers nothing (dedupe disabled).
//
// It stores a 16-byte digest of each id, not the id (see key), in
// pointer-free memory.
type Set struct {
	max int
	ttl time.Duration
	now func() time.Time // injectable clock (tests)

	mu      sync.RWMutex
	ids     map[key]uint32 // digest -> sequence number of its latest mark
	ring    []slot         // FIFO of marks, oldest at head; grows up to max
	head    int            // index of the oldest slot
	size    int            // slots in use, live or stale
	headSeq uint32         // sequence number of ring[head]; wraps harmlessly
	peak    int            // most ids ever held: Go maps do not shrink
}

// New returns a Set that remembers at most maxEntries ids (<= 0 means
// [DefaultMaxEntries]) and, when ttl > 0, treats ids marked longer ago than
// ttl as absent. Memory grows with use, up to the bound.
func New(maxEntries int, ttl time.Duration) *Set {
	return &Set{
		max: defaults.Positive(maxEntries, DefaultMaxEntries),
		ttl: max(ttl, 0),
		now: time.Now,
		ids: make(map[key]uint32),
	}
}

// Seen reports whether id was marked and is still remembered (not evicted,
// not older than the TTL).
func (s *Set) Seen(id string) bool {
	if s == nil {
		return false
	}
	k := keyOf(id)
	var now int64
	if s.ttl > 0 {
		now = s.now().UnixNano()
	}
	s.mu.RLock()
	seq, ok := s.ids[k]
	var at int64
	if ok && s.ttl > 0 {
		at = s.ring[s.pos(seq)].at
	}
	s.mu.RUnlock()
	return ok && !s.expired(at, now)
}

// Mark remembers ids as stored. Call it only after each id's publish-ack:
// see the package documentation. The Set keeps no reference to the strings.
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
		k := keyOf(id)
		// An id marked again leaves its older slot stale: popHead skips it
		// by sequence number, so the id lives on from its latest mark.
		s.ids[k] = s.headSeq + uint32(s.size)
		s.push(slot{k: k, at: now})
	}
	s.peak = max(s.peak, len(s.ids))
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
// bridge's memory budget. It is an estimate: Go's map overhead varies. The
// map part follows the most ids ever held, since Go maps keep their tables
// when entries are deleted.
func (s *Set) Bytes() int64 {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return setBaseBytes + int64(s.peak)*mapEntryBytes + int64(cap(s.ring))*ringEntryBytes
}

// FullBytes is what [Set.Bytes] reports for a full Set of maxEntries ids
// (<= 0 means [DefaultMaxEntries]): the most memory such a Set takes, for
// sizing a memory budget before any id is marked.
func FullBytes(maxEntries int) int64 {
	maxEntries = defaults.Positive(maxEntries, DefaultMaxEntries)
	return setBaseBytes + int64(maxEntries)*(mapEntryBytes+ringEntryBytes)
}

// pos is the ring index of the slot with sequence number seq, which must be
// in the ring.
func (s *Set) pos(seq uint32) int {
	return (s.head + int(seq-s.headSeq)) % len(s.ring)
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
		seq, live := s.ids[sl.k]
		if live && seq == s.headSeq && !s.expired(sl.at, now) {
			return
		}
		s.popHead()
	}
}

// popHead removes the oldest slot, and its id unless the id was marked again
// later (then the slot is stale).
func (s *Set) popHead() {
	sl := s.ring[s.head]
	if seq, ok := s.ids[sl.k]; ok && seq == s.headSeq {
		delete(s.ids, sl.k)
	}
	s.head = (s.head + 1) % len(s.ring)
	s.headSeq++
	s.size--
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

package cache

import "sync"

// Bounded is a map of at most Max entries. When a new key would pass the
// bound the oldest inserted entry is evicted (first in, first out: the
// entries it holds — tokens, access decisions — age out in about the order
// they were made). Replacing an existing key's value keeps its place.
type Bounded[K comparable, V any] struct {
	max int

	mu   sync.RWMutex
	m    map[K]slot[V]
	ring []ringEntry[K] // insertion order; ring[head] is the oldest
	head int
	seq  uint64
}

type slot[V any] struct {
	v   V
	seq uint64
}

type ringEntry[K comparable] struct {
	k   K
	seq uint64
}

// NewBounded returns a Bounded of at most max entries (at least 1).
func NewBounded[K comparable, V any](max int) *Bounded[K, V] {
	max = maxOf(max, 1)
	return &Bounded[K, V]{max: max, m: make(map[K]slot[V]), ring: make([]ringEntry[K], 0, min(max, 1024))}
}

// Get returns the value stored under k.
func (c *Bounded[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	s, ok := c.m[k]
	c.mu.RUnlock()
	return s.v, ok
}

// Put stores v under k, evicting the oldest entries while the map is full.
func (c *Bounded[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[k]; ok {
		c.m[k] = slot[V]{v: v, seq: s.seq}
		return
	}
	for len(c.m) >= c.max {
		c.evictOldest()
	}
	c.seq++
	c.m[k] = slot[V]{v: v, seq: c.seq}
	c.push(ringEntry[K]{k: k, seq: c.seq})
}

// Delete removes k.
func (c *Bounded[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// Clear removes every entry.
func (c *Bounded[K, V]) Clear() {
	c.mu.Lock()
	clear(c.m)
	c.ring, c.head = c.ring[:0], 0
	c.mu.Unlock()
}

// Len is the number of entries.
func (c *Bounded[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// push appends to the ring. When the ring holds twice the bound (entries
// of deleted keys linger until evicted) it keeps only live entries; when
// its consumed head is large it moves the rest to the front.
func (c *Bounded[K, V]) push(e ringEntry[K]) {
	if len(c.ring)-c.head >= 2*c.max {
		live := c.ring[:0]
		for _, r := range c.ring[c.head:] {
			if s, ok := c.m[r.k]; ok && s.seq == r.seq {
				live = append(live, r)
			}
		}
		clear(c.ring[len(live):])
		c.ring, c.head = live, 0
	} else if c.head > 0 && c.head >= len(c.ring)/2 {
		n := copy(c.ring, c.ring[c.head:])
		clear(c.ring[n:])
		c.ring, c.head = c.ring[:n], 0
	}
	c.ring = append(c.ring, e)
}

// evictOldest removes the oldest entry still present. A ring entry whose
// key was deleted (or deleted and inserted again, with a newer sequence)
// is skipped. Every map entry has a live ring entry, so this terminates
// when the map is not empty.
func (c *Bounded[K, V]) evictOldest() {
	for c.head < len(c.ring) {
		e := c.ring[c.head]
		var zero ringEntry[K]
		c.ring[c.head] = zero
		c.head++
		if s, ok := c.m[e.k]; ok && s.seq == e.seq {
			delete(c.m, e.k)
			return
		}
	}
}

// maxOf is max for the constructor, whose parameter shadows the builtin.
func maxOf(a, b int) int {
	if a > b {
		return a
	}
	return b
}

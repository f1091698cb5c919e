package fakes

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/ports"
)

// Clock is a settable clock; tests move it instead of sleeping.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ ports.Clock = (*Clock)(nil)

// NewClock returns a clock stopped at t (a fixed date when t is zero).
func NewClock(t time.Time) *Clock {
	if t.IsZero() {
		t = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	return &Clock{now: t}
}

// Now implements [ports.Clock].
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// IDs mints deterministic UUIDs (…0001, …0002, …) so tests can name them.
type IDs struct {
	mu sync.Mutex
	n  uint64
}

var _ ports.IDs = (*IDs)(nil)

// NewID implements [ports.IDs].
func (g *IDs) NewID() string {
	g.mu.Lock()
	g.n++
	n := g.n
	g.mu.Unlock()
	var b uuid.UUID
	for i := 0; i < 8; i++ {
		b[15-i] = byte(n >> (8 * i))
	}
	b[6] = 0x70 | b[6]&0x0f // version 7 layout, deterministic payload
	b[8] = 0x80 | b[8]&0x3f
	return b.String()
}

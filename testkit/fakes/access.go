package fakes

import (
	"context"
	"sync/atomic"

	"github.com/gpuaas/gpuaas/ports"
)

// AccessChanges is an in-memory [ports.AccessChanges]: the generation
// starts at 1 and moves on Bump and Announce; Disconnect makes it 0 (the
// feed is down: nothing may be cached) until Connect.
type AccessChanges struct {
	gen  atomic.Uint64
	down atomic.Bool
}

var _ ports.AccessChanges = (*AccessChanges)(nil)

// NewAccessChanges returns a connected feed at generation 1.
func NewAccessChanges() *AccessChanges {
	a := &AccessChanges{}
	a.gen.Store(1)
	return a
}

// Generation implements [ports.AccessChanges].
func (a *AccessChanges) Generation() uint64 {
	if a.down.Load() {
		return 0
	}
	return a.gen.Load()
}

// Announce implements [ports.AccessChanges].
func (a *AccessChanges) Announce(context.Context) error { a.Bump(); return nil }

// Bump records a change, as a row change's notification would.
func (a *AccessChanges) Bump() { a.gen.Add(1) }

// Disconnect makes the feed unknown (0); Connect restores it with a new
// generation (changes may have been missed meanwhile).
func (a *AccessChanges) Disconnect() { a.down.Store(true) }

// Connect ends Disconnect.
func (a *AccessChanges) Connect() { a.gen.Add(1); a.down.Store(false) }

// Package system provides the production clock and id generator.
package system

import (
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/ports"
)

// Clock is the wall clock.
type Clock struct{}

var _ ports.Clock = Clock{}

// Now implements [ports.Clock].
func (Clock) Now() time.Time { return time.Now() }

// UUIDs mints UUIDv7 ids: time-ordered, so indexes stay compact.
type UUIDs struct{}

var _ ports.IDs = UUIDs{}

// NewID implements [ports.IDs].
func (UUIDs) NewID() string { return uuid.Must(uuid.NewV7()).String() }

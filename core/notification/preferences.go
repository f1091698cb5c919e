package notification

import "github.com/gpuaas/gpuaas/core/fault"

// Channel is a way a notification reaches a person. The inbox (and its
// live stream) always gets every enabled notification: it is the record.
// Email can be turned off per kind.
type Channel string

const (
	ChannelInbox Channel = "inbox"
	ChannelEmail Channel = "email"
)

// Preferences are one user's channel choices: Email[kind] false turns the
// email of that kind off; a kind not named keeps its default (on).
type Preferences struct {
	Email map[Kind]bool
}

// EmailOn reports whether the user wants email for kind.
func (p Preferences) EmailOn(k Kind) bool {
	on, set := p.Email[k]
	return !set || on
}

// Validate checks that every kind named is known.
func (p Preferences) Validate() error {
	for k := range p.Email {
		if !k.Valid() {
			return fault.Invalid("email", "unknown notification kind "+string(k))
		}
	}
	return nil
}

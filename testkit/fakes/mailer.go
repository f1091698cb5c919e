package fakes

import (
	"context"
	"sync"

	"github.com/gpuaas/gpuaas/ports"
)

// Mailer records messages instead of sending them.
type Mailer struct {
	mu   sync.Mutex
	sent []ports.Mail
	// Fail, when set, is returned by Send instead of sending.
	Fail error
}

var _ ports.Mailer = (*Mailer)(nil)

// Send implements [ports.Mailer].
func (m *Mailer) Send(_ context.Context, mail ports.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.sent = append(m.sent, mail)
	return nil
}

// SetFail makes Send fail with err (nil: succeed again).
func (m *Mailer) SetFail(err error) {
	m.mu.Lock()
	m.Fail = err
	m.mu.Unlock()
}

// Sent returns a copy of what was sent.
func (m *Mailer) Sent() []ports.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]ports.Mail(nil), m.sent...)
}

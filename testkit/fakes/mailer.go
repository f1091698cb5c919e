package fakes

import (
	"context"
	"sync"

	"github.com/gpuaas/gpuaas/ports"
)

// Mail is one message the fake mailer "sent".
type Mail struct{ To, Subject, Body string }

// Mailer records messages instead of sending them.
type Mailer struct {
	mu   sync.Mutex
	sent []Mail
}

var _ ports.Mailer = (*Mailer)(nil)

// Send implements [ports.Mailer].
func (m *Mailer) Send(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	m.sent = append(m.sent, Mail{to, subject, body})
	m.mu.Unlock()
	return nil
}

// Sent returns a copy of what was sent.
func (m *Mailer) Sent() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Mail(nil), m.sent...)
}

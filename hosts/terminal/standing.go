package terminalhost

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
)

// StandingInterval is how often the gateway re-checks that the people with
// live sessions may still use the platform: a suspended user's terminals
// close within it.
const StandingInterval = 10 * time.Second

// CloseSuspended is the close code of a session whose user was suspended.
const CloseSuspended = 4403

// watchStanding runs while the gateway has sessions (started by the first
// one): every StandingInterval the sessions of users who are no longer
// active end with CloseSuspended.
func (s *Server) watchStanding() {
	t := time.NewTicker(StandingInterval)
	defer t.Stop()
	for range t.C {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), StandingInterval)
		s.checkStanding(ctx)
		cancel()
	}
}

// checkStanding ends the sessions of users the store says are suspended
// (or gone). A store error keeps the sessions: the next round asks again.
func (s *Server) checkStanding(ctx context.Context) {
	if s.d.Users == nil {
		return
	}
	s.mu.Lock()
	byUser := map[string][]*session{}
	for sess := range s.sessions {
		if sess.userID != "" {
			byUser[sess.userID] = append(byUser[sess.userID], sess)
		}
	}
	s.mu.Unlock()
	for id, sessions := range byUser {
		u, err := s.d.Users.Get(ctx, id)
		if err == nil && u.Status == identity.UserActive {
			continue
		}
		if err != nil && !fault.IsKind(err, fault.KindNotFound) {
			s.log.Warn("terminal: could not check a user's standing; keeping their sessions", "error", err)
			continue
		}
		for _, sess := range sessions {
			s.log.Info("terminal: ending the session of a suspended user", "user_id", id)
			sess.revoke()
		}
	}
}

// revoke ends the session from the gateway's side because its user may no
// longer use the platform.
func (s *session) revoke() { s.revokeOne.Do(func() { close(s.revoked) }) }

package terminalhost

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// users is a UserStore that knows statuses by id ("broken" fails).
type users map[string]identity.UserStatus

func (u users) UpsertByIdentity(context.Context, identity.User) (identity.User, bool, error) {
	return identity.User{}, false, errors.New("unused")
}
func (u users) GetByIdentity(context.Context, string, string) (identity.User, error) {
	return identity.User{}, errors.New("unused")
}
func (u users) Get(_ context.Context, id string) (identity.User, error) {
	if id == "broken" {
		return identity.User{}, fault.Unavailable("database down", nil)
	}
	st, ok := u[id]
	if !ok {
		return identity.User{}, fault.NotFound("user", "")
	}
	return identity.User{ID: id, Status: st}, nil
}

var _ ports.UserStore = users(nil)

// TestSuspendedUsersLoseTheirTerminals: the standing check ends the
// sessions of suspended (and deleted) users and keeps everyone else's,
// including when the store cannot answer.
func TestSuspendedUsersLoseTheirTerminals(t *testing.T) {
	t.Parallel()
	s := &Server{d: Deps{Users: users{"active": identity.UserActive, "suspended": identity.UserSuspended}},
		log: slog.New(slog.DiscardHandler), sessions: map[*session]struct{}{}}
	mk := func(user string) *session {
		sess := &session{userID: user, revoked: make(chan struct{})}
		s.sessions[sess] = struct{}{}
		return sess
	}
	active, suspended1, suspended2, gone, broken := mk("active"), mk("suspended"), mk("suspended"), mk("gone"), mk("broken")
	s.checkStanding(context.Background())
	closed := func(sess *session) bool {
		select {
		case <-sess.revoked:
			return true
		default:
			return false
		}
	}
	for name, c := range map[string]struct {
		sess *session
		want bool
	}{"active": {active, false}, "suspended (1)": {suspended1, true}, "suspended (2)": {suspended2, true},
		"deleted": {gone, true}, "store down": {broken, false}} {
		if closed(c.sess) != c.want {
			t.Errorf("%s: revoked %v; want %v", name, closed(c.sess), c.want)
		}
	}
	s.checkStanding(context.Background()) // revoking twice is harmless
}

package inproc_test

import (
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

func TestTokenStoreContract(t *testing.T) {
	clock := fakes.NewClock(time.Time{})
	contract.RunTokenStoreSuite(t, contract.TokenStoreHarness{
		New:        func(*testing.T) ports.TokenStore { return inproc.NewTokenStore(clock) },
		Advance:    clock.Advance,
		CanAdvance: true,
	})
}

func TestRateLimiterContract(t *testing.T) {
	clock := fakes.NewClock(time.Time{})
	contract.RunRateLimiterSuite(t, contract.RateLimiterHarness{
		New: func(*testing.T) ports.RateLimiter { return inproc.NewRateLimiter(clock) },
	})
}

// A new window starts afresh.
func TestRateLimiterWindowResets(t *testing.T) {
	clock := fakes.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := inproc.NewRateLimiter(clock)
	for i := 0; i < 2; i++ {
		l.Allow(t.Context(), "k", 2, time.Minute)
	}
	if d, _ := l.Allow(t.Context(), "k", 2, time.Minute); d.Allowed {
		t.Fatal("third call allowed in a window of 2")
	}
	clock.Advance(time.Minute)
	if d, _ := l.Allow(t.Context(), "k", 2, time.Minute); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("after window: %+v; want allowed with 1 left", d)
	}
}

package contract

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// TokenStoreHarness builds a store for one test. Advance moves the store's
// notion of time; real adapters whose clock can't be moved set CanAdvance
// false and the expiry case waits out a short TTL instead.
type TokenStoreHarness struct {
	New        func(t *testing.T) ports.TokenStore
	Advance    func(d time.Duration)
	CanAdvance bool
}

// RunTokenStoreSuite runs the TokenStore contract.
func RunTokenStoreSuite(t *testing.T, h TokenStoreHarness) {
	ctx := context.Background()
	t.Run("put then consume once", func(t *testing.T) {
		s := h.New(t)
		key := uniq("k")
		if err := s.Put(ctx, key, []byte("v1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		v, err := s.Consume(ctx, key)
		if err != nil || string(v) != "v1" {
			t.Fatalf("consume = %q, %v; want v1", v, err)
		}
		if _, err := s.Consume(ctx, key); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("second consume err = %v; want NotFound", err)
		}
	})
	t.Run("has reports without consuming", func(t *testing.T) {
		s := h.New(t)
		key := uniq("has")
		if ok, err := s.Has(ctx, key); err != nil || ok {
			t.Fatalf("Has on an unknown key = %v, %v", ok, err)
		}
		if err := s.Put(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if ok, err := s.Has(ctx, key); err != nil || !ok {
				t.Fatalf("Has %d = %v, %v; want true", i, ok, err)
			}
		}
		if v, err := s.Consume(ctx, key); err != nil || string(v) != "v" {
			t.Fatalf("consume after Has = %q, %v", v, err)
		}
		if ok, _ := s.Has(ctx, key); ok {
			t.Fatal("Has after Consume = true")
		}
		if h.CanAdvance {
			if err := s.Put(ctx, key, []byte("v"), time.Second); err != nil {
				t.Fatal(err)
			}
			h.Advance(2 * time.Second)
			if ok, _ := s.Has(ctx, key); ok {
				t.Fatal("Has after expiry = true")
			}
		}
	})
	t.Run("unknown key is not found", func(t *testing.T) {
		s := h.New(t)
		if _, err := s.Consume(ctx, uniq("missing")); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("err = %v; want NotFound", err)
		}
	})
	t.Run("non-positive ttl is refused", func(t *testing.T) {
		s := h.New(t)
		if err := s.Put(ctx, uniq("k"), []byte("v"), 0); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("err = %v; want Invalid", err)
		}
	})
	t.Run("expired token is not found", func(t *testing.T) {
		s := h.New(t)
		key := uniq("k")
		ttl := time.Minute
		if !h.CanAdvance {
			ttl = 50 * time.Millisecond
		}
		if err := s.Put(ctx, key, []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if h.CanAdvance {
			h.Advance(ttl + time.Second)
			if _, err := s.Consume(ctx, key); !fault.IsKind(err, fault.KindNotFound) {
				t.Fatalf("err = %v; want NotFound after expiry", err)
			}
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := s.Consume(ctx, key)
			if fault.IsKind(err, fault.KindNotFound) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatal("token still there long after its TTL")
			}
			// Consumed before expiry: put it back and look again.
			if err := s.Put(ctx, key, []byte("v"), 20*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // waiting out a real TTL, not synchronising
		}
	})
	t.Run("exactly one of 20 concurrent consumers wins", func(t *testing.T) {
		s := h.New(t)
		key := uniq("race")
		if err := s.Put(ctx, key, []byte("prize"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins, misses atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := s.Consume(ctx, key)
				switch {
				case err == nil && string(v) == "prize":
					wins.Add(1)
				case fault.IsKind(err, fault.KindNotFound):
					misses.Add(1)
				default:
					t.Errorf("consume: %q, %v", v, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || misses.Load() != 19 {
			t.Fatalf("wins=%d misses=%d; want 1 and 19", wins.Load(), misses.Load())
		}
	})
}

// RateLimiterHarness builds a limiter for one test.
type RateLimiterHarness struct {
	New func(t *testing.T) ports.RateLimiter
}

// RunRateLimiterSuite runs the RateLimiter contract. Windows are long (one
// hour) so a window boundary inside a test is vanishingly unlikely; keys are
// unique per test.
func RunRateLimiterSuite(t *testing.T, h RateLimiterHarness) {
	ctx := context.Background()
	t.Run("allows up to the limit then refuses", func(t *testing.T) {
		l := h.New(t)
		key := uniq("rl")
		for i := 1; i <= 5; i++ {
			d, err := l.Allow(ctx, key, 5, time.Hour)
			if err != nil || !d.Allowed || d.Remaining != 5-i || d.Limit != 5 {
				t.Fatalf("call %d: %+v, %v", i, d, err)
			}
			if !d.ResetAt.After(time.Time{}) {
				t.Fatalf("call %d: no reset time", i)
			}
		}
		d, err := l.Allow(ctx, key, 5, time.Hour)
		if err != nil || d.Allowed || d.Remaining != 0 {
			t.Fatalf("call 6: %+v, %v; want refused", d, err)
		}
	})
	t.Run("peek reports without counting", func(t *testing.T) {
		l := h.New(t)
		key := uniq("peek")
		for i := 0; i < 3; i++ {
			d, err := l.Peek(ctx, key, 2, time.Hour)
			if err != nil || !d.Allowed || d.Remaining != 1 || d.Limit != 2 {
				t.Fatalf("peek %d on a fresh key: %+v, %v", i, d, err)
			}
		}
		if d, _ := l.Allow(ctx, key, 2, time.Hour); !d.Allowed {
			t.Fatal("first Allow after peeks refused: peeks counted")
		}
		if d, _ := l.Peek(ctx, key, 2, time.Hour); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("peek after one request: %+v; want allowed, none remaining after it", d)
		}
		_, _ = l.Allow(ctx, key, 2, time.Hour)
		if d, _ := l.Peek(ctx, key, 2, time.Hour); d.Allowed {
			t.Fatalf("peek at the limit: %+v; want refused", d)
		}
		if _, err := l.Peek(ctx, key, 0, time.Hour); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("peek with limit 0: %v; want Invalid", err)
		}
	})
	t.Run("keys are independent", func(t *testing.T) {
		l := h.New(t)
		a, b := uniq("a"), uniq("b")
		if d, _ := l.Allow(ctx, a, 1, time.Hour); !d.Allowed {
			t.Fatal("first call on a refused")
		}
		if d, _ := l.Allow(ctx, b, 1, time.Hour); !d.Allowed {
			t.Fatal("first call on b refused after a")
		}
	})
	t.Run("invalid limit is refused", func(t *testing.T) {
		l := h.New(t)
		if _, err := l.Allow(ctx, uniq("x"), 0, time.Hour); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("err = %v; want Invalid", err)
		}
	})
	t.Run("concurrent callers never exceed the limit", func(t *testing.T) {
		l := h.New(t)
		key := uniq("c")
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if d, err := l.Allow(ctx, key, 10, time.Hour); err == nil && d.Allowed {
					allowed.Add(1)
				}
			}()
		}
		wg.Wait()
		if allowed.Load() != 10 {
			t.Fatalf("allowed %d of 50; want exactly 10", allowed.Load())
		}
	})
}

var seq atomic.Int64

func uniq(p string) string {
	return fmt.Sprintf("%s-%d-%d", p, time.Now().UnixNano(), seq.Add(1))
}

package inproc

import (
	"context"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// TokenStore keeps single-use tokens in memory with expiry.
type TokenStore struct {
	clock ports.Clock
	mu    sync.Mutex
	items map[string]tokenItem
	puts  int
}

type tokenItem struct {
	value   []byte
	expires time.Time
}

var _ ports.TokenStore = (*TokenStore)(nil)

// NewTokenStore returns an empty store reading time from clock.
func NewTokenStore(clock ports.Clock) *TokenStore {
	return &TokenStore{clock: clock, items: map[string]tokenItem{}}
}

// Put implements [ports.TokenStore].
func (s *TokenStore) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fault.Invalid("ttl", "ttl must be positive")
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[key] = tokenItem{value: append([]byte(nil), value...), expires: now.Add(ttl)}
	// Sweep expired entries now and then so abandoned tokens don't pile up.
	if s.puts++; s.puts%256 == 0 {
		for k, it := range s.items {
			if !now.Before(it.expires) {
				delete(s.items, k)
			}
		}
	}
	return nil
}

// Has implements [ports.TokenStore].
func (s *TokenStore) Has(_ context.Context, key string) (bool, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	return ok && now.Before(it.expires), nil
}

// Consume implements [ports.TokenStore]: get and delete under one lock.
func (s *TokenStore) Consume(_ context.Context, key string) ([]byte, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	delete(s.items, key)
	if !ok || !now.Before(it.expires) {
		return nil, fault.NotFound("token", "")
	}
	return it.value, nil
}

// Name implements [ports.HealthCheck].
func (s *TokenStore) Name() string { return "tokens" }

// Check implements [ports.HealthCheck]; memory is always there.
func (s *TokenStore) Check(context.Context) error { return nil }

// RateLimiter counts requests per key in fixed windows in memory.
type RateLimiter struct {
	clock   ports.Clock
	mu      sync.Mutex
	windows map[string]window
	calls   int
}

type window struct {
	start time.Time
	count int
}

var _ ports.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns a limiter reading time from clock.
func NewRateLimiter(clock ports.Clock) *RateLimiter {
	return &RateLimiter{clock: clock, windows: map[string]window{}}
}

// Allow implements [ports.RateLimiter] with a fixed window aligned to the
// window length, the same algorithm as the Redis adapter.
func (l *RateLimiter) Allow(_ context.Context, key string, limit int, win time.Duration) (ports.RateDecision, error) {
	if limit <= 0 || win <= 0 {
		return ports.RateDecision{}, fault.Invalid("limit", "limit and window must be positive")
	}
	now := l.clock.Now()
	start := now.Truncate(win)
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if !w.start.Equal(start) {
		w = window{start: start}
	}
	w.count++
	l.windows[key] = w
	if l.calls++; l.calls%1024 == 0 {
		for k, v := range l.windows {
			if v.start.Add(win).Before(now) {
				delete(l.windows, k)
			}
		}
	}
	return decision(w.count, limit, start.Add(win)), nil
}

// Peek implements [ports.RateLimiter].
func (l *RateLimiter) Peek(_ context.Context, key string, limit int, win time.Duration) (ports.RateDecision, error) {
	if limit <= 0 || win <= 0 {
		return ports.RateDecision{}, fault.Invalid("limit", "limit and window must be positive")
	}
	start := l.clock.Now().Truncate(win)
	l.mu.Lock()
	w := l.windows[key]
	l.mu.Unlock()
	n := 0
	if w.start.Equal(start) {
		n = w.count
	}
	return decision(n+1, limit, start.Add(win)), nil
}

func decision(count, limit int, reset time.Time) ports.RateDecision {
	rem := limit - count
	if rem < 0 {
		rem = 0
	}
	return ports.RateDecision{Allowed: count <= limit, Limit: limit, Remaining: rem, ResetAt: reset}
}

// Name implements [ports.HealthCheck].
func (l *RateLimiter) Name() string { return "ratelimit" }

// Check implements [ports.HealthCheck].
func (l *RateLimiter) Check(context.Context) error { return nil }

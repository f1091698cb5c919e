package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the client.
type Config struct {
	// URL is redis://[user:password@]host:port/db.
	URL string
	// Prefix namespaces every key, so replicas of several deployments or
	// parallel tests can share one server.
	Prefix string
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.URL == "" {
		return errors.New("redis: URL is required")
	}
	if _, err := goredis.ParseURL(c.URL); err != nil {
		return errors.New("redis: invalid URL")
	}
	if c.Prefix == "" {
		c.Prefix = "gpuaas:"
	}
	return nil
}

// Client is a Redis connection shared by the token store and the limiter.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

var (
	_ ports.TokenStore  = (*Client)(nil)
	_ ports.RateLimiter = (*Client)(nil)
	_ ports.HealthCheck = (*Client)(nil)
)

// Open connects and pings.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	opt, _ := goredis.ParseURL(cfg.URL)
	rdb := goredis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: ping %s: %w", opt.Addr, err)
	}
	return &Client{rdb: rdb, prefix: cfg.Prefix}, nil
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Name implements [ports.HealthCheck].
func (c *Client) Name() string { return "redis" }

// Check implements [ports.HealthCheck].
func (c *Client) Check(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// Put implements [ports.TokenStore].
func (c *Client) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fault.Invalid("ttl", "ttl must be positive")
	}
	if err := c.rdb.Set(ctx, c.prefix+"tok:"+key, value, ttl).Err(); err != nil {
		return fault.Unavailable("token store unavailable", err)
	}
	return nil
}

// Has implements [ports.TokenStore] with EXISTS (Redis expires keys itself).
func (c *Client) Has(ctx context.Context, key string) (bool, error) {
	n, err := c.rdb.Exists(ctx, c.prefix+"tok:"+key).Result()
	if err != nil {
		return false, fault.Unavailable("token store unavailable", err)
	}
	return n == 1, nil
}

// Consume implements [ports.TokenStore] with GETDEL: atomic, so of
// concurrent consumers exactly one gets the value.
func (c *Client) Consume(ctx context.Context, key string) ([]byte, error) {
	v, err := c.rdb.GetDel(ctx, c.prefix+"tok:"+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fault.NotFound("token", "")
	}
	if err != nil {
		return nil, fault.Unavailable("token store unavailable", err)
	}
	return v, nil
}

// allowScript increments the window's counter and sets its expiry on first
// use, atomically.
var allowScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Allow implements [ports.RateLimiter] with fixed windows aligned to the
// window length (the same algorithm as the in-process limiter).
func (c *Client) Allow(ctx context.Context, key string, limit int, win time.Duration) (ports.RateDecision, error) {
	if limit <= 0 || win <= 0 {
		return ports.RateDecision{}, fault.Invalid("limit", "limit and window must be positive")
	}
	now := time.Now()
	start := now.Truncate(win)
	k := fmt.Sprintf("%srl:%s:%d", c.prefix, key, start.UnixMilli())
	n, err := allowScript.Run(ctx, c.rdb, []string{k}, (win + time.Second).Milliseconds()).Int()
	if err != nil {
		return ports.RateDecision{}, fault.Unavailable("rate limiter unavailable", err)
	}
	return rateDecision(n, limit, start.Add(win)), nil
}

// Peek implements [ports.RateLimiter]: a GET of the window's counter.
func (c *Client) Peek(ctx context.Context, key string, limit int, win time.Duration) (ports.RateDecision, error) {
	if limit <= 0 || win <= 0 {
		return ports.RateDecision{}, fault.Invalid("limit", "limit and window must be positive")
	}
	start := time.Now().Truncate(win)
	n, err := c.rdb.Get(ctx, fmt.Sprintf("%srl:%s:%d", c.prefix, key, start.UnixMilli())).Int()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return ports.RateDecision{}, fault.Unavailable("rate limiter unavailable", err)
	}
	// As Allow would answer for one more request.
	return rateDecision(n+1, limit, start.Add(win)), nil
}

// rateDecision is the outcome for the count'th request of a window.
func rateDecision(count, limit int, reset time.Time) ports.RateDecision {
	return ports.RateDecision{Allowed: count <= limit, Limit: limit, Remaining: max(0, limit-count), ResetAt: reset}
}

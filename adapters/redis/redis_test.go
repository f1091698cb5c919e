package redis_test

import (
	"context"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/redis"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func open(t *testing.T) *redis.Client {
	t.Helper()
	addr := services.Redis(t)
	c, err := redis.Open(context.Background(), redis.Config{URL: "redis://" + addr, Prefix: "gpuaas-test-" + services.RandomSuffix(4) + ":"})
	if err != nil {
		services.Unavailable(t, "redis", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTokenStoreContract(t *testing.T) {
	contract.RunTokenStoreSuite(t, contract.TokenStoreHarness{
		New: func(t *testing.T) ports.TokenStore { return open(t) },
	})
}

func TestRateLimiterContract(t *testing.T) {
	contract.RunRateLimiterSuite(t, contract.RateLimiterHarness{
		New: func(t *testing.T) ports.RateLimiter { return open(t) },
	})
}

func TestHealth(t *testing.T) {
	if err := open(t).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "http://x", "redis://:pw@[::1"} {
		c := redis.Config{URL: u}
		if err := c.CheckAndSetDefaults(); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

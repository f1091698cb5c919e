package client

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts (tests record it instead).
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// InvalidateToken drops a service account's cached token.
func InvalidateToken(c *Client) { c.auth.invalidate() }

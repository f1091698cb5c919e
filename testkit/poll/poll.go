// Package poll waits, in tests, for a condition that another goroutine or
// process makes true — a row written, an event consumed, an audit record
// that lands as a connection closes — with a deadline. It is the one copy
// of the helper tests used to write for themselves.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks.
const Interval = 10 * time.Millisecond

// Until checks cond every Interval until it holds. Past timeout it fails
// the test, naming what it waited for. Polling a condition with a deadline
// is not sleeping to synchronise: the test proceeds the moment cond holds.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

package poll_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/testkit/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	poll.Until(t, time.Second, "the third check", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Fatalf("checked %d times, want 3", n.Load())
	}
}

// fatalT records Fatalf instead of ending the test.
type fatalT struct {
	testing.TB
	failed string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestUntilFailsAtTheDeadline(t *testing.T) {
	t.Parallel()
	f := &fatalT{TB: t}
	start := time.Now()
	poll.Until(f, 50*time.Millisecond, "never", func() bool { return f.failed != "" })
	if f.failed == "" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("Until returned after %s without failing", time.Since(start))
	}
}

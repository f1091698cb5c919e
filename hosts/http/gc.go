package httphost

import "github.com/gpuaas/gpuaas/hosts/internal/gctarget"

// GCPercent is the garbage collector's target an API process runs with
// unless GOGC is set (TuneGC). A request allocates tens of kilobytes against
// a live heap of a few megabytes, so Go's default of 100 collected about a
// hundred times a second under load and took a sixth of the CPU of a cached
// authenticated read (doc/performance.md); at 400 the heap may grow to about
// five times the live data — tens of megabytes for an API replica. GOMEMLIMIT,
// when set, still bounds it.
const GCPercent = 400

// TuneGC sets GCPercent unless the environment sets GOGC (getenv is the
// host's), and returns the previous setting.
func TuneGC(getenv func(string) string) int { return gctarget.Set(getenv, GCPercent) }

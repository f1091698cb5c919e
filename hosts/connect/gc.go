package connecthost

import "github.com/gpuaas/gpuaas/hosts/internal/gctarget"

// GCPercent is the garbage collector's target an agent gateway process
// (`gpuaas serve agent-gateway`) runs with unless GOGC is set (TuneGC). Its
// heap is mostly the connected agents' connections — TLS and HTTP/2 state
// and a parked long poll each, about 30 KB live per agent — and it
// allocates little against that: 12 MB/s at 10,000 agents against a live
// heap of 300 MB. At Go's default of 100 the heap in use after a collection
// was about 45 KB per agent, the rest free space in spans that long-lived
// objects keep (they are allocated among a handshake's garbage); at 20,
// collecting before that garbage piles up, about 37 KB, for four or five
// collections in 20 s instead of one and roughly a fifth more CPU
// (doc/performance.md#agent-gateway-at-fleet-scale). At 25 the whole came
// to 62.8–64.1 KB per agent, too close to the goal of 64.
const GCPercent = 20

// TuneGC sets GCPercent unless the environment sets GOGC (getenv is the
// host's), and returns the previous setting.
func TuneGC(getenv func(string) string) int { return gctarget.Set(getenv, GCPercent) }

package httphost

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the API's collector target applies unless GOGC says
// otherwise. Not parallel: it changes the process's setting.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	TuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(150); got != GCPercent {
		t.Fatalf("GC percent %d, want %d", got, GCPercent)
	}
	TuneGC(func(k string) string { return map[string]string{"GOGC": "150"}[k] })
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("with GOGC set the percent became %d, want it left at 150", got)
	}
}

package gctarget

import (
	"runtime/debug"
	"testing"
)

func TestSet(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if prev := Set(getenv, 25); prev != 100 {
		t.Fatalf("previous = %d, want 100", prev)
	}
	if now := debug.SetGCPercent(25); now != 25 {
		t.Fatalf("target = %d, want 25", now)
	}
	// GOGC set: the operator's target (the runtime read it at start) stands.
	debug.SetGCPercent(70)
	env["GOGC"] = "70"
	if prev := Set(getenv, 25); prev != 70 {
		t.Fatalf("previous = %d, want 70", prev)
	}
	if now := debug.SetGCPercent(70); now != 70 {
		t.Fatalf("target with GOGC set = %d, want 70", now)
	}
}

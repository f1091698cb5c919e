// Package gctarget sets a process's garbage-collector target for the role
// it serves, unless its operator chose one.
package gctarget

import "runtime/debug"

// Set sets the collector's target to percent unless the environment sets
// GOGC (getenv is the host's: the operator's choice stands), and returns
// the previous setting. GOMEMLIMIT, when set, still bounds the heap.
func Set(getenv func(string) string, percent int) int {
	if getenv("GOGC") != "" {
		prev := debug.SetGCPercent(100)
		debug.SetGCPercent(prev)
		return prev
	}
	return debug.SetGCPercent(percent)
}

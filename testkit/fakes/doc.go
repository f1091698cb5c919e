// Package fakes holds in-memory implementations of the small ports for unit
// tests. Each passes the same contract suite as its real adapter.
package fakes

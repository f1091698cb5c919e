// Package core is the pure domain: entities, invariants, state machines and
// use cases over ports. Nothing under core/ performs I/O or imports an
// infrastructure package; imports_test.go enforces it.
package core

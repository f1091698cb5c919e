// Package library holds runnable examples of the core assembled as a
// library, without the gpuaas binary: the use cases (allocations, ledger,
// payments, policy, identity) wired with adapters of your own or ours
// (Postgres, the dev payment provider) and the testkit fakes (clock, ids).
// It has no code of its own; doc/library.md says which packages are the
// stable surface an integrator may build on.
package library

// Package billing is the metering and billing context of the money path:
// usage records (opened when an allocation becomes active, closed when it
// is released or its release fails), the accrual of usage into ledger
// debits one window at a time, and the tenant balance states (ok, low,
// depleted) that drive warnings and the release of a depleted tenant's
// allocations. See doc/billing.md.
//
// The package holds the model, the pure rules and the use cases (Metering,
// Worker); the stores it needs are small interfaces declared here, which
// adapters/postgres implements.
package billing

// Package ledgersvc holds the ledger use cases: the shared Credit and Debit
// helpers that post entries inside the caller's transaction (payments,
// billing corrections and admin operations all post through them), the
// tenant's balance with its burn rate and runway, the ledger and usage
// listings (the usage CSV streamed row by row), and the operators' money
// operations: credits (adjustments) and refunds, audited. See doc/billing.md.
package ledgersvc

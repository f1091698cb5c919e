// Package paymentsvc holds the payment use cases: start a top-up checkout
// (policy limits, required idempotency key, provider checkout), open the
// provider's customer portal, apply verified provider webhooks exactly once
// (event dedupe, ledger credit, session state and outbox event in one
// transaction; mismatches go to failed_reconcile), and the operator's list.
package paymentsvc

// Package payment models prepaid top-ups: the payment session a checkout
// creates, its state machine (initiated → credited | failed_reconcile |
// expired), the verified provider events that drive it, and the checks a
// top-up must pass. It holds no I/O; paymentsvc runs the use cases.
package payment

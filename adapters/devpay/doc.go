// Package devpay is the payment provider of `gpuaas dev`: a local checkout
// page (an http.Handler the host mounts, by default under /dev-pay/) that
// shows the amount with a Pay button. Paying sends a checkout.session.completed
// event, signed in Stripe's scheme with a generated secret, to the platform's
// own webhook route — the same endpoint and verification path a Stripe
// delivery takes — then redirects to the success URL. Pay does the same
// without a browser, for scripts and tests.
//
// Checkouts live in memory: the provider is for one dev process, never for
// production.
package devpay

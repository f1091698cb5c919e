// Package stripe is the Stripe payment provider (stripe-go v76): hosted
// checkout sessions for top-ups, the billing portal, customers per tenant,
// and webhook verification (HMAC over the raw body, timestamp tolerance,
// several secrets during rotation) mapped to [ports.WebhookEvent]. The
// webhook verifier and signer are exported because the dev provider
// (adapters/devpay) signs its webhooks with the same scheme, so both take the
// same verification path.
package stripe

// Package lambdahost is the Lambda-style host: the same use cases as the
// HTTP host and the workers, behind function handlers (aws-lambda-go).
//
//   - API: the whole REST API (hosts/http's handler) behind API Gateway HTTP
//     API (payload 2.0) or a Lambda function URL, through
//     aws-lambda-go-api-proxy's httpadapter.
//   - Webhook: the payment provider's webhook alone (paymentsvc.HandleWebhook
//     over the raw body), for a function URL the provider calls.
//   - BillingTick: one billing accrual cycle (billing.Worker.RunCycle), for a
//     schedule (EventBridge).
//   - OutboxDrain: the outbox relay until nothing is due (relay.Drain), for a
//     schedule or a database-change trigger.
//
// Handlers hold no business logic: decode the event, call the use case,
// encode the answer. HTTP statuses come from hosts/http's table
// (httphost.StatusOf), the one the API function serves with. The `gpuaas`
// binary wires them (`gpuaas lambda <function>`; `make lambda` builds one
// `bootstrap` per function).
package lambdahost

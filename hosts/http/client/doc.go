// Package client is the Go client of the GPUaaS API for integrators, the
// `gpuaas` CLI and the end-to-end harness.
//
// Its types are the API contract's (doc/api/openapi.yaml) as oapi-codegen
// renders them for the HTTP host, in hosts/http/api; this package re-exports
// them by alias (client.Allocation is api.Allocation) rather than keeping a
// second copy, so the server and every client compile against the same
// structs and a change to the contract that breaks a client breaks its
// build. The request plumbing (paths, parameters, bodies) is generated too
// (internal/apigen, from the same contract by scripts/codegen.sh). What is
// written by hand is the ergonomics:
//
//   - authentication by personal API key ([WithAPIKey]), service account
//     ([WithServiceAccount]: client credentials exchanged for short-lived
//     tokens, renewed before they expire) or any OIDC token source
//     ([WithTokenSource]);
//   - retries with exponential backoff and jitter on 429 and 503, honouring
//     Retry-After, and on network errors of requests that are safe to repeat;
//   - an idempotency key on every mutation, the same across its retries, so a
//     retried create never makes two allocations;
//   - cursor pagination as iterators ([iter.Seq2]);
//   - one error type, [*Error], with the API's stable code ([ErrorCode]).
//
// Compiling it compiles hosts/http/api, which embeds the contract (and so
// imports kin-openapi and chi): the price of one copy of the types.
package client

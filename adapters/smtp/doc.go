// Package smtp sends the platform's email through any SMTP relay with
// wneessen/go-mail (TLS policy, timeouts, authentication, a Message-ID the
// caller chooses), and runs mailpit — the SMTP server with a web inbox
// that `gpuaas dev` and the tests use — as a child process.
package smtp

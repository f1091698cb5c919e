// Package web serves the GPUaaS web console: the single-page app built from
// this directory's TypeScript sources (Vite, into static/dist) and embedded in
// the binary, with SPA fallback, long-cached hashed assets and a strict
// Content-Security-Policy. A binary built without the console serves a page
// that says how to build it, so `go build` never needs Node. See
// doc/console.md.
package web

// Package text is the platform's one policy for text that people and
// clients send: names, emails, reasons, ids and other single-line strings.
// Use cases apply it to their inputs so every host (HTTP, Connect, a
// function handler) refuses the same strings; the HTTP host also applies it
// to every string of every request before the handler runs.
package text

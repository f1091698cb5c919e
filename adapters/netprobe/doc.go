// Package netprobe checks that a node's SSH endpoint answers: it dials TCP
// and reads the server's SSH identification banner (RFC 4253 §4.2).
package netprobe

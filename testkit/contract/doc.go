// Package contract holds the suites every implementation of a port must
// pass: the in-memory one and the real adapter run the same cases.
package contract

// Package apigen is the Go client's generated request plumbing (paths,
// parameters, bodies, one function per operation of doc/api/openapi.yaml).
// Its types are the HTTP host's, hosts/http/api; package client wraps it.
// Regenerate with scripts/codegen.sh.
package apigen

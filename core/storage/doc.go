// Package storage is the model of project storage: the canonical project
// path (every path a caller names is checked and resolved here, and the
// object key it yields is always under {tenant_id}/{project_id}/), the index
// entry of a file or folder, and the quota arithmetic. It has no I/O; the
// use cases live in storagesvc. doc/storage.md describes the whole.
package storage

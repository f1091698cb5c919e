// Package storagesvc holds the use cases of project storage: list, stat,
// download (ranges), upload (streamed, quota reserved first), mkdir,
// rename/move, delete, usage, presigned transfers, the node sync plans and
// the reconciler that repairs the index and the objects after a crash. It
// depends on ports only (doc/storage.md).
package storagesvc

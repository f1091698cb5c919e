// Package tasksvc enqueues signed node tasks and waits for their results:
// the control plane's side of the signed task queue that provisioning
// activities call through RunTask.
package tasksvc

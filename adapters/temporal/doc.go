// Package temporal runs allocation provisioning and release as Temporal
// workflows: the ports.WorkflowEngine client, the workflows and their
// activities, worker registration, and a dev-server helper for `gpuaas dev`
// and tests. Workflow code lives here, not in core, because it imports the
// Temporal SDK; its activities reach the core only through small interfaces.
package temporal

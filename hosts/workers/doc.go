// Package workers holds the background processes the `gpuaas` binary runs,
// each as an fx Module: the outbox relay now; provisioning, billing and
// notification workers as their contexts arrive.
package workers

package temporal

import (
	"errors"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// RegisterWorkflows registers ProvisionAllocation and ReleaseAllocation
// under their stable names (also on a replayer).
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ProvisionAllocation, workflow.RegisterOptions{Name: ProvisionWorkflow})
	r.RegisterWorkflowWithOptions(ReleaseAllocation, workflow.RegisterOptions{Name: ReleaseWorkflow})
}

// NewWorker builds a worker for the client's task queue with the workflows
// and activities registered (storage may be nil: a host without storage).
// The caller starts and stops it.
func NewWorker(c *Client, a *Activities, storage ...*StorageActivities) (worker.Worker, error) {
	if c == nil || a == nil {
		return nil, errors.New("temporal: a worker needs a Client and Activities")
	}
	w := worker.New(c.SDK(), c.cfg.TaskQueue, worker.Options{})
	RegisterWorkflows(w)
	w.RegisterActivity(a)
	for _, s := range storage {
		if s != nil {
			w.RegisterActivity(s)
		}
	}
	return w, nil
}

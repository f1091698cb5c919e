package temporal

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Histories in testdata were recorded from real runs against the dev server
// (GPUAAS_RECORD_TEMPORAL_HISTORIES=1 go test -run TestDevServerIntegration
// ./adapters/temporal/). Replaying them against the current workflow code
// fails when a change would break workflows already in flight: then keep the
// old path behind workflow.GetVersion, and record new histories alongside.
func TestReplayRecordedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Every workflow version that may still be in flight keeps its
	// histories: _v0 regular activities, _v1 local steps (provision-local-steps),
	// _v2 ProvisionAndActivate (provision-self-activating-task), unsuffixed
	// the current code (provision-one-local-step).
	want := map[string]bool{"provision_success.json": false, "provision_failed.json": false,
		"provision_success_v2.json": false, "provision_failed_v2.json": false,
		"provision_success_v1.json": false, "provision_failed_v1.json": false,
		"provision_success_v0.json": false, "provision_failed_v0.json": false,
		"release_success.json": false, "release_failed.json": false}
	for _, f := range files {
		want[filepath.Base(f)] = true
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			r := worker.NewWorkflowReplayer()
			RegisterWorkflows(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}
		})
	}
	for name, found := range want {
		if !found {
			t.Errorf("testdata/%s is missing", name)
		}
	}
}

// A workflow that no longer runs the same steps must fail the replay, or
// the test above proves nothing.
func TestReplayDetectsANonDeterministicChange(t *testing.T) {
	t.Parallel()
	changed := func(ctx workflow.Context, in ProvisionInput) (Outcome, error) {
		// Skips MarkProvisioning: the recorded history says it ran first.
		r := in.Retry.withDefaults(DefaultProvisionAttempts)
		err := workflow.ExecuteActivity(markOptions(ctx, r), acts.MarkActive, in.AllocationID).Get(ctx, nil)
		return Outcome{}, err
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: ProvisionWorkflow})
	if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger{}, filepath.Join("testdata", "provision_success.json")); err == nil {
		t.Fatal("a reordered workflow replayed cleanly")
	}
}

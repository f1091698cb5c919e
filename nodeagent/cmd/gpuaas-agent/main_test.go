package main

import (
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/gpuaas/gpuaas/nodeagent/gpu"
)

// TestDiscoverPrintsJSON: `gpuaas-agent discover` prints what discovery
// found; on a machine without NVIDIA hardware that is the simulated set,
// with notes on why the real sources were skipped.
func TestDiscoverPrintsJSON(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("real GPUs present: the simulated inventory is not used")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	t.Setenv("PATH", t.TempDir()) // no nvidia-smi
	runErr := run([]string{"discover", "--simulated-gpus", "2", "--simulated-gpu-model", "sim-gpu"})
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	if runErr != nil {
		t.Fatal(runErr)
	}
	var res gpu.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if res.Source != gpu.SourceSimulated || len(res.GPUs) != 2 || res.GPUs[0].Model != "sim-gpu" || len(res.Notes) == 0 {
		t.Fatalf("discover printed %+v", res)
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run([]string{"reboot"}); err == nil {
		t.Fatal("an unknown command was accepted")
	}
}

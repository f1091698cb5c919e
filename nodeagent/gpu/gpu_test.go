package gpu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestParseNvidiaSMI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		n       int
		healthy []bool
		wantErr bool
	}{
		{"two devices", "0, GPU-1a2b, NVIDIA H100 80GB HBM3, 81559\n1, GPU-3c4d, NVIDIA H100 80GB HBM3, 81559\n", 2, []bool{true, true}, false},
		{"memory not available", "0, GPU-1a2b, NVIDIA A100-SXM4-80GB, [N/A]\n", 1, []bool{false}, false},
		{"blank lines", "\n0, GPU-1a2b, NVIDIA L40S, 46068\n\n", 1, []bool{true}, false},
		{"empty", "", 0, nil, false},
		{"wrong field count", "0, GPU-1a2b, 81559\n", 0, nil, true},
		{"bad index", "x, GPU-1a2b, NVIDIA L40S, 46068\n", 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gpus, err := ParseNvidiaSMI([]byte(tc.in))
			if (err != nil) != tc.wantErr || len(gpus) != tc.n {
				t.Fatalf("got %+v, %v", gpus, err)
			}
			for i, h := range tc.healthy {
				if gpus[i].Healthy != h {
					t.Fatalf("gpu %d healthy = %v", i, gpus[i].Healthy)
				}
			}
		})
	}
	gpus, _ := ParseNvidiaSMI([]byte("3, GPU-abcd, NVIDIA H100 80GB HBM3, 81559\n"))
	if g := gpus[0]; g.Index != 3 || g.UUID != "GPU-abcd" || g.Model != "NVIDIA H100 80GB HBM3" || g.MemoryMiB != 81559 {
		t.Fatalf("parsed %+v", g)
	}
}

// TestDiscoverFallsBack: on this machine NVML is absent (the library is not
// found, which is expected and reported in the notes); a fake nvidia-smi
// script answers next; without one the simulated inventory is used.
func TestDiscoverFallsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("a GPU driver is present; fallbacks are not reachable")
	}
	dir := t.TempDir()
	smi := filepath.Join(dir, "nvidia-smi")
	script := "#!/bin/sh\n[ \"$1\" = \"--query-gpu=index,uuid,name,memory.total\" ] || exit 9\necho '0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559'\n"
	if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Discover(ctx, Config{NvidiaSMI: smi})
	if err != nil || r.Source != SourceNvidiaSMI || len(r.GPUs) != 1 || r.GPUs[0].UUID != "GPU-aaaa" {
		t.Fatalf("nvidia-smi fallback: %+v, %v", r, err)
	}
	if len(r.Notes) == 0 {
		t.Fatal("the skipped NVML source left no note")
	}
	r, err = Discover(ctx, Config{NvidiaSMI: filepath.Join(dir, "missing"), Simulated: Simulated(2, "sim", 1024)})
	if err != nil || r.Source != SourceSimulated || len(r.GPUs) != 2 || r.GPUs[1].Index != 1 {
		t.Fatalf("simulated fallback: %+v, %v", r, err)
	}
}

package gpu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gpuaas/gpuaas/core/inventory"
)

// Sources a discovery may report.
const (
	SourceNVML      = inventory.GPUSourceNVML
	SourceNvidiaSMI = inventory.GPUSourceNvidiaSMI
	SourceSimulated = inventory.GPUSourceSimulated
	SourceNone      = "none"
)

// found is a discovery's result with the source stamped on every GPU, so
// the heartbeat carries it to the control plane (which shows it to
// operators and keeps simulated GPUs out of placement unless allowed).
func found(source string, gpus []inventory.GPU, notes []string) Result {
	out := make([]inventory.GPU, len(gpus))
	for i, g := range gpus {
		g.Source = source
		out[i] = g
	}
	return Result{Source: source, GPUs: out, Notes: notes}
}

// Result is what a discovery found and where.
type Result struct {
	Source string          `json:"source"`
	GPUs   []inventory.GPU `json:"gpus"`
	// Notes say why earlier sources were skipped (e.g. no NVML library).
	Notes []string `json:"notes,omitempty"`
}

// Config chooses the sources.
type Config struct {
	// Simulated is reported when neither NVML nor nvidia-smi finds GPUs
	// (sandbox nodes, development).
	Simulated []inventory.GPU
	// NvidiaSMI is the nvidia-smi binary. Default: looked up on PATH.
	NvidiaSMI string
	// SkipNVML skips NVML (tests of the fallbacks).
	SkipNVML bool
}

// Discover tries NVML, then nvidia-smi, then the simulated inventory.
func Discover(ctx context.Context, cfg Config) (Result, error) {
	var notes []string
	if !cfg.SkipNVML {
		gpus, err := fromNVML()
		if err == nil {
			return found(SourceNVML, gpus, nil), nil
		}
		notes = append(notes, "nvml: "+err.Error())
	}
	smi := cfg.NvidiaSMI
	if smi == "" {
		smi, _ = exec.LookPath("nvidia-smi")
	}
	if smi != "" {
		gpus, err := fromNvidiaSMI(ctx, smi)
		if err == nil {
			return found(SourceNvidiaSMI, gpus, notes), nil
		}
		notes = append(notes, "nvidia-smi: "+err.Error())
	} else {
		notes = append(notes, "nvidia-smi: not installed")
	}
	if len(cfg.Simulated) > 0 {
		return found(SourceSimulated, cfg.Simulated, notes), nil
	}
	return Result{Source: SourceNone, Notes: notes}, nil
}

// ErrNoLibrary: the NVIDIA driver library is not installed (no GPU here).
var ErrNoLibrary = errors.New("NVML library not found")

// fromNVML reads every device through NVML. On a machine without the
// driver Init answers ERROR_LIBRARY_NOT_FOUND, which is expected.
func fromNVML() (gpus []inventory.GPU, err error) {
	defer func() {
		// go-nvml loads the library with dlopen; be defensive about a
		// broken install rather than taking the agent down.
		if r := recover(); r != nil {
			err = fmt.Errorf("nvml panicked: %v", r)
		}
	}()
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, ErrNoLibrary
		}
		return nil, fmt.Errorf("init: %s", nvml.ErrorString(ret))
	}
	defer nvml.Shutdown()
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("device count: %s", nvml.ErrorString(ret))
	}
	for i := 0; i < n; i++ {
		d, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			gpus = append(gpus, inventory.GPU{Index: i, Healthy: false})
			continue
		}
		g := inventory.GPU{Index: i, Healthy: true}
		if uuid, ret := d.GetUUID(); ret == nvml.SUCCESS {
			g.UUID = uuid
		} else {
			g.Healthy = false
		}
		if name, ret := d.GetName(); ret == nvml.SUCCESS {
			g.Model = name
		}
		if mem, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryMiB = int(mem.Total / (1 << 20))
		} else {
			g.Healthy = false
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// SMIArgs are the nvidia-smi arguments ParseNvidiaSMI expects output of.
var SMIArgs = []string{"--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"}

func fromNvidiaSMI(ctx context.Context, bin string) ([]inventory.GPU, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, SMIArgs...).Output()
	if err != nil {
		return nil, err
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI parses `nvidia-smi --query-gpu=index,uuid,name,memory.total
// --format=csv,noheader,nounits` output: one "0, GPU-…, NVIDIA H100 80GB
// HBM3, 81559" line per device (memory in MiB).
func ParseNvidiaSMI(out []byte) ([]inventory.GPU, error) {
	var gpus []inventory.GPU
	sc := bufio.NewScanner(bytes.NewReader(out))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want 4 fields, got %d", line, len(f))
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil || idx < 0 || idx > 63 {
			return nil, fmt.Errorf("line %d: bad index %q", line, f[0])
		}
		g := inventory.GPU{Index: idx, UUID: f[1], Model: f[2], Healthy: true}
		if mem, err := strconv.Atoi(f[3]); err == nil && mem >= 0 {
			g.MemoryMiB = mem
		} else {
			// "[N/A]" and friends: the device answered badly.
			g.Healthy = false
		}
		if !strings.HasPrefix(g.UUID, "GPU-") {
			g.Healthy = false
		}
		gpus = append(gpus, g)
	}
	return gpus, sc.Err()
}

// Simulated returns n simulated GPUs of a model (sandbox nodes).
func Simulated(n int, model string, memoryMiB int) []inventory.GPU {
	gpus := make([]inventory.GPU, n)
	for i := range gpus {
		gpus[i] = inventory.GPU{Index: i, UUID: fmt.Sprintf("GPU-sim-%08d", i), Model: model,
			MemoryMiB: memoryMiB, Healthy: true, Source: inventory.GPUSourceSimulated}
	}
	return gpus
}

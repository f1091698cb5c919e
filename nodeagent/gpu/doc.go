// Package gpu discovers a node's GPUs for the agent's heartbeats: NVML
// first, then nvidia-smi, else a configured simulated inventory.
package gpu

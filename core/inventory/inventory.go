// Package inventory models what can be rented: SKUs (the catalogue) and the
// nodes that back them, with the node lifecycle.
package inventory

import (
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// SKU is a rentable node shape with its price for the whole node.
type SKU struct {
	ID               string
	Name             string
	GPUModel         string
	GPUCount         int
	GPUMemoryGiB     int
	CPUCores         int
	MemoryGiB        int
	HourlyPriceMinor int64 // per node-hour, minor units of Currency
	Currency         string
	Active           bool
}

// NodeState is where a node is in its lifecycle.
type NodeState string

const (
	NodeEnrolling   NodeState = "enrolling"   // registered; agent has not enrolled yet
	NodeActive      NodeState = "active"      // heartbeating; may be allocated
	NodeOffline     NodeState = "offline"     // heartbeats stopped; comes back when they resume
	NodeMaintenance NodeState = "maintenance" // taken out by an operator
	NodeRetired     NodeState = "retired"     // gone for good; certificates revoked
)

var nodeTransitions = map[NodeState][]NodeState{
	NodeEnrolling:   {NodeActive, NodeRetired},
	NodeActive:      {NodeOffline, NodeMaintenance, NodeRetired},
	NodeOffline:     {NodeActive, NodeMaintenance, NodeRetired},
	NodeMaintenance: {NodeActive, NodeRetired},
}

// CanTransition reports whether from → to is allowed.
func (from NodeState) CanTransition(to NodeState) bool {
	for _, s := range nodeTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TransitionNode checks from → to.
func TransitionNode(from, to NodeState) error {
	if !from.CanTransition(to) {
		return fault.Conflict("invalid_state_transition", "node cannot go from "+string(from)+" to "+string(to))
	}
	return nil
}

// GPU is one device a node reported.
type GPU struct {
	Index     int    `json:"index"`
	UUID      string `json:"uuid"`
	Model     string `json:"model"`
	MemoryMiB int    `json:"memory_mib"`
	Healthy   bool   `json:"healthy"`
	// Source is how the agent found the GPU: GPUSourceNVML,
	// GPUSourceNvidiaSMI or GPUSourceSimulated ("" from an agent too old
	// to say).
	Source string `json:"source,omitempty"`
}

// Where a GPU was discovered.
const (
	GPUSourceNVML      = "nvml"
	GPUSourceNvidiaSMI = "nvidia-smi"
	GPUSourceSimulated = "simulated" // configured, not found: sandbox and test nodes
)

// ValidGPUSource reports whether s is a source an agent may report.
func ValidGPUSource(s string) bool {
	return s == "" || s == GPUSourceNVML || s == GPUSourceNvidiaSMI || s == GPUSourceSimulated
}

// Simulated reports whether any of the GPUs is simulated.
func Simulated(gpus []GPU) bool {
	for _, g := range gpus {
		if g.Source == GPUSourceSimulated {
			return true
		}
	}
	return false
}

// Health is the node's self-reported health.
type Health struct {
	OK      bool              `json:"ok"`
	Checks  map[string]string `json:"checks,omitempty"`
	Message string            `json:"message,omitempty"`
}

// Node is a bare-metal host running the agent.
type Node struct {
	ID      string
	Name    string
	SKUID   string
	State   NodeState
	SSHHost string
	SSHPort int
	// SSHHostKey is the node sshd's host public key (authorized_keys
	// format) as the node's own agent last reported it over mTLS; "" until
	// it reports one. The terminal gateway trusts exactly this key.
	SSHHostKey      string
	AgentVersion    string
	GPUs            []GPU
	Health          Health
	LastHeartbeatAt *time.Time
	CreatedAt       time.Time
	RetiredAt       *time.Time
}

// Heartbeat is what an agent reports periodically.
type Heartbeat struct {
	AgentVersion string
	GPUs         []GPU
	Health       Health
	// SSHHostKey is the node sshd's host public key (authorized_keys
	// format); "" when the agent did not report one, which leaves the
	// stored key as it is.
	SSHHostKey string
	At         time.Time
}

// OfflineAfter is how long a node may stay silent before it is offline.
const OfflineAfter = 90 * time.Second

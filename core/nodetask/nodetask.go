// Package nodetask defines the work the control plane sends to node agents:
// the fixed catalogue of task types, their parameters and validation, and
// the signed envelope (Ed25519 over node id, type, parameters, issued-at,
// expiry and a per-node sequence number). The agent runs only compiled
// handlers for these types.
package nodetask

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Type is a task type from the fixed catalogue.
type Type string

const (
	ProvisionUser Type = "allocation.provision_user"
	StopUser      Type = "allocation.stop_user"
	RevokeUser    Type = "allocation.revoke_user"
	HealthCheck   Type = "node.health_check"
)

// Catalogue lists every type an agent may run (StorageSync: storage.go).
var Catalogue = []Type{ProvisionUser, StopUser, RevokeUser, HealthCheck, StorageSync}

// Known reports whether t is in the catalogue.
func Known(t Type) bool {
	for _, c := range Catalogue {
		if c == t {
			return true
		}
	}
	return false
}

// State of a queued task.
type State string

const (
	Queued    State = "queued"
	Leased    State = "leased"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Expired   State = "expired"
)

// Done reports whether the task has a final outcome.
func (s State) Done() bool { return s == Succeeded || s == Failed || s == Expired }

// Envelope is a task as signed by the control plane and verified by the
// agent. Params is canonical JSON of the type's parameter struct.
type Envelope struct {
	TaskID    string          `json:"task_id"`
	NodeID    string          `json:"node_id"`
	Type      Type            `json:"type"`
	Params    json.RawMessage `json:"params"`
	IssuedAt  time.Time       `json:"issued_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	Seq       uint64          `json:"seq"`
	KeyID     string          `json:"key_id"`
	Signature []byte          `json:"signature"`
}

// signingDomain separates task signatures from any other use of the key.
const signingDomain = "gpuaas-node-task-v1"

// SigningBytes is the exact message signed: a domain tag and each field
// length-prefixed, so no two distinct envelopes share a message.
func (e Envelope) SigningBytes() []byte {
	var b bytes.Buffer
	field := func(p []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		b.Write(n[:])
		b.Write(p)
	}
	field([]byte(signingDomain))
	field([]byte(e.TaskID))
	field([]byte(e.NodeID))
	field([]byte(e.Type))
	field(e.Params)
	var ts [8 * 3]byte
	binary.BigEndian.PutUint64(ts[0:], uint64(e.IssuedAt.UnixNano()))
	binary.BigEndian.PutUint64(ts[8:], uint64(e.ExpiresAt.UnixNano()))
	binary.BigEndian.PutUint64(ts[16:], e.Seq)
	b.Write(ts[:])
	field([]byte(e.KeyID))
	return b.Bytes()
}

// ProvisionUserParams create a per-allocation account on the node.
type ProvisionUserParams struct {
	AllocationID   string   `json:"allocation_id"`
	Username       string   `json:"username"`
	AuthorizedKeys []string `json:"authorized_keys"`
	// UserCAKey is the platform's SSH user CA public key (authorized_keys
	// format); certificates it signs for Username are accepted (terminal).
	UserCAKey string `json:"user_ca_key"`
	// GPUIndices the account may use; empty means all of the node's GPUs.
	GPUIndices []int `json:"gpu_indices,omitempty"`
	// Sessions bounds the account's browser-terminal sessions on the node;
	// zero fields take the node's defaults.
	Sessions SessionPolicy `json:"sessions,omitzero"`
}

// SessionPolicy is how the node keeps an account's browser-terminal
// sessions (doc/terminal.md#sessions).
type SessionPolicy struct {
	// ReconnectWindowSeconds a session whose client went away keeps its
	// shell for a reconnect; 0 takes the node's default.
	ReconnectWindowSeconds int `json:"reconnect_window_seconds,omitempty"`
	// MaxSessions the account may hold at once, attached or detached; 0
	// takes the node's default.
	MaxSessions int `json:"max_sessions,omitempty"`
}

// Bounds of the parameters that carry durations and counts.
const (
	MaxReconnectWindowSeconds = 86400
	MaxSessionsPerAccount     = 64
	MaxGraceSeconds           = 300
)

// StopUserParams end the account's processes and refuse its logins but
// keep the account and its files: a release that pushes files back to
// project storage runs it first, so no process is still writing them.
type StopUserParams struct {
	AllocationID string `json:"allocation_id"`
	Username     string `json:"username"`
	// GraceSeconds the processes get between SIGTERM and SIGKILL.
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// RevokeUserParams remove the account, its processes and its files.
type RevokeUserParams struct {
	AllocationID string `json:"allocation_id"`
	Username     string `json:"username"`
	// GraceSeconds the account's processes get between SIGTERM and
	// SIGKILL; 0 kills at once.
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// HealthCheckParams ask the agent for a fresh health report.
type HealthCheckParams struct{}

// usernameRE: the platform's own prefix, so a task can never name root or
// an existing system account.
var usernameRE = regexp.MustCompile(`^ga_[a-z0-9]{8,24}$`)

// ValidUsername reports whether name is an allocation account's name (the
// platform's prefix: never root or a system account).
func ValidUsername(name string) bool { return usernameRE.MatchString(name) }

// UsernameFor derives the account name for an allocation.
func UsernameFor(allocationID string) string {
	s := strings.ReplaceAll(strings.ToLower(allocationID), "-", "")
	if len(s) > 24 {
		s = s[len(s)-24:]
	}
	for len(s) < 8 {
		s += "0"
	}
	return "ga_" + s
}

// ValidateParams decodes params strictly for the type and checks them.
// Unknown types and unknown fields are refused.
func ValidateParams(t Type, raw json.RawMessage) (any, error) {
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			return fault.Invalid("params", "parameters do not match "+string(t)+": "+err.Error())
		}
		if d.More() {
			return fault.Invalid("params", "trailing data after parameters")
		}
		return nil
	}
	switch t {
	case ProvisionUser:
		var p ProvisionUserParams
		if err := dec(&p); err != nil {
			return nil, err
		}
		if !usernameRE.MatchString(p.Username) {
			return nil, fault.Invalid("params.username", "username must match ga_[a-z0-9]{8,24}")
		}
		if p.AllocationID == "" || len(p.AllocationID) > 64 {
			return nil, fault.Invalid("params.allocation_id", "allocation_id is required")
		}
		if len(p.AuthorizedKeys) == 0 || len(p.AuthorizedKeys) > 32 {
			return nil, fault.Invalid("params.authorized_keys", "between 1 and 32 keys are required")
		}
		for _, k := range p.AuthorizedKeys {
			if err := ValidatePublicKey(k); err != nil {
				return nil, err
			}
		}
		if p.UserCAKey != "" {
			if err := ValidatePublicKey(p.UserCAKey); err != nil {
				return nil, fault.Invalid("params.user_ca_key", "user CA key is not a valid public key")
			}
		}
		if w := p.Sessions.ReconnectWindowSeconds; w < 0 || w > MaxReconnectWindowSeconds {
			return nil, fault.Invalid("params.sessions.reconnect_window_seconds", "the reconnect window must be within 0..86400 seconds")
		}
		if m := p.Sessions.MaxSessions; m < 0 || m > MaxSessionsPerAccount {
			return nil, fault.Invalid("params.sessions.max_sessions", "max_sessions must be within 0..64")
		}
		seen := map[int]bool{}
		for _, i := range p.GPUIndices {
			if i < 0 || i > 63 || seen[i] {
				return nil, fault.Invalid("params.gpu_indices", "GPU indices must be distinct and within 0..63")
			}
			seen[i] = true
		}
		return p, nil
	case StopUser:
		var p StopUserParams
		if err := dec(&p); err != nil {
			return nil, err
		}
		if err := validateAccountTask(p.Username, p.AllocationID, p.GraceSeconds); err != nil {
			return nil, err
		}
		return p, nil
	case RevokeUser:
		var p RevokeUserParams
		if err := dec(&p); err != nil {
			return nil, err
		}
		if !usernameRE.MatchString(p.Username) {
			return nil, fault.Invalid("params.username", "username must match ga_[a-z0-9]{8,24}")
		}
		if p.AllocationID == "" || len(p.AllocationID) > 64 {
			return nil, fault.Invalid("params.allocation_id", "allocation_id is required")
		}
		if p.GraceSeconds < 0 || p.GraceSeconds > MaxGraceSeconds {
			return nil, fault.Invalid("params.grace_seconds", "grace_seconds must be within 0..300")
		}
		return p, nil
	case HealthCheck:
		var p HealthCheckParams
		if err := dec(&p); err != nil {
			return nil, err
		}
		return p, nil
	case StorageSync:
		var p StorageSyncParams
		if err := dec(&p); err != nil {
			return nil, err
		}
		if err := validateStorageSync(p); err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fault.Invalid("type", "unknown task type")
}

// validateAccountTask checks what stop and revoke share.
func validateAccountTask(username, allocationID string, grace int) error {
	if !usernameRE.MatchString(username) {
		return fault.Invalid("params.username", "username must match ga_[a-z0-9]{8,24}")
	}
	if allocationID == "" || len(allocationID) > 64 {
		return fault.Invalid("params.allocation_id", "allocation_id is required")
	}
	if grace < 0 || grace > MaxGraceSeconds {
		return fault.Invalid("params.grace_seconds", "grace_seconds must be within 0..300")
	}
	return nil
}

// ValidatePublicKey accepts one SSH public key in authorized_keys format of
// a strong type: ed25519, ECDSA (P-256/384/521), security keys, or RSA of at
// least 3072 bits. Private keys, DSA and short RSA keys are refused.
func ValidatePublicKey(line string) error {
	if strings.Contains(line, "PRIVATE KEY") {
		return fault.Invalid("public_key", "this is a private key: paste the public key (.pub) instead")
	}
	if strings.ContainsAny(strings.TrimSpace(line), "\n\r") {
		return fault.Invalid("public_key", "one key per entry")
	}
	pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return fault.Invalid("public_key", "not an SSH public key in authorized_keys format")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fault.Invalid("public_key", "one key per entry")
	}
	switch pk.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return nil
	case ssh.KeyAlgoRSA:
		if cpk, ok := pk.(ssh.CryptoPublicKey); ok {
			if rk, ok := cpk.CryptoPublicKey().(interface{ Size() int }); ok && rk.Size()*8 >= 3072 {
				return nil
			}
		}
		return fault.Invalid("public_key", "RSA keys must be at least 3072 bits")
	default:
		return fault.Invalid("public_key", "key type "+pk.Type()+" is not accepted (use ed25519)")
	}
}

// Result is what an agent reports for a task.
type Result struct {
	TaskID       string          `json:"task_id"`
	Succeeded    bool            `json:"succeeded"`
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	Output       json.RawMessage `json:"output,omitempty"`
}

// Task is a queued task as the control plane stores it.
type Task struct {
	Envelope
	AllocationID string
	State        State
	Attempts     int
	Result       *Result
	// TraceParent is the W3C trace context of whoever enqueued the task
	// (set by the hosts' tracing; "" when off). It is not signed and never
	// reaches the agent: the gateway uses it to trace the agent's work.
	TraceParent string
}

// DefaultTTL is how long a task stays valid after it is issued.
const DefaultTTL = 10 * time.Minute

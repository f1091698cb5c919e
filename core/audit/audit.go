// Package audit is the model of the append-only audit log: who did what to
// which resource, with what outcome, from where.
package audit

import (
	"time"
)

// Outcome of an audited action.
type Outcome string

const (
	Success Outcome = "success"
	Denied  Outcome = "denied"
	Failure Outcome = "failure"
)

// ActorType distinguishes people from machines.
type ActorType string

const (
	ActorUser           ActorType = "user"
	ActorServiceAccount ActorType = "service_account"
	ActorSystem         ActorType = "system"
	ActorNode           ActorType = "node"
)

// Event is one audit record. Metadata must never hold secrets.
type Event struct {
	ID            string
	OccurredAt    time.Time
	ActorType     ActorType
	ActorID       string
	TenantID      string
	ProjectID     string
	Action        string // e.g. "project.create", "auth.login"
	ResourceType  string
	ResourceID    string // canonical identifier where one exists
	Outcome       Outcome
	CorrelationID string
	SourceIP      string
	Metadata      map[string]any
}

// Filter selects audit events; zero fields match everything.
type Filter struct {
	TenantID string
	ActorID  string
	Action   string
	// ResourceType and ResourceID select by target: the type alone, or
	// one resource (its canonical identifier, or the bare id at its end).
	ResourceType string
	ResourceID   string
	Since        time.Time
	Until        time.Time
	Limit        int
	Cursor       string
}

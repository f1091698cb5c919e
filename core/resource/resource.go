// Package resource implements the canonical resource identifier:
//
//	{partition}:{service}:{region}:{tenant}:{project}:{type}:{id}
//
// e.g. core42:aicloud:me-central-1:6f1c…:a2b9…:allocation:93d0…
// Tenant-level resources leave project empty; global ones leave tenant and
// project empty. Segments never contain ':'.
package resource

import (
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Defaults for the first two segments.
const (
	DefaultPartition = "core42"
	DefaultService   = "aicloud"
)

// Registered resource types.
const (
	TypeTenant     = "tenant"
	TypeProject    = "project"
	TypeUser       = "user"
	TypeAllocation = "allocation"
	TypeNode       = "node"
	TypeSKU        = "sku"
	TypeSSHKey     = "ssh-key"
	TypePayment    = "payment-session"
	TypeObject     = "object"
	TypeServiceAcc = "service-account"
	TypeWebhook    = "webhook-endpoint"
	TypeRefund     = "refund-request"
)

var knownTypes = map[string]bool{TypeTenant: true, TypeProject: true, TypeUser: true,
	TypeAllocation: true, TypeNode: true, TypeSKU: true, TypeSSHKey: true, TypePayment: true,
	TypeObject: true, TypeServiceAcc: true, TypeWebhook: true, TypeRefund: true}

// ID is a parsed canonical identifier.
type ID struct {
	Partition, Service, Region, Tenant, Project, Type, Resource string
}

// String formats the identifier.
func (id ID) String() string {
	return strings.Join([]string{id.Partition, id.Service, id.Region, id.Tenant, id.Project, id.Type, id.Resource}, ":")
}

// New builds an identifier with the default partition and service.
func New(region, tenant, project, typ, id string) ID {
	return ID{DefaultPartition, DefaultService, region, tenant, project, typ, id}
}

// Validate checks every segment.
func (id ID) Validate() error {
	for _, s := range []struct {
		name, v  string
		required bool
	}{
		{"partition", id.Partition, true}, {"service", id.Service, true}, {"region", id.Region, false},
		{"tenant", id.Tenant, false}, {"project", id.Project, false}, {"type", id.Type, true},
		{"id", id.Resource, true},
	} {
		if s.required && s.v == "" {
			return fault.Invalid("resource_id", s.name+" segment is empty")
		}
		if !validSegment(s.v) {
			return fault.Invalid("resource_id", s.name+" segment has invalid characters")
		}
	}
	if !knownTypes[id.Type] {
		return fault.Invalid("resource_id", "unknown resource type "+quote(id.Type))
	}
	if id.Project != "" && id.Tenant == "" {
		return fault.Invalid("resource_id", "project segment requires a tenant segment")
	}
	return nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return "\"" + strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s) + "\""
}

// validSegment allows [A-Za-z0-9._-] up to 128 bytes.
func validSegment(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Parse parses and validates a canonical identifier.
func Parse(s string) (ID, error) {
	if len(s) > 7*129 {
		return ID{}, fault.Invalid("resource_id", "identifier too long")
	}
	parts := strings.Split(s, ":")
	if len(parts) != 7 {
		return ID{}, fault.Invalid("resource_id", "identifier must have 7 ':'-separated segments")
	}
	id := ID{parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]}
	if err := id.Validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

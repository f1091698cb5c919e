package httphost

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/policy"
)

// recordingT collects what ContractChecked reports.
type recordingT struct {
	mu   sync.Mutex
	errs []string
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestContractCheckedCatchesDrift proves the response check can fail: a
// handler that answers outside the document is reported, one inside is not.
func TestContractCheckedCatchesDrift(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		body   string
		drift  bool
	}{
		{"a body of the documented shape", 503, `{"status":"degraded","checks":{"db":"down: x"}}`, false},
		{"a missing required field", 200, `{"status":"ok"}`, true},
		{"a field the schema does not have", 200, `{"status":"ok","checks":{},"extra":1}`, true},
		{"a value outside the enum", 200, `{"status":"fine","checks":{}}`, true},
		{"an undeclared status", 418, `{"status":"ok","checks":{}}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newHarness(t).srv
			srv.handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Correlation-ID", "c")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			})
			rec := &recordingT{}
			srv.ContractChecked(rec).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/healthz", nil))
			if got := len(rec.errs) > 0; got != c.drift {
				t.Fatalf("reported drift = %v (%v), want %v", got, rec.errs, c.drift)
			}
		})
	}
}

// TestContractDeclaresTheErrorsTheHostGives: the host answers 400 to any
// operation that takes input, 401, 403 and 429 to any that is not public, and
// 413 to any that takes a body it reads, so the document must declare them
// (the response check then holds every test to it).
func TestContractDeclaresTheErrorsTheHostGives(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	routes, err := loadRoutes(spec)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for k, rt := range routes {
		need := []string{}
		if len(rt.params) > 0 || rt.op.RequestBody != nil {
			need = append(need, "400")
		}
		if rt.Authz != AuthzPublic {
			// 403: a machine credential without the route's scope, or on a
			// route for people only (x-scope).
			need = append(need, "401", "403", "429")
		}
		if rt.op.RequestBody != nil && !rt.rawBody {
			need = append(need, "413")
		}
		for _, code := range need {
			if rt.op.Responses.Value(code) == nil {
				problems = append(problems, k+" does not declare "+code)
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Fatalf("the contract is missing responses the host gives:\n%s", strings.Join(problems, "\n"))
	}
}

// TestContractLengthsMatchTheCore: the use cases hold text to the lengths
// the contract publishes; a limit changed on one side only fails here.
func TestContractLengthsMatchTheCore(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	prop := func(schema, name string) *openapi3.Schema {
		s := spec.Components.Schemas[schema]
		if s == nil || s.Value.Properties[name] == nil {
			t.Fatalf("the contract has no %s.%s", schema, name)
		}
		return s.Value.Properties[name].Value
	}
	param := func(name string) *openapi3.Schema {
		p := spec.Components.Parameters[name]
		if p == nil {
			t.Fatalf("the contract has no parameter %s", name)
		}
		return p.Value.Schema.Value
	}
	cases := []struct {
		name string
		sc   *openapi3.Schema
		core int
	}{
		{"CreateProjectRequest.name", prop("CreateProjectRequest", "name"), identity.NameMaxLength},
		{"InvitationRequest.email", prop("InvitationRequest", "email"), identity.EmailMaxLength},
		{"AddMemberRequest.user_id", prop("AddMemberRequest", "user_id"), identity.IDMaxLength},
		{"ProjectID", param("ProjectID"), identity.IDMaxLength},
		{"ProjectIDPath", param("ProjectIDPath"), identity.IDMaxLength},
		{"AllocationIDPath", param("AllocationIDPath"), identity.IDMaxLength},
		{"NodeIDPath", param("NodeIDPath"), identity.IDMaxLength},
		{"TenantIDPath", param("TenantIDPath"), identity.IDMaxLength},
		{"AddSSHKeyRequest.name", prop("AddSSHKeyRequest", "name"), allocationsvc.SSHKeyNameMaxLength},
		{"AddSSHKeyRequest.public_key", prop("AddSSHKeyRequest", "public_key"), allocationsvc.PublicKeyMaxLength},
		{"CreateAllocationRequest.sku_id", prop("CreateAllocationRequest", "sku_id"), inventory.SKUIDMaxLength},
		{"CreateAllocationRequest.ssh_key_ids[]", prop("CreateAllocationRequest", "ssh_key_ids").Items.Value, identity.IDMaxLength},
		{"RegisterNodeRequest.name", prop("RegisterNodeRequest", "name"), inventory.NodeNameMaxLength},
		{"RegisterNodeRequest.sku_id", prop("RegisterNodeRequest", "sku_id"), inventory.SKUIDMaxLength},
		{"RegisterNodeRequest.ssh_host", prop("RegisterNodeRequest", "ssh_host"), inventory.SSHHostMaxLength},
		{"AdminCreditRequest.reason", prop("AdminCreditRequest", "reason"), ledgersvc.ReasonMaxLength},
		{"AdminRefundRequest.reason", prop("AdminRefundRequest", "reason"), ledgersvc.ReasonMaxLength},
		{"AdminRefundRequest.credit_entry_id", prop("AdminRefundRequest", "credit_entry_id"), identity.IDMaxLength},
		{"SetPolicyRequest.value", prop("SetPolicyRequest", "value"), policy.ValueMaxLength},
	}
	for _, c := range cases {
		if c.sc.MaxLength == nil || int(*c.sc.MaxLength) != c.core {
			t.Errorf("%s: contract maxLength %v, core %d", c.name, c.sc.MaxLength, c.core)
		}
	}
}

// TestContractBoundsEveryRequestString: every string a request may carry
// (parameter, body member, array item) has a maxLength, an enum or the
// date-time format, so the
// host refuses over-long input before a store does; a string with a
// pattern also carries an example (the route walk builds valid requests
// from it).
func TestContractBoundsEveryRequestString(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	routes, err := loadRoutes(spec)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	var check func(where string, sc *openapi3.Schema)
	check = func(where string, sc *openapi3.Schema) {
		switch {
		case sc.Type.Is("string"):
			if sc.MaxLength == nil && len(sc.Enum) == 0 && sc.Format != "date-time" { // a date-time's format bounds it
				problems = append(problems, where+": a string without maxLength")
			}
			if sc.Pattern != "" && sc.Example == nil && len(sc.Examples) == 0 {
				problems = append(problems, where+": a pattern without an example")
			}
		case sc.Type.Is("array"):
			check(where+"[]", sc.Items.Value)
		case sc.Type.Is("object"):
			for name, p := range sc.Properties {
				check(where+"."+name, p.Value)
			}
		}
	}
	for k, rt := range routes {
		for _, p := range rt.params {
			check(k+" "+p.In+" "+p.Name, p.Schema.Value)
		}
		if sc := bodySchema(rt.op); sc != nil && !rt.rawBody {
			check(k+" body", sc)
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Fatalf("unbounded request strings:\n%s", strings.Join(problems, "\n"))
	}
}

package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
)

func TestFromWrapsForeignErrorsAsInternal(t *testing.T) {
	t.Parallel()
	e := fault.From(errors.New("boom: password=hunter2"))
	if e.Kind != fault.KindInternal || e.Code != fault.CodeInternal || e.Message != "internal error" {
		t.Fatalf("got %+v", e)
	}
}

func TestFromFindsWrappedFault(t *testing.T) {
	t.Parallel()
	inner := fault.NotFound("project", "p1")
	e := fault.From(fmt.Errorf("loading: %w", inner))
	if e != inner {
		t.Fatalf("got %+v", e)
	}
	if !errors.Is(fmt.Errorf("x: %w", inner), fault.NotFound("", "")) {
		t.Fatal("errors.Is by kind failed")
	}
	if errors.Is(inner, fault.Forbidden("")) {
		t.Fatal("errors.Is matched another kind")
	}
}

func TestWithAndWrapDoNotMutate(t *testing.T) {
	t.Parallel()
	base := fault.Conflict("", "x")
	a := base.With("k", 1).Wrap(errors.New("cause"))
	if base.Details != nil || base.Cause != nil {
		t.Fatal("base mutated")
	}
	if a.Details["k"] != 1 || a.Cause == nil || a.Code != fault.CodeConflict {
		t.Fatalf("got %+v", a)
	}
}

func TestCodesAreUniqueAndKindsNamed(t *testing.T) {
	t.Parallel()
	codes := []fault.Code{fault.CodeInternal, fault.CodeValidationFailed, fault.CodeTokenMissing, fault.CodeTokenExpired,
		fault.CodeTokenInvalid, fault.CodeForbidden, fault.CodeNotFound, fault.CodeConflict, fault.CodeRateLimited,
		fault.CodeIdempotencyKeyReused, fault.CodeIdempotencyInFlight, fault.CodeIdempotencyResponseLost, fault.CodePayloadTooLarge, fault.CodeUnavailable,
		fault.CodeFeatureDisabled, fault.CodeInsufficientBalance, fault.CodeProjectRequired, fault.CodeUnsupportedMedia,
		fault.CodeMethodNotAllowed}
	seen := map[fault.Code]bool{}
	for _, c := range codes {
		if c == "" || seen[c] {
			t.Fatalf("code %q empty or duplicated", c)
		}
		seen[c] = true
	}
	for k := fault.KindInternal; k <= fault.KindUnavailable; k++ {
		if s := k.String(); s == "" || s[0] == 'k' {
			t.Fatalf("kind %d unnamed: %q", k, s)
		}
	}
}

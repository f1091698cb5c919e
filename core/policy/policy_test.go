package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
)

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	for _, k := range policy.Keys() {
		if err := k.Validate(k.Default); err != nil {
			t.Errorf("%s: default %q invalid: %v", k.Name, k.Default, err)
		}
		if got, ok := policy.Lookup(k.Name); !ok || got.Name != k.Name {
			t.Errorf("%s not registered", k.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key policy.Key
		raw string
		ok  bool
	}{
		{policy.AllocationMaxPerUser, "3", true},
		{policy.AllocationMaxPerUser, "-1", false},
		{policy.AllocationMaxPerUser, "1001", false},
		{policy.AllocationMaxPerUser, "three", false},
		{policy.PersonalLoginEnabled, "true", true},
		{policy.PersonalLoginEnabled, "yes", false},
		{policy.BillingCurrency, "eur", true},
	}
	for _, c := range cases {
		err := c.key.Validate(c.raw)
		if (err == nil) != c.ok {
			t.Errorf("%s=%q: err %v, want ok=%v", c.key.Name, c.raw, err, c.ok)
		}
		if err != nil && !fault.IsKind(err, fault.KindInvalid) {
			t.Errorf("%s=%q: err kind %v", c.key.Name, c.raw, fault.KindOf(err))
		}
	}
}

func TestValuesFallBackToDefaults(t *testing.T) {
	t.Parallel()
	v := policy.Values{policy.AllocationMaxPerUser.Name: "7", policy.RateLimitDefaultRPM.Name: "junk"}
	if got := v.Int(policy.AllocationMaxPerUser); got != 7 {
		t.Fatalf("stored value: %d", got)
	}
	if got := v.Int(policy.RateLimitDefaultRPM); got != 600 {
		t.Fatalf("invalid stored value should fall back to default, got %d", got)
	}
	if v.Bool(policy.PersonalLoginEnabled) {
		t.Fatal("personal login default should be false")
	}
}

// TestStringValuesAreSingleLineText: string policy values follow core/text.
func TestStringValuesAreSingleLineText(t *testing.T) {
	t.Parallel()
	k := policy.BillingCurrency
	for _, v := range []string{"us\x00d", "us\x1bd", "u\u202esd", "us\xffd", strings.Repeat("x", policy.ValueMaxLength+1)} {
		if err := k.Validate(v); !fault.IsKind(err, fault.KindInvalid) {
			t.Errorf("Validate(%q) = %v, want invalid", v, err)
		}
	}
	if err := k.Validate("eur"); err != nil {
		t.Errorf("Validate(eur) = %v", err)
	}
}

func TestRefundWindowStart(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		stored string
		want   time.Time
	}{
		{"", now.AddDate(0, 0, -30)}, // the default
		{"7", now.AddDate(0, 0, -7)},
		{"0", now},                     // refunds only of credits made this instant
		{"-1", now.AddDate(0, 0, -30)}, // invalid: the default
	} {
		v := policy.Values{}
		if c.stored != "" {
			v[policy.RefundWindowDays.Name] = c.stored
		}
		if got := v.RefundWindowStart(now); !got.Equal(c.want) {
			t.Errorf("refund_window_days %q: start %v, want %v", c.stored, got, c.want)
		}
	}
}

package billing_test

import (
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

func TestWindowsSumToTheSpan(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 13, 250_000_000, time.UTC)
	for _, price := range []int64{0, 1, 7, 299, 2392, 250_000} {
		var sum int64
		from := start
		for w := 1; w <= 500; w++ {
			to := billing.WindowEnd(start.Add(time.Duration(w)*37*time.Second), 37*time.Second)
			if !to.After(from) {
				continue
			}
			c := billing.WindowCostMinor(price, start, from, to)
			if c < 0 {
				t.Fatalf("negative window cost %d", c)
			}
			sum += c
			from = to
		}
		if want := ledger.CostMinor(price, billing.WholeSeconds(start, from)); sum != want {
			t.Errorf("price %d: windows sum to %d; the span costs %d", price, sum, want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Hour), now.Add(-25*time.Hour)
	cases := []struct {
		name                          string
		s                             billing.TenantStatus
		next                          billing.TenantState
		warn, deplete, release, write bool
	}{
		{"ok stays ok", billing.TenantStatus{BalanceMinor: 5000, State: billing.TenantOK}, billing.TenantOK, false, false, false, false},
		{"ok to low warns", billing.TenantStatus{BalanceMinor: 10, State: billing.TenantOK}, billing.TenantLow, true, false, false, true},
		{"low stays quiet", billing.TenantStatus{BalanceMinor: 10, State: billing.TenantLow, LastWarnedAt: &recent}, billing.TenantLow, false, false, false, false},
		{"low warns after 24h", billing.TenantStatus{BalanceMinor: 10, State: billing.TenantLow, LastWarnedAt: &old}, billing.TenantLow, true, false, false, true},
		{"to depleted", billing.TenantStatus{BalanceMinor: 0, State: billing.TenantLow, HasOpenUsage: true}, billing.TenantDepleted, false, true, true, true},
		{"still depleted, still running", billing.TenantStatus{BalanceMinor: -5, State: billing.TenantDepleted, HasOpenUsage: true}, billing.TenantDepleted, false, false, true, false},
		{"depleted, nothing running", billing.TenantStatus{BalanceMinor: -5, State: billing.TenantDepleted}, billing.TenantDepleted, false, false, false, false},
		{"credit returns", billing.TenantStatus{BalanceMinor: 5000, State: billing.TenantDepleted}, billing.TenantOK, false, false, false, true},
		{"partial credit: low again", billing.TenantStatus{BalanceMinor: 10, State: billing.TenantDepleted, LastWarnedAt: &recent}, billing.TenantLow, true, false, false, true},
	}
	for _, c := range cases {
		d := billing.Decide(c.s, 1000, now)
		if d.Next != c.next || d.Warn != c.warn || d.Deplete != c.deplete || d.Release != c.release || d.Changed != c.write {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
}

func TestUsageIdempotencyKey(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 1, 900_000_000, time.FixedZone("IST", 19800))
	// 2025-12-31T18:30:01Z: the zone does not matter, fractions are dropped.
	if got := billing.UsageIdempotencyKey("r1", at); got != "usage:r1:1767205801" {
		t.Fatalf("key %s", got)
	}
}

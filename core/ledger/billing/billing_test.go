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
		// The expectation is computed here, not by the functions under test:
		// whole seconds of the span, priced per hour, rounded down once.
		secs := int64(from.Sub(start) / time.Second)
		if want := price * secs / 3600; sum != want {
			t.Errorf("price %d: windows sum to %d; the span of %d s costs %d", price, sum, secs, want)
		}
	}
}

// TestCosts pins the price arithmetic to literal amounts, so a change to
// the rounding or the unit shows up here and not only as drift.
func TestCosts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		hourly, seconds, want int64
	}{
		{299, 5400, 448}, // 1.5 h at 2.99/h = 4.485: rounded down
		{299, 3600, 299},
		{299, 12, 0}, // under one minor unit
		{299, 13, 1},
		{2392, 1, 0},
		{2392, 270, 179},
		{250_000, 37, 2569},
		{250_000, -5, 0},
		{0, 3600, 0},
	} {
		if got := ledger.CostMinor(c.hourly, c.seconds); got != c.want {
			t.Errorf("CostMinor(%d, %d) = %d; want %d", c.hourly, c.seconds, got, c.want)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		hourly   int64
		from, to time.Duration
		want     int64
	}{
		{299, 0, time.Minute, 4},                   // 0..60 s: 4.98 → 4
		{299, time.Minute, 2 * time.Minute, 5},     // 60..120 s: 9.96 → 9, minus 4
		{299, 2 * time.Minute, 3 * time.Minute, 5}, // 120..180 s: 14.95 → 14, minus 9
		{3600, 10 * time.Second, 20*time.Second + 999*time.Millisecond, 10},
	} {
		if got := billing.WindowCostMinor(c.hourly, start, start.Add(c.from), start.Add(c.to)); got != c.want {
			t.Errorf("WindowCostMinor(%d, %v..%v) = %d; want %d", c.hourly, c.from, c.to, got, c.want)
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

func TestReleaseWarning(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const hour = 6000 // burn per hour: 100 per minute
	for _, c := range []struct {
		name        string
		s           billing.TenantStatus
		within      time.Duration
		warn, rearm bool
	}{
		{"runway 30 min, warn at 60", billing.TenantStatus{BalanceMinor: 3000, BurnRateMinor: hour}, time.Hour, true, false},
		{"runway exactly 60 min", billing.TenantStatus{BalanceMinor: 6000, BurnRateMinor: hour}, time.Hour, true, false},
		{"runway 61 min", billing.TenantStatus{BalanceMinor: 6100, BurnRateMinor: hour}, time.Hour, false, false},
		{"nothing burns", billing.TenantStatus{BalanceMinor: 10}, time.Hour, false, false},
		{"already spent (depletion handles it)", billing.TenantStatus{BalanceMinor: 0, BurnRateMinor: hour}, time.Hour, false, false},
		{"warning off", billing.TenantStatus{BalanceMinor: 100, BurnRateMinor: hour}, 0, false, false},
		{"warned, still close", billing.TenantStatus{BalanceMinor: 3000, BurnRateMinor: hour, ReleaseWarnedAt: &at}, time.Hour, false, false},
		{"warned, runway 100 min (under twice)", billing.TenantStatus{BalanceMinor: 10000, BurnRateMinor: hour, ReleaseWarnedAt: &at}, time.Hour, false, false},
		{"warned, topped up past twice", billing.TenantStatus{BalanceMinor: 12100, BurnRateMinor: hour, ReleaseWarnedAt: &at}, time.Hour, false, true},
		{"warned, released everything", billing.TenantStatus{BalanceMinor: 10, ReleaseWarnedAt: &at}, time.Hour, false, true},
	} {
		warn, rearm := billing.ReleaseWarning(c.s, c.within)
		if warn != c.warn || rearm != c.rearm {
			t.Errorf("%s: warn %v rearm %v; want %v %v", c.name, warn, rearm, c.warn, c.rearm)
		}
	}
}

package ledger_test

import (
	"testing"

	"github.com/gpuaas/gpuaas/core/ledger"
)

func TestEntryValidate(t *testing.T) {
	t.Parallel()
	base := ledger.Entry{Currency: "usd", IdempotencyKey: "k"}
	cases := []struct {
		typ    ledger.EntryType
		amount int64
		ok     bool
	}{
		{ledger.Credit, 100, true}, {ledger.Credit, -1, false}, {ledger.UsageDebit, -5, true},
		{ledger.UsageDebit, 5, false}, {ledger.Refund, -5, true}, {ledger.Adjustment, -3, true},
		{ledger.Adjustment, 0, false}, {"gift", 5, false},
	}
	for _, c := range cases {
		e := base
		e.Type, e.AmountMinor = c.typ, c.amount
		if err := e.Validate(); (err == nil) != c.ok {
			t.Errorf("%s %d: %v", c.typ, c.amount, err)
		}
	}
	e := base
	e.Type, e.AmountMinor, e.IdempotencyKey = ledger.Credit, 1, ""
	if e.Validate() == nil {
		t.Error("missing idempotency key accepted")
	}
}

func TestCostMinor(t *testing.T) {
	t.Parallel()
	if got := ledger.CostMinor(3600, 1); got != 1 {
		t.Fatalf("one second at 3600/h = %d", got)
	}
	if got := ledger.CostMinor(250000, 3600); got != 250000 {
		t.Fatalf("one hour = %d", got)
	}
	if got := ledger.CostMinor(100, -5); got != 0 {
		t.Fatalf("negative seconds = %d", got)
	}
}

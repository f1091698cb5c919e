package payment_test

import (
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
)

func TestCheckTopUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		amount   int64
		currency string
		code     fault.Code
	}{
		{"at minimum", 500, "usd", ""},
		{"at maximum", 10_000, "USD", ""},
		{"below minimum", 499, "usd", payment.CodeAmountOutOfRange},
		{"above maximum", 10_001, "usd", payment.CodeAmountOutOfRange},
		{"zero", 0, "usd", payment.CodeAmountOutOfRange},
		{"negative", -500, "usd", payment.CodeAmountOutOfRange},
		{"other currency", 1000, "eur", payment.CodeCurrencyNotSupported},
		{"empty currency", 1000, "", payment.CodeCurrencyNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := payment.CheckTopUp(tc.amount, 500, 10_000, tc.currency, "usd")
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			fe := fault.From(err)
			if err == nil || fe.Code != tc.code || fe.Kind != fault.KindUnprocessable {
				t.Fatalf("want %s (unprocessable), got %v", tc.code, err)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	all := []payment.Status{payment.Initiated, payment.Credited, payment.FailedReconcile, payment.Expired}
	allowed := map[[2]payment.Status]bool{
		{payment.Initiated, payment.Credited}:        true,
		{payment.Initiated, payment.FailedReconcile}: true,
		{payment.Initiated, payment.Expired}:         true,
	}
	for _, from := range all {
		if !from.Valid() {
			t.Fatalf("%s should be valid", from)
		}
		for _, to := range all {
			if got := payment.CanTransition(from, to); got != allowed[[2]payment.Status{from, to}] {
				t.Errorf("%s → %s: got %v", from, to, got)
			}
		}
	}
	if payment.Status("paid").Valid() {
		t.Fatal("unknown status accepted")
	}
}

func TestMismatch(t *testing.T) {
	t.Parallel()
	s := payment.Session{AmountMinor: 2500, Currency: "usd"}
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{2500, "usd", ""}, {2500, "USD", ""}, {2499, "usd", "amount_mismatch"}, {2500, "eur", "currency_mismatch"},
	} {
		if got := payment.Mismatch(s, tc.amount, tc.currency); got != tc.want {
			t.Errorf("Mismatch(%d %s) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
	if payment.LedgerKey("abc") != "payment:abc" {
		t.Fatal("ledger key format changed: existing credits would no longer dedupe")
	}
}

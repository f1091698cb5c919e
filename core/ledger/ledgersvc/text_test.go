package ledgersvc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
)

// TestAdminReasonTextPolicy: an operator's reason is single-line text of
// 1-500 characters, refused before the ledger sees it (a NUL used to come
// back from Postgres as a 500; the contract said 2000 characters).
func TestAdminReasonTextPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tn := e.tenant()
	for name, reason := range map[string]string{"NUL": "a\x00b", "ESC": "a\x1b[2Jb", "newline": "a\nb",
		"bidi override": "a\u202eb", "invalid UTF-8": "a\xffb", "empty": "", "spaces": "   ",
		"501 characters": strings.Repeat("r", ledgersvc.ReasonMaxLength+1)} {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.AdminCredit(ctx, admin, ledgersvc.AdminCreditRequest{TenantID: tn.id, AmountMinor: 5,
				Currency: "usd", Reason: reason, IdempotencyKey: "k-" + name})
			wantReason(t, err)
			_, err = e.svc.AdminRefund(ctx, admin, ledgersvc.AdminRefundRequest{TenantID: tn.id, AmountMinor: 5,
				Reason: reason, IdempotencyKey: "r-" + name})
			wantReason(t, err)
		})
	}
	if _, err := e.svc.AdminCredit(ctx, admin, ledgersvc.AdminCreditRequest{TenantID: tn.id, AmountMinor: 5,
		Currency: "usd", Reason: strings.Repeat("é", ledgersvc.ReasonMaxLength), IdempotencyKey: "max"}); err != nil {
		t.Fatalf("a reason of exactly 500 characters: %v", err)
	}
	if got := e.balance(tn); got != 5 {
		t.Fatalf("balance %d after refused credits; want 5", got)
	}
}

func wantReason(t *testing.T, err error) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != fault.KindInvalid || fe.Field != "reason" {
		t.Fatalf("err = %v, want invalid on field reason", err)
	}
}

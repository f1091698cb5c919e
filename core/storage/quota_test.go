package storage_test

import (
	"math"
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
)

func TestQuotaCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		u    storage.Usage
		r    storage.Request
		ok   bool
	}{
		{"empty fits", storage.Usage{QuotaBytes: 100}, storage.Request{Bytes: 100}, true},
		{"one over", storage.Usage{QuotaBytes: 100}, storage.Request{Bytes: 101}, false},
		{"used counts", storage.Usage{UsedBytes: 60, QuotaBytes: 100}, storage.Request{Bytes: 41}, false},
		{"reserved counts", storage.Usage{UsedBytes: 50, ReservedBytes: 40, QuotaBytes: 100}, storage.Request{Bytes: 11}, false},
		{"exactly full", storage.Usage{UsedBytes: 50, ReservedBytes: 40, QuotaBytes: 100}, storage.Request{Bytes: 10}, true},
		{"overwrite frees its file", storage.Usage{UsedBytes: 90, QuotaBytes: 100}, storage.Request{Bytes: 60, Replaced: 50}, true},
		{"overwrite still bounded", storage.Usage{UsedBytes: 90, QuotaBytes: 100}, storage.Request{Bytes: 61, Replaced: 50}, false},
		{"replaced over used is clamped", storage.Usage{UsedBytes: 10, QuotaBytes: 100}, storage.Request{Bytes: 100, Replaced: 50}, true},
		{"already over quota", storage.Usage{UsedBytes: 120, QuotaBytes: 100}, storage.Request{Bytes: 0}, false},
		{"zero quota, zero bytes", storage.Usage{}, storage.Request{}, true},
		{"huge values do not overflow", storage.Usage{UsedBytes: math.MaxInt64 - 1, ReservedBytes: math.MaxInt64 - 1, QuotaBytes: math.MaxInt64}, storage.Request{Bytes: math.MaxInt64}, false},
		{"huge request", storage.Usage{UsedBytes: 1, QuotaBytes: math.MaxInt64}, storage.Request{Bytes: math.MaxInt64}, false},
	}
	for _, c := range cases {
		err := c.u.Check(c.r)
		if c.ok != (err == nil) {
			t.Errorf("%s: Check = %v; want ok=%v", c.name, err, c.ok)
		}
		if err != nil {
			fe := fault.From(err)
			if fe.Code != storage.CodeQuotaExceeded || fe.Kind != fault.KindInvalid ||
				fe.Details["used_bytes"] != c.u.UsedBytes || fe.Details["limit_bytes"] != c.u.QuotaBytes ||
				fe.Details["requested_bytes"] != c.r.Bytes {
				t.Errorf("%s: refusal %+v", c.name, fe)
			}
		}
	}
	if err := (storage.Usage{QuotaBytes: 10}).Check(storage.Request{Bytes: -1}); fault.KindOf(err) != fault.KindInternal {
		t.Fatalf("negative request: %v", err)
	}
}

// TestQuotaCheckNeverAdmitsPastTheLimit: whatever was admitted, one by one,
// stays within the quota when every admitted request is counted reserved.
func TestQuotaCheckNeverAdmitsPastTheLimit(t *testing.T) {
	t.Parallel()
	u := storage.Usage{UsedBytes: 7, QuotaBytes: 1000}
	for i := int64(1); i < 200; i++ {
		if u.Check(storage.Request{Bytes: i * 3}) == nil {
			u.ReservedBytes += i * 3
		}
		if u.UsedBytes+u.ReservedBytes > u.QuotaBytes {
			t.Fatalf("admitted past the quota: %+v", u)
		}
	}
	if u.Free() != u.QuotaBytes-u.UsedBytes-u.ReservedBytes {
		t.Fatalf("Free = %d", u.Free())
	}
	if (storage.Usage{UsedBytes: 200, QuotaBytes: 100}).Free() != 0 {
		t.Fatal("Free went negative")
	}
}

package storage

import "github.com/gpuaas/gpuaas/core/fault"

// Usage is where a project stands against its quota. Used is the SUM of
// its files' sizes (the index); Reserved the SUM of the uploads in flight.
type Usage struct {
	UsedBytes     int64
	ReservedBytes int64
	QuotaBytes    int64
	Files         int64
	Folders       int64
}

// Request is one upload's claim on the quota: Bytes more, and Replaced
// bytes that go away when it lands (the size of the file it overwrites).
type Request struct {
	Bytes    int64
	Replaced int64
}

// Check reports whether r fits: used - replaced + reserved + bytes must not
// exceed the quota. Counting the other uploads in flight at their full size
// is what keeps concurrent uploads from passing the quota together; an
// overwrite counts its replaced file once, so two overwrites of one path
// cannot together pass it either (only one of them remains). The
// arithmetic never overflows for non-negative inputs.
func (u Usage) Check(r Request) error {
	if r.Bytes < 0 || r.Replaced < 0 || u.UsedBytes < 0 || u.ReservedBytes < 0 || u.QuotaBytes < 0 {
		return fault.Internal(errNegative)
	}
	base := u.UsedBytes - min(r.Replaced, u.UsedBytes)
	// free = quota - base - reserved, computed without overflow.
	if base > u.QuotaBytes || u.ReservedBytes > u.QuotaBytes-base || r.Bytes > u.QuotaBytes-base-u.ReservedBytes {
		return QuotaExceeded(u, r.Bytes)
	}
	return nil
}

// Free is the bytes a new file could still take (never negative).
func (u Usage) Free() int64 {
	free := u.QuotaBytes - u.UsedBytes
	if free < 0 || u.ReservedBytes > free {
		return 0
	}
	return free - u.ReservedBytes
}

// QuotaExceeded is the refusal, with the numbers a caller needs.
func QuotaExceeded(u Usage, requested int64) *fault.Error {
	return &fault.Error{Kind: fault.KindInvalid, Code: CodeQuotaExceeded,
		Message: "the upload does not fit the project's storage quota",
		Details: map[string]any{"used_bytes": u.UsedBytes, "reserved_bytes": u.ReservedBytes,
			"limit_bytes": u.QuotaBytes, "requested_bytes": requested}}
}

// TooLarge refuses one upload over the per-upload limit.
func TooLarge(size, limit int64) *fault.Error {
	return &fault.Error{Kind: fault.KindTooLarge, Code: CodeTooLarge,
		Message: "the file is larger than one upload may be",
		Details: map[string]any{"size_bytes": size, "limit_bytes": limit}}
}

type negativeError struct{}

func (negativeError) Error() string { return "storage: negative byte count in quota check" }

var errNegative = negativeError{}

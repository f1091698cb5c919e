package httphost

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/resource"
)

// appendAllocationPage encodes an allocation page by hand: GET /allocations
// is the hottest read, and reflection-based encoding of its page cost about
// as much as the query that read it (doc/performance.md). The output is
// byte for byte what encoding/json makes of allocationPage(list, next)
// (TestAllocationPageEncodingMatches).
func appendAllocationPage(b []byte, list []allocation.Allocation, next string) []byte {
	b = append(b, `{"allocations":[`...)
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAllocation(b, &list[i])
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, next)
	}
	return append(b, "}\n"...)
}

// appendAllocation encodes allocationView(a, nil), fields in the generated
// struct's order.
func appendAllocation(b []byte, a *allocation.Allocation) []byte {
	b = append(b, '{')
	if a.ActiveAt != nil {
		b = appendJSONTime(append(b, `"active_at":`...), *a.ActiveAt)
		b = append(b, ',')
	}
	b = appendJSONTime(append(b, `"created_at":`...), a.CreatedAt)
	b = appendJSONString(append(b, `,"currency":`...), a.Currency)
	if a.FailureCode != "" {
		b = appendJSONString(append(b, `,"failure_code":`...), a.FailureCode)
	}
	b = appendJSONString(append(b, `,"id":`...), a.ID)
	if a.MaxTotalCostMinor > 0 {
		b = strconv.AppendInt(append(b, `,"max_total_cost_minor":`...), a.MaxTotalCostMinor, 10)
	}
	if a.NodeID != "" {
		b = appendJSONString(append(b, `,"node_id":`...), a.NodeID)
	}
	b = strconv.AppendInt(append(b, `,"price_minor":`...), a.PriceMinor, 10)
	b = appendJSONString(append(b, `,"project_id":`...), a.ProjectID)
	if a.ReleaseReason != "" {
		b = appendJSONString(append(b, `,"release_reason":`...), a.ReleaseReason)
	}
	if a.ReleaseRequestedAt != nil {
		b = appendJSONTime(append(b, `,"release_requested_at":`...), *a.ReleaseRequestedAt)
	}
	if a.ReleasedAt != nil {
		b = appendJSONTime(append(b, `,"released_at":`...), *a.ReleasedAt)
	}
	// resource.ID.String, written in place.
	rid := resource.New("", a.TenantID, a.ProjectID, resource.TypeAllocation, a.ID)
	b = append(b, `,"resource_id":"`...)
	for i, seg := range [...]string{rid.Partition, rid.Service, rid.Region, rid.Tenant, rid.Project, rid.Type, rid.Resource} {
		if i > 0 {
			b = append(b, ':')
		}
		b = appendJSONChars(b, seg)
	}
	b = append(b, '"')
	b = appendJSONString(append(b, `,"sku_id":`...), a.SKUID)
	b = appendJSONString(append(b, `,"state":`...), string(a.State))
	b = appendJSONTime(append(b, `,"updated_at":`...), a.UpdatedAt)
	b = appendJSONString(append(b, `,"user_id":`...), a.UserID)
	return append(b, '}')
}

// appendJSONTime encodes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, in t's location).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// pageBuffers recycles the buffers hot list pages are encoded into.
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// writePage encodes a page with appendPage into a pooled buffer and
// writes it.
func writePage(w http.ResponseWriter, appendPage func([]byte) []byte) {
	bp := pageBuffers.Get().(*[]byte)
	b := appendPage((*bp)[:0])
	writeJSONBytes(w, http.StatusOK, b)
	if cap(b) <= 1<<20 { // a rare huge page is left to the collector
		*bp = b[:0]
		pageBuffers.Put(bp)
	}
}

// writeJSONBytes writes an already encoded JSON body.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

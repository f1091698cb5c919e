package httphost

import (
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// errBillingOff answers billing routes on a host built without the ledger
// use cases (Deps.Ledger nil).
var errBillingOff = fault.Unavailable("billing is not configured on this host", nil)

func (s *Server) ledgerReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Ledger == nil {
		s.fail(w, r, errBillingOff)
		return false
	}
	return true
}

func ledgerEntryView(e ledger.Entry) api.LedgerEntry {
	return api.LedgerEntry{Id: e.ID, Type: api.LedgerEntryType(e.Type), AmountMinor: e.AmountMinor, Currency: e.Currency,
		ProjectId: optional(e.ProjectID), UserId: optional(e.UserID), Reference: e.Reference, Reason: e.Reason,
		CreatedAt: e.CreatedAt}
}

func usageView(u ledgersvc.UsageLine) api.UsageRecord {
	return api.UsageRecord{Id: u.ID, AllocationId: u.AllocationID, ProjectId: u.ProjectID, ProjectName: u.ProjectName,
		UserId: u.UserID, HourlyPriceMinor: u.HourlyPriceMinor, Currency: u.Currency, StartedAt: u.StartedAt,
		EndedAt: u.EndedAt, State: api.UsageState(u.State), Seconds: u.Seconds, CostMinor: u.CostMinor,
		BilledMinor: u.BilledMinor, BilledThrough: u.BilledThrough}
}

// GetBillingBalance implements [api.ServerInterface].
func (h *handlers) GetBillingBalance(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	b, err := s.d.Ledger.Balance(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, balanceView(b))
}

func balanceView(b ledgersvc.Balance) api.BillingBalance {
	out := api.BillingBalance{BalanceMinor: b.BalanceMinor, Currency: b.Currency,
		BurnRateMinorPerHour: b.BurnRateMinorPerHour, RunwaySeconds: b.RunwaySeconds, RunwayText: b.RunwayText()}
	if b.RunwaySeconds != nil {
		// Hours for display, rounded down to 0.01 from integer seconds so
		// the float is only ever a presentation of the exact value.
		hours := float64(*b.RunwaySeconds/36) / 100
		out.RunwayHours = &hours
	}
	return out
}

// ListLedgerEntries implements [api.ServerInterface].
func (h *handlers) ListLedgerEntries(w http.ResponseWriter, r *http.Request, params api.ListLedgerEntriesParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	limit, err := listLimit(params.Limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, next, err := s.d.Ledger.Ledger(r.Context(), p, deref(params.Cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ledgerPageView(list, next))
}

// ledgerPageView is one page of a ledger: the tenant's own and an
// operator's view of any tenant's answer alike.
func ledgerPageView(list []ledger.Entry, next string) api.LedgerPage {
	page := api.LedgerPage{Entries: make([]api.LedgerEntry, 0, len(list)), NextCursor: optional(next)}
	for _, e := range list {
		page.Entries = append(page.Entries, ledgerEntryView(e))
	}
	return page
}

// ListUsage implements [api.ServerInterface].
func (h *handlers) ListUsage(w http.ResponseWriter, r *http.Request, params api.ListUsageParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	limit, err := listLimit(params.Limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, next, err := s.d.Ledger.Usage(r.Context(), p, deref(params.Cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := api.UsagePage{Usage: make([]api.UsageRecord, 0, len(list))}
	for _, u := range list {
		page.Usage = append(page.Usage, usageView(u))
	}
	if next != "" {
		page.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, page)
}

// usageCSVHeader is the header row of the usage export.
var usageCSVHeader = []string{"record_id", "allocation_id", "project_id", "project_name", "user_id", "state",
	"started_at", "ended_at", "seconds", "hourly_price_minor", "cost_minor", "billed_minor", "currency"}

// csvFlushEvery is how many rows go out between flushes: often enough that
// the client sees progress and the server holds one small buffer, rarely
// enough not to send a packet per row.
const csvFlushEvery = 100

// csvText neutralises a text cell that a spreadsheet would evaluate as a
// formula (CSV injection): project names are user input. Numbers, ids and
// times are written by the platform and need no guard.
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func usageCSVRow(u ledgersvc.UsageLine) []string {
	ended := ""
	if u.EndedAt != nil {
		ended = u.EndedAt.UTC().Format(time.RFC3339)
	}
	return []string{u.ID, u.AllocationID, u.ProjectID, csvText(u.ProjectName), u.UserID, string(u.State),
		u.StartedAt.UTC().Format(time.RFC3339), ended, strconv.FormatInt(u.Seconds, 10),
		strconv.FormatInt(u.HourlyPriceMinor, 10), strconv.FormatInt(u.CostMinor, 10), strconv.FormatInt(u.BilledMinor, 10),
		u.Currency}
}

// ExportUsageCSV implements [api.ServerInterface]. Rows are encoded as the
// database returns them (ledgersvc.EachUsage streams) and flushed every
// csvFlushEvery rows, so memory stays flat however long the history is.
// Escaping is encoding/csv's (RFC 4180: quotes doubled, fields with commas,
// quotes or line breaks quoted). Once the first bytes are out the status
// cannot change, so a later failure aborts the connection: the client sees
// a broken transfer, never a short file that looks complete.
func (h *handlers) ExportUsageCSV(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	name := "usage-" + p.TenantID + "-" + s.d.Clock.Now().UTC().Format("2006-01-02") + ".csv"
	s.streamCSV(w, r, name, usageCSVHeader, "usage export", func(write func([]string) error) error {
		return s.d.Ledger.EachUsage(r.Context(), p, func(u ledgersvc.UsageLine) error { return write(usageCSVRow(u)) })
	})
}

// streamCSV writes an RFC 4180 CSV download: the header once the first row
// arrives (an error before it is an ordinary error response), rows as each
// produces them, flushed every csvFlushEvery; a failure after the first
// bytes aborts the connection so a partial file never looks complete.
func (s *Server) streamCSV(w http.ResponseWriter, r *http.Request, filename string, header []string, what string,
	each func(write func([]string) error) error) {
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	started := false
	begin := func() {
		started = true
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_ = cw.Write(header)
	}
	rows := 0
	err := each(func(row []string) error {
		if !started {
			begin()
		}
		if err := cw.Write(row); err != nil {
			return err
		}
		rows++
		if rows%csvFlushEvery == 0 {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !started {
			s.fail(w, r, err)
			return
		}
		if r.Context().Err() == nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, what+" failed mid-stream; aborting the response",
				slog.String("error", redact.Text(err.Error())))
		}
		panic(http.ErrAbortHandler)
	}
	if !started {
		begin() // nothing selected: the header row alone
	}
	cw.Flush()
	_ = rc.Flush()
}

// AdminCreditTenant implements [api.ServerInterface].
func (h *handlers) AdminCreditTenant(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath, params api.AdminCreditTenantParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	var req api.AdminCreditRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	e, err := s.d.Ledger.AdminCredit(r.Context(), p, ledgersvc.AdminCreditRequest{TenantID: tenantID,
		AmountMinor: req.AmountMinor, Currency: req.Currency, Reason: req.Reason, IdempotencyKey: deref(params.XIdempotencyKey)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ledgerEntryView(e))
}

// AdminRefundTenant implements [api.ServerInterface].
func (h *handlers) AdminRefundTenant(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath, params api.AdminRefundTenantParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.ledgerReady(w, r) {
		return
	}
	var req api.AdminRefundRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.d.Ledger.AdminRefund(r.Context(), p, ledgersvc.AdminRefundRequest{TenantID: tenantID,
		AmountMinor: req.AmountMinor, Reason: req.Reason, CreditEntryID: deref(req.CreditEntryId),
		IdempotencyKey: deref(params.XIdempotencyKey)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.RefundResult{Refunds: make([]api.LedgerEntry, 0, len(list))}
	for _, e := range list {
		out.AmountMinor -= e.AmountMinor
		out.Refunds = append(out.Refunds, ledgerEntryView(e))
	}
	writeJSON(w, http.StatusCreated, out)
}

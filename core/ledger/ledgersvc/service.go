package ledgersvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// CreditRemaining is a credit with what refunds have returned of it.
type CreditRemaining struct {
	Credit        ledger.Entry
	RefundedMinor int64 // positive
}

// EntryReader reads the ledger beyond [ports.LedgerStore] (postgres:
// LedgerStore in ledger_more.go).
type EntryReader interface {
	ListEntries(ctx context.Context, tenantID, cursor string, limit int) ([]ledger.Entry, string, error)
	GetEntry(ctx context.Context, tenantID, id string) (ledger.Entry, error)
	// RefundableCredits lists credits of the tenant created at or after
	// since, newest first, with what refunds have returned or are
	// returning of each.
	RefundableCredits(ctx context.Context, tenantID string, since time.Time) ([]CreditRemaining, error)
	// CommittedRefunds is, per credit of the tenant among ids, what
	// refunds have returned of it plus what the payment provider's refunds
	// in flight will return (no other refund may take that money).
	CommittedRefunds(ctx context.Context, tenantID string, ids []string) (map[string]int64, error)
	// GetEntryByKey returns the tenant's entry posted with an idempotency
	// key (NotFound when there is none).
	GetEntryByKey(ctx context.Context, tenantID, idempotencyKey string) (ledger.Entry, error)
	// LockTenantMoney serialises a tenant's read-check-post money operations
	// until the transaction ends.
	LockTenantMoney(ctx context.Context, tenantID string) error
}

// UsageReader reads usage records (billing.UsageStore has these).
type UsageReader interface {
	List(ctx context.Context, tenantID, cursor string, limit int) ([]billing.UsageRecord, string, error)
	Each(ctx context.Context, tenantID string, fn func(billing.UsageRecord) error) error
	BurnRate(ctx context.Context, tenantID string) (int64, error)
}

// Deps are the ports the service needs; all are required.
type Deps struct {
	Tx       ports.TxRunner
	Ledger   ports.LedgerStore
	Entries  EntryReader
	Usage    UsageReader
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
}

// Service implements the ledger use cases.
type Service struct{ d Deps }

// New checks that every dependency is present.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Ledger == nil || d.Entries == nil || d.Usage == nil || d.Policies == nil || d.Audit == nil ||
		d.Clock == nil || d.IDs == nil {
		return nil, errors.New("ledgersvc: every dependency is required")
	}
	return &Service{d: d}, nil
}

// Stable codes of this package's refusals.
const (
	CodeIdempotencyKeyRequired fault.Code = "idempotency_key_required"
	CodeCurrencyMismatch       fault.Code = "currency_mismatch"
	CodeAmountOutOfRange       fault.Code = "amount_out_of_range"
	CodeRefundWindowExceeded   fault.Code = "refund_window_exceeded"
	CodeRefundExceedsCredit    fault.Code = "refund_exceeds_credit"
	CodeRefundExceedsBalance   fault.Code = "refund_exceeds_balance"
	CodeNotACredit             fault.Code = "not_a_credit"
)

// MaxAdminAmountMinor bounds one operator credit or refund (10^10 minor
// units: 100 million in a two-decimal currency) so a typo cannot mint a
// fortune; larger movements are split on purpose.
const MaxAdminAmountMinor int64 = 10_000_000_000

// Posting is one money movement. AmountMinor is the magnitude (positive);
// Credit and Debit give it its sign.
type Posting struct {
	TenantID       string
	ProjectID      string
	UserID         string
	AmountMinor    int64
	Currency       string
	IdempotencyKey string
	Reference      string
	Reason         string
}

// Credit posts a positive entry (ledger.Credit for money received,
// ledger.Adjustment for an operator's grant) inside the transaction in ctx
// (or its own). The tenant's ledger is single-currency: a posting in
// another currency is 422 currency_mismatch. posted is false when the
// idempotency key was already used (nothing new was posted): retries are
// harmless.
func (s *Service) Credit(ctx context.Context, typ ledger.EntryType, p Posting) (e ledger.Entry, posted bool, err error) {
	if typ != ledger.Credit && typ != ledger.Adjustment {
		return ledger.Entry{}, false, fault.Invalid("type", "a credit is of type credit or adjustment")
	}
	return s.post(ctx, typ, p, 1)
}

// Debit posts a negative entry (usage_debit, refund or a negative
// adjustment) like Credit.
func (s *Service) Debit(ctx context.Context, typ ledger.EntryType, p Posting) (e ledger.Entry, posted bool, err error) {
	if typ != ledger.UsageDebit && typ != ledger.Refund && typ != ledger.Adjustment {
		return ledger.Entry{}, false, fault.Invalid("type", "a debit is of type usage_debit, refund or adjustment")
	}
	return s.post(ctx, typ, p, -1)
}

func (s *Service) post(ctx context.Context, typ ledger.EntryType, p Posting, sign int64) (ledger.Entry, bool, error) {
	if p.AmountMinor <= 0 {
		return ledger.Entry{}, false, fault.Invalid("amount_minor", "the amount must be positive")
	}
	if strings.TrimSpace(p.IdempotencyKey) == "" {
		return ledger.Entry{}, false, &fault.Error{Kind: fault.KindInvalid, Code: CodeIdempotencyKeyRequired,
			Message: "a money posting needs an idempotency key", Field: "idempotency_key"}
	}
	e := ledger.Entry{ID: s.d.IDs.NewID(), TenantID: p.TenantID, ProjectID: p.ProjectID, UserID: p.UserID, Type: typ,
		AmountMinor: sign * p.AmountMinor, Currency: strings.ToLower(p.Currency), IdempotencyKey: p.IdempotencyKey,
		Reference: p.Reference, Reason: p.Reason, CreatedAt: s.d.Clock.Now()}
	if err := e.Validate(); err != nil {
		return ledger.Entry{}, false, err
	}
	posted := false
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		_, cur, err := s.d.Ledger.Balance(ctx, p.TenantID)
		if err != nil {
			return err
		}
		if cur != "" && cur != e.Currency {
			return fault.New(fault.KindUnprocessable, CodeCurrencyMismatch,
				"the tenant's ledger is in "+strings.ToUpper(cur)).With("ledger_currency", cur)
		}
		n, err := s.d.Ledger.Post(ctx, e)
		posted = n == 1
		return err
	})
	if err != nil {
		return ledger.Entry{}, false, err
	}
	return e, posted, nil
}

// Balance is what GET /billing/balance shows.
type Balance struct {
	BalanceMinor int64
	Currency     string
	// BurnRateMinorPerHour is the sum of the hourly price snapshots of the
	// tenant's metered (active) allocations.
	BurnRateMinorPerHour int64
	// RunwaySeconds is how long the balance lasts at the current burn rate;
	// nil when nothing is burning.
	RunwaySeconds *int64
}

// RunwayText says how long the balance lasts, for people: "lasts about N
// hours at the current rate".
func (b Balance) RunwayText() string {
	if b.RunwaySeconds == nil {
		return ""
	}
	h := *b.RunwaySeconds / 3600
	switch {
	case *b.RunwaySeconds <= 0:
		return "the balance is used up"
	case h == 0:
		return "lasts less than an hour at the current rate"
	case h == 1:
		return "lasts about 1 hour at the current rate"
	}
	return "lasts about " + strconv.FormatInt(h, 10) + " hours at the current rate"
}

// Balance returns the caller's tenant balance, burn rate and runway.
func (s *Service) Balance(ctx context.Context, p identity.Principal) (Balance, error) {
	bal, cur, err := s.d.Ledger.Balance(ctx, p.TenantID)
	if err != nil {
		return Balance{}, err
	}
	if cur == "" {
		vals, err := s.d.Policies.Values(ctx, p.TenantID)
		if err != nil {
			return Balance{}, err
		}
		cur = vals.String(policy.BillingCurrency)
	}
	burn, err := s.d.Usage.BurnRate(ctx, p.TenantID)
	if err != nil {
		return Balance{}, err
	}
	b := Balance{BalanceMinor: bal, Currency: cur, BurnRateMinorPerHour: burn}
	if burn > 0 {
		r := int64(0)
		if bal > 0 {
			r = runwaySeconds(bal, burn)
		}
		b.RunwaySeconds = &r
	}
	return b, nil
}

// runwaySeconds is bal*3600/burn without overflowing for large balances.
func runwaySeconds(bal, burn int64) int64 {
	return bal/burn*3600 + bal%burn*3600/burn
}

// Ledger pages the caller's tenant ledger, newest first.
func (s *Service) Ledger(ctx context.Context, p identity.Principal, cursor string, limit int) ([]ledger.Entry, string, error) {
	return s.d.Entries.ListEntries(ctx, p.TenantID, cursor, limit)
}

// UsageLine is a usage record with its cost through now.
type UsageLine struct {
	billing.UsageRecord
	// CostMinor is the cost from start to end (or to now while open); the
	// ledger holds what has been debited so far (BilledMinor).
	CostMinor int64
	Seconds   int64
}

func (s *Service) line(r billing.UsageRecord, now time.Time) UsageLine {
	end := now
	if r.EndedAt != nil {
		end = *r.EndedAt
	}
	secs := billing.WholeSeconds(r.StartedAt, end)
	return UsageLine{UsageRecord: r, Seconds: secs, CostMinor: ledger.CostMinor(r.HourlyPriceMinor, secs)}
}

// Usage pages the caller's tenant usage records, newest first.
func (s *Service) Usage(ctx context.Context, p identity.Principal, cursor string, limit int) ([]UsageLine, string, error) {
	recs, next, err := s.d.Usage.List(ctx, p.TenantID, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	now := s.d.Clock.Now()
	out := make([]UsageLine, len(recs))
	for i, r := range recs {
		out[i] = s.line(r, now)
	}
	return out, next, nil
}

// EachUsage streams every usage record of the caller's tenant to fn,
// newest first, without holding them all.
func (s *Service) EachUsage(ctx context.Context, p identity.Principal, fn func(UsageLine) error) error {
	now := s.d.Clock.Now()
	return s.d.Usage.Each(ctx, p.TenantID, func(r billing.UsageRecord) error { return fn(s.line(r, now)) })
}

// AdminCreditRequest is an operator's grant to a tenant.
type AdminCreditRequest struct {
	TenantID       string
	AmountMinor    int64
	Currency       string
	Reason         string
	IdempotencyKey string // from X-Idempotency-Key: required
}

func checkAdmin(p identity.Principal) error {
	if !p.User.IsAdmin() {
		return fault.Forbidden("platform operators only")
	}
	return nil
}

// ReasonMaxLength bounds an operator's reason, in characters. The API
// contract's maxLength equals it (hosts/http checks).
const ReasonMaxLength = 500

// checkReason holds a reason to core/text: single-line, 1-500 characters,
// not only spaces.
func checkReason(reason string) error {
	if err := text.Line("reason", reason, 1, ReasonMaxLength); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fault.Invalid("reason", "reason must not be empty")
	}
	return nil
}

func checkAmount(n int64) error {
	if n <= 0 || n > MaxAdminAmountMinor {
		return &fault.Error{Kind: fault.KindInvalid, Code: CodeAmountOutOfRange, Field: "amount_minor",
			Message: "amount_minor must be between 1 and " + strconv.FormatInt(MaxAdminAmountMinor, 10)}
	}
	return nil
}

// maxLedgerKey is the ledger's limit on idempotency keys (migration 0003).
const maxLedgerKey = 255

// ledgerKey derives the ledger idempotency key of an operator's operation
// from the client's X-Idempotency-Key (up to 255 characters itself): the
// key verbatim when it fits, else its SHA-256, so a long client key is
// never refused by the ledger's length check.
func ledgerKey(prefix, tenantID, clientKey, suffix string) string {
	k := prefix + ":" + tenantID + ":" + clientKey + suffix
	if len(k) <= maxLedgerKey {
		return k
	}
	sum := sha256.Sum256([]byte(clientKey))
	return prefix + ":" + tenantID + ":sha256:" + hex.EncodeToString(sum[:]) + suffix
}

func checkKey(k string) error {
	if strings.TrimSpace(k) == "" {
		return &fault.Error{Kind: fault.KindInvalid, Code: CodeIdempotencyKeyRequired, Field: "X-Idempotency-Key",
			Message: "money operations need an X-Idempotency-Key header"}
	}
	return nil
}

// AdminCredit grants a tenant credit as a positive adjustment, audited in
// the same transaction. The currency must be the ledger's (policy
// billing.currency for a tenant without entries). The same idempotency key
// twice posts once and returns the entry the first request posted; the
// same key with another amount or currency is 422 idempotency_key_reused
// (a second operator reusing a key must not believe they credited).
func (s *Service) AdminCredit(ctx context.Context, p identity.Principal, r AdminCreditRequest) (ledger.Entry, error) {
	if err := checkAdmin(p); err != nil {
		return ledger.Entry{}, err
	}
	if err := checkKey(r.IdempotencyKey); err != nil {
		return ledger.Entry{}, err
	}
	if err := checkAmount(r.AmountMinor); err != nil {
		return ledger.Entry{}, err
	}
	if err := checkReason(r.Reason); err != nil {
		return ledger.Entry{}, err
	}
	cur := strings.ToLower(strings.TrimSpace(r.Currency))
	if len(cur) != 3 {
		return ledger.Entry{}, fault.Invalid("currency", "currency must be a 3-letter ISO code")
	}
	var out ledger.Entry
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Entries.LockTenantMoney(ctx, r.TenantID); err != nil {
			return err
		}
		vals, err := s.d.Policies.Values(ctx, r.TenantID)
		if err != nil {
			return err
		}
		if want := vals.String(policy.BillingCurrency); cur != strings.ToLower(want) {
			if _, ledgerCur, err := s.d.Ledger.Balance(ctx, r.TenantID); err != nil || ledgerCur != cur {
				if err != nil {
					return err
				}
				return &fault.Error{Kind: fault.KindInvalid, Code: CodeCurrencyMismatch, Field: "currency",
					Message: "the platform bills in " + strings.ToUpper(want)}
			}
		}
		key := ledgerKey("admin-credit", r.TenantID, r.IdempotencyKey, "")
		e, posted, err := s.Credit(ctx, ledger.Adjustment, Posting{TenantID: r.TenantID, UserID: "", AmountMinor: r.AmountMinor,
			Currency: cur, IdempotencyKey: key, Reference: "admin:" + p.User.ID, Reason: strings.TrimSpace(r.Reason)})
		if err != nil {
			return err
		}
		out = e
		if !posted {
			// A retry: the first request posted and was audited. Answer with
			// what it posted, unless this is not the same request.
			first, err := s.d.Entries.GetEntryByKey(ctx, r.TenantID, key)
			if err != nil {
				return err
			}
			if first.Type != ledger.Adjustment || first.AmountMinor != r.AmountMinor || first.Currency != cur {
				return &fault.Error{Kind: fault.KindUnprocessable, Code: fault.CodeIdempotencyKeyReused,
					Message: "this idempotency key was used for a different credit"}
			}
			out = first
			return nil
		}
		return s.d.Audit.Record(ctx, s.audit(ctx, p, r.TenantID, "billing.admin_credit", e.ID,
			map[string]any{"amount_minor": r.AmountMinor, "currency": cur, "reason": strings.TrimSpace(r.Reason)}))
	})
	return out, err
}

// AdminRefundRequest returns money a tenant paid. CreditEntryID names the
// credit refunded; empty means the newest refundable credits in the window.
type AdminRefundRequest struct {
	TenantID       string
	AmountMinor    int64
	Reason         string
	CreditEntryID  string
	IdempotencyKey string
}

// AdminRefund records a refund of credits (type credit: money received)
// within policy billing.refund_window_days of them, audited. A refund never
// returns more of a credit than was credited minus what earlier refunds
// returned (422 refund_exceeds_credit), never touches a credit older than
// the window (422 refund_window_exceeded), and never takes the balance
// below zero (422 refund_exceeds_balance: money already spent on compute is
// not refundable). Without a credit id the amount is taken from the newest
// refundable credits first, one refund entry per credit, so every credit's
// refunded sum stays exact. The tenant's money lock serialises concurrent
// refunds. A retry with the same idempotency key returns the entries the
// first request posted (another amount with the same key is 422
// idempotency_key_reused). Moving the money back through the payment
// provider is the payments path's job; this records it in the ledger.
func (s *Service) AdminRefund(ctx context.Context, p identity.Principal, r AdminRefundRequest) ([]ledger.Entry, error) {
	if err := checkAdmin(p); err != nil {
		return nil, err
	}
	if err := checkKey(r.IdempotencyKey); err != nil {
		return nil, err
	}
	if err := checkAmount(r.AmountMinor); err != nil {
		return nil, err
	}
	if err := checkReason(r.Reason); err != nil {
		return nil, err
	}
	if r.CreditEntryID != "" {
		if err := identity.ValidateID("credit_entry_id", r.CreditEntryID); err != nil {
			return nil, err
		}
	}
	var out []ledger.Entry
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		out = nil
		if err := s.d.Entries.LockTenantMoney(ctx, r.TenantID); err != nil {
			return err
		}
		// A retry of a refund that committed answers with its entries
		// (under the lock, so a concurrent twin sees them too).
		if prev, err := s.refundsOf(ctx, r); err != nil || prev != nil {
			out = prev
			return err
		}
		vals, err := s.d.Policies.Values(ctx, r.TenantID)
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		since := vals.RefundWindowStart(now)
		var credits []CreditRemaining
		if r.CreditEntryID != "" {
			c, err := s.d.Entries.GetEntry(ctx, r.TenantID, r.CreditEntryID)
			if err != nil {
				return err
			}
			if c.Type != ledger.Credit {
				return fault.New(fault.KindUnprocessable, CodeNotACredit, "only credits (money received) can be refunded")
			}
			if c.CreatedAt.Before(since) {
				return fault.New(fault.KindUnprocessable, CodeRefundWindowExceeded,
					"the credit is older than the refund window").With("refund_window_days", vals.Int(policy.RefundWindowDays))
			}
			refunded, err := s.d.Entries.CommittedRefunds(ctx, r.TenantID, []string{c.ID})
			if err != nil {
				return err
			}
			credits = []CreditRemaining{{Credit: c, RefundedMinor: refunded[c.ID]}}
		} else {
			if credits, err = s.d.Entries.RefundableCredits(ctx, r.TenantID, since); err != nil {
				return err
			}
		}
		remaining := int64(0)
		for _, c := range credits {
			remaining += c.Credit.AmountMinor - c.RefundedMinor
		}
		if r.AmountMinor > remaining {
			if r.CreditEntryID == "" && remaining == 0 {
				return fault.New(fault.KindUnprocessable, CodeRefundWindowExceeded,
					"no credit within the refund window is left to refund").
					With("refund_window_days", vals.Int(policy.RefundWindowDays))
			}
			return fault.New(fault.KindUnprocessable, CodeRefundExceedsCredit,
				"the refund is more than is left of the credit").With("refundable_minor", remaining)
		}
		bal, _, err := s.d.Ledger.Balance(ctx, r.TenantID)
		if err != nil {
			return err
		}
		if r.AmountMinor > bal {
			return fault.New(fault.KindUnprocessable, CodeRefundExceedsBalance,
				"the refund is more than the balance: spent credit is not refundable").With("balance_minor", bal)
		}
		left := r.AmountMinor
		for _, c := range credits {
			if left == 0 {
				break
			}
			take := min(left, c.Credit.AmountMinor-c.RefundedMinor)
			if take <= 0 {
				continue
			}
			e, posted, err := s.Debit(ctx, ledger.Refund, Posting{TenantID: r.TenantID, AmountMinor: take,
				Currency: c.Credit.Currency, IdempotencyKey: ledgerKey("admin-refund", r.TenantID, r.IdempotencyKey, ":"+strconv.Itoa(len(out))),
				Reference: c.Credit.ID, Reason: strings.TrimSpace(r.Reason)})
			if err != nil {
				return err
			}
			if !posted {
				// refundsOf found no entry for the key under the lock, so
				// this cannot happen; refuse rather than refund twice.
				return fault.Internal(errors.New("ledgersvc: refund key posted concurrently despite the tenant lock"))
			}
			out = append(out, e)
			left -= take
		}
		ids := make([]string, len(out))
		for i, e := range out {
			ids[i] = e.ID
		}
		return s.d.Audit.Record(ctx, s.audit(ctx, p, r.TenantID, "billing.admin_refund", r.TenantID,
			map[string]any{"amount_minor": r.AmountMinor, "reason": strings.TrimSpace(r.Reason),
				"credit_entry_id": r.CreditEntryID, "refund_entry_ids": ids}))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// refundsOf returns the entries an earlier refund with r's idempotency key
// posted (nil when there was none). The same key for another amount is 422
// idempotency_key_reused.
func (s *Service) refundsOf(ctx context.Context, r AdminRefundRequest) ([]ledger.Entry, error) {
	var out []ledger.Entry
	sum := int64(0)
	for i := 0; ; i++ {
		e, err := s.d.Entries.GetEntryByKey(ctx, r.TenantID, ledgerKey("admin-refund", r.TenantID, r.IdempotencyKey, ":"+strconv.Itoa(i)))
		if fault.IsKind(err, fault.KindNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		sum -= e.AmountMinor
	}
	if out != nil && (sum != r.AmountMinor || r.CreditEntryID != "" && out[0].Reference != r.CreditEntryID) {
		return nil, &fault.Error{Kind: fault.KindUnprocessable, Code: fault.CodeIdempotencyKeyReused,
			Message: "this idempotency key was used for a different refund"}
	}
	return out, nil
}

func (s *Service) audit(ctx context.Context, p identity.Principal, tenantID, action, id string, md map[string]any) audit.Event {
	return audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
		TenantID: tenantID, Action: action, ResourceType: resource.TypeTenant,
		ResourceID: resource.New("", tenantID, "", resource.TypeTenant, tenantID).String(), Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx), Metadata: md}
}

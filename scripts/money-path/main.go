// Command money-path walks the money path against a running platform
// (`gpuaas dev`) and exits non-zero on the first thing that is wrong:
//
//  1. an operator shortens the billing window (policy billing.window_seconds)
//     and allows small top-ups (payments.min_topup_minor), as CI does; both
//     are put back when the run ends, whether it passed, failed or was
//     interrupted;
//
//  2. a user buys credit through the dev checkout and sees the balance;
//
//  3. the user runs an allocation for at least two billing windows and sees
//     the expected debits (ledger = the usage record's cost of its billed
//     seconds) and the runway shrink;
//
//  4. usage drains the balance: the allocation is released and a new one is
//     refused with 402 until credit returns; after a top-up it is allowed.
//
//     go run ./scripts/money-path -api http://127.0.0.1:8080 -user bob
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/testkit/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "money-path: FAIL:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "money-path: OK")
}

type usageRecord struct {
	ID            string
	AllocationID  string    `json:"allocation_id"`
	HourlyPrice   int64     `json:"hourly_price_minor"`
	StartedAt     time.Time `json:"started_at"`
	BilledThrough time.Time `json:"billed_through"`
	BilledMinor   int64     `json:"billed_minor"`
	State         string
}

type ledgerEntry struct {
	Type        string
	AmountMinor int64 `json:"amount_minor"`
	Reference   string
}

func run(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("money-path", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the platform API")
	user := fs.String("user", "bob", "dev identity provider user (one with no credit)")
	admin := fs.String("admin", "admin", "dev identity provider platform admin")
	window := fs.Int("window", 2, "billing window in seconds to set")
	credit := fs.Int64("credit", 0, "credit to buy in minor units (default: about 45 s of the SKU's price, so usage drains it)")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	step := func(format string, a ...any) { fmt.Fprintf(out, "• "+format+"\n", a...) }

	op := e2e.New(*api)
	if err := op.Login(ctx, *admin, *admin); err != nil {
		return fmt.Errorf("operator sign in: %w", err)
	}
	relogin := func(ctx context.Context) error { return op.Login(ctx, *admin, *admin) }
	restore, err := changePolicies(ctx, op, []policyValue{{"billing.window_seconds", strconv.Itoa(*window)},
		{"payments.min_topup_minor", "1"}}, relogin)
	if err != nil {
		return err
	}
	defer func() {
		restored, rerr := restore()
		if rerr != nil {
			err = errors.Join(err, rerr)
			return
		}
		step("operator put back %s", restored)
	}()
	step("operator set billing.window_seconds=%d and payments.min_topup_minor=1", *window)

	c := e2e.New(*api)
	if err := c.Login(ctx, *user, *user); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	// Pick the SKU first: the credit is sized to its price.
	skuID, price, err := skuWithCapacity(ctx, c)
	if err != nil {
		return err
	}
	if *credit <= 0 {
		*credit = max(price*45/3600, 3)
	}
	b0, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if b0.BalanceMinor > *credit {
		return fmt.Errorf("%s already has %d %s of credit; run against a fresh `gpuaas dev` or pick a user without credit", *user, b0.BalanceMinor, b0.Currency)
	}
	if err := c.TopUp(ctx, *credit, "usd"); err != nil {
		return err
	}
	b1, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if b1.BalanceMinor != b0.BalanceMinor+*credit {
		return fmt.Errorf("balance %d after buying %d on %d", b1.BalanceMinor, *credit, b0.BalanceMinor)
	}
	step("bought %d (minor units of %s) through the dev checkout: balance %d", *credit, b1.Currency, b1.BalanceMinor)

	if _, _, err := c.AddSSHKey(ctx, "money-path"); err != nil {
		return err
	}
	var alloc e2e.Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID}, &alloc); err != nil {
		return fmt.Errorf("create allocation: %w", err)
	}
	if alloc, err = c.WaitState(ctx, alloc.ID, "active"); err != nil {
		return err
	}
	step("allocation %s active on %s at %d %s/hour", alloc.ID, skuID, alloc.PriceMinor, b1.Currency)

	// Two billing windows with debits, the runway shrinking.
	first, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if first.BurnPerHour != alloc.PriceMinor || first.RunwaySeconds == nil {
		return fmt.Errorf("burn rate %d/h (want %d) and runway %v while the allocation runs", first.BurnPerHour, alloc.PriceMinor, first.RunwaySeconds)
	}
	step("burn %d/h, runway %d s (%s)", first.BurnPerHour, *first.RunwaySeconds, first.RunwayText)
	var rec, after usageRecord
	var debits []ledgerEntry
	for {
		if rec, err = usageOf(ctx, c, alloc.ID); err != nil {
			return err
		}
		if debits, err = usageDebits(ctx, c, rec.ID); err != nil {
			return err
		}
		if after, err = usageOf(ctx, c, alloc.ID); err != nil {
			return err
		}
		if len(debits) >= 2 {
			break
		}
		if err := pause(ctx, "two debited billing windows", time.Second); err != nil {
			return err
		}
	}
	var debited int64
	for _, d := range debits {
		debited -= d.AmountMinor
	}
	seconds := int64(rec.BilledThrough.Sub(rec.StartedAt) / time.Second)
	want := ledger.CostMinor(rec.HourlyPrice, seconds)
	// A window may be debited between the reads: the ledger lies between the
	// record read before it and the one read after it.
	if debited < rec.BilledMinor || debited > after.BilledMinor {
		return fmt.Errorf("ledger debits %d, usage record billed %d then %d", debited, rec.BilledMinor, after.BilledMinor)
	}
	if rec.BilledMinor != want {
		return fmt.Errorf("usage record billed %d for %d s at %d/h; expected %d", rec.BilledMinor, seconds, rec.HourlyPrice, want)
	}
	second, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if second.RunwaySeconds == nil || *second.RunwaySeconds >= *first.RunwaySeconds {
		return fmt.Errorf("runway did not shrink: %v then %v", *first.RunwaySeconds, second.RunwaySeconds)
	}
	step("%d debits so far (%d billed for %d s, as priced); balance %d, runway down to %d s", len(debits),
		rec.BilledMinor, seconds, second.BalanceMinor, *second.RunwaySeconds)

	// Usage drains the balance; the platform releases the allocation.
	for {
		a := e2e.Allocation{}
		if err := c.Call(ctx, "GET", "/api/v1/allocations/"+alloc.ID, nil, &a); err != nil {
			return err
		}
		if a.State == "released" {
			break
		}
		if err := pause(ctx, "the depleted balance to release the allocation (state "+a.State+")", time.Second); err != nil {
			return err
		}
	}
	drained, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if drained.BalanceMinor > 0 {
		return fmt.Errorf("allocation released with balance %d left", drained.BalanceMinor)
	}
	step("balance drained to %d: the allocation was released", drained.BalanceMinor)

	err = c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID}, nil)
	var se *e2e.StatusError
	if !errors.As(err, &se) || se.Status != 402 || se.Code != "insufficient_balance" {
		return fmt.Errorf("new allocation with no credit: %v; want 402 insufficient_balance", err)
	}
	step("a new allocation is refused: 402 insufficient_balance")

	topUp := -drained.BalanceMinor + *credit
	if err := c.TopUp(ctx, topUp, "usd"); err != nil {
		return err
	}
	var again e2e.Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID}, &again); err != nil {
		return fmt.Errorf("allocation after credit returned: %w", err)
	}
	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+again.ID+"/release", nil, nil); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if _, err := c.WaitState(ctx, again.ID, "released"); err != nil {
		return err
	}
	step("after buying %d more, allocations are allowed again (created and released %s)", topUp, again.ID)
	return nil
}

// skuWithCapacity returns the first SKU with an available node and its
// hourly price.
func skuWithCapacity(ctx context.Context, c *e2e.Client) (string, int64, error) {
	var skus struct {
		SKUs []struct {
			ID        string
			Available int
			Price     int64 `json:"hourly_price_minor"`
		} `json:"skus"`
	}
	if err := c.Call(ctx, "GET", "/api/v1/skus", nil, &skus); err != nil {
		return "", 0, err
	}
	for _, s := range skus.SKUs {
		if s.Available > 0 {
			return s.ID, s.Price, nil
		}
	}
	return "", 0, errors.New("no SKU has capacity (is a node enrolled and heartbeating?)")
}

func usageOf(ctx context.Context, c *e2e.Client, allocationID string) (usageRecord, error) {
	var page struct{ Usage []usageRecord }
	if err := c.Call(ctx, "GET", "/api/v1/billing/usage?limit=200", nil, &page); err != nil {
		return usageRecord{}, err
	}
	for _, u := range page.Usage {
		if u.AllocationID == allocationID {
			return u, nil
		}
	}
	return usageRecord{}, fmt.Errorf("no usage record for allocation %s", allocationID)
}

func usageDebits(ctx context.Context, c *e2e.Client, recordID string) ([]ledgerEntry, error) {
	var page struct{ Entries []ledgerEntry }
	if err := c.Call(ctx, "GET", "/api/v1/billing/ledger?limit=200", nil, &page); err != nil {
		return nil, err
	}
	var out []ledgerEntry
	for _, e := range page.Entries {
		if e.Type == "usage_debit" && e.Reference == recordID {
			out = append(out, e)
		}
	}
	return out, nil
}

func pause(ctx context.Context, what string, d time.Duration) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	case <-time.After(d):
		return nil
	}
}

type policyValue struct{ Key, Value string }

// changePolicies sets each policy's global value and returns restore, which
// puts the values from before back (a policy that had its default gets the
// default stored: the API has no "unset"). If a set fails, what was already
// changed is put back before the error returns. restore runs on a fresh
// context, since the run's may be cancelled (Ctrl-C, -timeout) by then, and
// signs the operator in again (relogin) if the access token has expired.
func changePolicies(ctx context.Context, op *e2e.Client, set []policyValue,
	relogin func(context.Context) error) (restore func() (string, error), err error) {
	var list struct {
		Policies []struct{ Key, Value string }
	}
	if err := op.Call(ctx, "GET", "/api/v1/admin/policies", nil, &list); err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	before := map[string]string{}
	for _, p := range list.Policies {
		before[p.Key] = p.Value
	}
	var changed []policyValue // the values to put back, in order of change
	restore = func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var done []string
		var errs []error
		for _, p := range changed {
			put := func() error {
				return op.Call(ctx, "PUT", "/api/v1/admin/policies", map[string]string{"key": p.Key, "value": p.Value}, nil)
			}
			err := put()
			var se *e2e.StatusError
			if errors.As(err, &se) && se.Status == 401 {
				if err = relogin(ctx); err == nil {
					err = put()
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("put back policy %s=%s: %w", p.Key, p.Value, err))
				continue
			}
			done = append(done, p.Key+"="+p.Value)
		}
		return strings.Join(done, " and "), errors.Join(errs...)
	}
	for _, p := range set {
		old, ok := before[p.Key]
		if !ok {
			_, rerr := restore()
			return nil, errors.Join(fmt.Errorf("policy %s does not exist", p.Key), rerr)
		}
		// Recorded before the call: a PUT that failed in flight may still
		// have been applied, and putting back the old value is harmless.
		changed = append(changed, policyValue{p.Key, old})
		if err := op.Call(ctx, "PUT", "/api/v1/admin/policies", map[string]string{"key": p.Key, "value": p.Value}, nil); err != nil {
			_, rerr := restore()
			return nil, errors.Join(fmt.Errorf("set policy %s: %w", p.Key, err), rerr)
		}
	}
	return restore, nil
}

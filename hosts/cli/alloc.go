package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// skus prints the catalogue.
func (r *runner) skus(args []string) error {
	c, ctx, cancel, err := r.session(r.flags("skus"), args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	skus, err := c.SKUs(ctx)
	if err != nil {
		return err
	}
	return r.out(map[string]any{"skus": skus}, func(w io.Writer) {
		rows := make([][]string, 0, len(skus))
		for _, s := range skus {
			rows = append(rows, []string{s.Id, s.Name, strconv.Itoa(s.GpuCount) + "× " + s.GpuModel,
				money(s.HourlyPriceMinor, s.Currency) + "/h", strconv.Itoa(s.Available)})
		}
		table(w, "SKU\tNAME\tGPUS\tPRICE\tFREE", rows)
	})
}

// alloc dispatches the allocation subcommands.
func (r *runner) alloc(args []string) error {
	if len(args) == 0 {
		return usagef("alloc needs create, quote, ls, get or release")
	}
	switch args[0] {
	case "create":
		return r.allocCreate(args[1:], false)
	case "quote":
		return r.allocCreate(args[1:], true)
	case "ls", "list":
		return r.allocList(args[1:])
	case "get":
		return r.allocGet(args[1:])
	case "release":
		return r.allocRelease(args[1:])
	}
	return usagef("alloc %s: unknown subcommand (create, quote, ls, get, release)", args[0])
}

// allocCreate requests a node (or, quote, asks what it would cost): the
// price guards are the agent-safe API's.
func (r *runner) allocCreate(args []string, quote bool) error {
	name := "alloc create"
	if quote {
		name = "alloc quote"
	}
	f := r.flags(name)
	sku := f.String("sku", "", "the SKU to rent (gpuaas skus)")
	wait := f.Bool("wait", false, "wait until it is active, showing its progress")
	timeout := f.positiveDuration("timeout", 15*time.Minute, "how long --wait waits")
	maxPrice := f.String("max-hourly-price", "", "refuse a SKU dearer than this per hour (e.g. 3.50)")
	maxTotal := f.String("max-total-cost", "", "release the node before it costs more than this (e.g. 20)")
	var keys stringList
	f.Var(&keys, "ssh-key", "SSH key id to install (repeatable; default all of yours)")
	if err := f.parse(args); err != nil {
		return err
	}
	if *sku == "" {
		return usagef("%s needs --sku (see gpuaas skus)", name)
	}
	req := client.CreateAllocation{SkuId: *sku}
	if len(keys) > 0 {
		ids := []string(keys)
		req.SshKeyIds = &ids
	}
	for _, g := range []struct {
		flag, v string
		dst     **int64
	}{{"--max-hourly-price", *maxPrice, &req.MaxHourlyPriceMinor}, {"--max-total-cost", *maxTotal, &req.MaxTotalCostMinor}} {
		if g.v == "" {
			continue
		}
		n, err := parseMoney(g.v)
		if err != nil || n <= 0 {
			return usagef("%s: %q is not a positive amount (like 25 or 12.50)", g.flag, g.v)
		}
		*g.dst = &n
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := r.withTimeout(*timeout + time.Minute)
	defer cancel()
	if quote {
		q, err := c.Quote(ctx, req)
		if err != nil {
			return err
		}
		if err := r.out(q, func(w io.Writer) { printQuote(w, q) }); err != nil {
			return err
		}
		if !q.Allowed {
			return exitErr{ExitConflict, "the request would be refused: " + q.Refusals[0].Message + " (" + q.Refusals[0].Code + ")"}
		}
		return nil
	}
	a, err := c.CreateAllocation(ctx, req)
	if err != nil {
		return err
	}
	if !*wait {
		return r.out(a, func(w io.Writer) {
			fmt.Fprintf(w, "Allocation %s (%s) requested on %s at %s/h.\n", a.Id, shortID(a.Id), a.SkuId, money(a.PriceMinor, a.Currency))
			fmt.Fprintf(w, "Follow it: gpuaas alloc get %s\n", shortID(a.Id))
		})
	}
	start := r.env.Now()
	a, err = c.WaitActive(ctx, a.Id, func(a client.Allocation) {
		if !r.json {
			fmt.Fprintf(r.env.Stderr, "[%5.1fs] %s %s\n", r.env.Now().Sub(start).Seconds(), shortID(a.Id), a.State)
		}
	})
	if err != nil {
		if r.json {
			_ = writeJSONLine(r.env.Stdout, a)
		}
		return err
	}
	return r.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "Allocation %s is active on %s at %s/h.\n", a.Id, a.SkuId, money(a.PriceMinor, a.Currency))
		if a.Access != nil {
			fmt.Fprintf(w, "  gpuaas ssh %s\n  gpuaas config-ssh && ssh %s\n", shortID(a.Id), hostAlias(a))
		}
	})
}

func printQuote(w io.Writer, q client.Quote) {
	fmt.Fprintf(w, "%s: %s/h; balance %s; burn now %s/h; runway with it %s; free nodes %d\n", q.SkuId,
		money(q.HourlyPriceMinor, q.Currency), money(q.BalanceMinor, q.Currency), money(q.BurnRateMinorPerHour, q.Currency),
		(time.Duration(q.RunwaySecondsAfter) * time.Second).String(), q.FreeNodes)
	if q.MaxDurationSeconds != nil && *q.MaxDurationSeconds > 0 {
		fmt.Fprintf(w, "Its cost cap would release it after %s.\n", time.Duration(*q.MaxDurationSeconds)*time.Second)
	}
	if q.Allowed {
		fmt.Fprintln(w, "Allowed.")
		return
	}
	for _, rf := range q.Refusals {
		fmt.Fprintf(w, "Refused: %s (%s)\n", rf.Message, rf.Code)
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// shortID is an allocation's short name: the last 8 characters of its id.
// (Ids are UUIDv7, whose first characters are a timestamp that allocations
// made within a minute share; the last ones are random.)
func shortID(id string) string { return id[max(0, len(id)-8):] }

// hostAlias is the ssh config name config-ssh writes for an allocation.
func hostAlias(a client.Allocation) string { return "gpuaas." + shortID(a.Id) }

// resolve finds the allocation a user names by id or id prefix (its short
// name) among the active project's.
func (r *runner) resolve(c *client.Client, ref string) (client.Allocation, error) {
	ctx, cancel := r.withTimeout(time.Minute)
	defer cancel()
	ref = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(ref)), "gpuaas.")
	if len(ref) == 36 {
		return c.GetAllocation(ctx, ref)
	}
	if len(ref) < 4 {
		return client.Allocation{}, usagef("name an allocation by its id or its short name (the id's last 8 characters)")
	}
	var found []client.Allocation
	for a, err := range c.Allocations(ctx, client.ListAllocations{}) {
		if err != nil {
			return client.Allocation{}, err
		}
		if strings.HasSuffix(a.Id, ref) || strings.HasPrefix(a.Id, ref) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return client.Allocation{}, exitErr{ExitNotFound, "no allocation of this project is named " + ref}
	case 1:
		return c.GetAllocation(ctx, found[0].Id)
	}
	return client.Allocation{}, usagef("%d allocations match %s: give the whole id", len(found), ref)
}

func (r *runner) allocList(args []string) error {
	f := r.flags("alloc ls")
	state := f.String("state", "", "only allocations in this state")
	all := f.Bool("all", false, "include released and failed ones")
	c, ctx, cancel, err := r.session(f, args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	var list []client.Allocation
	for a, err := range c.Allocations(ctx, client.ListAllocations{State: client.AllocationState(*state)}) {
		if err != nil {
			return err
		}
		if *all || *state != "" || (a.State != client.StateReleased && a.State != client.StateFailed) {
			list = append(list, a)
		}
	}
	now := r.env.Now()
	return r.out(map[string]any{"allocations": list}, func(w io.Writer) {
		rows := make([][]string, 0, len(list))
		for _, a := range list {
			cost := "—"
			if costMinor, _, running, ok := billed(a, now); ok {
				cost = money(costMinor, a.Currency) + soFar(running)
			}
			rows = append(rows, []string{shortID(a.Id), string(a.State), a.SkuId, money(a.PriceMinor, a.Currency) + "/h",
				cost, ago(now, a.CreatedAt), a.Id})
		}
		if len(rows) == 0 && !*all && *state == "" {
			fmt.Fprintln(w, "No node is allocated. gpuaas alloc ls --all includes released ones; gpuaas alloc create --sku SKU requests one.")
			return
		}
		table(w, "NAME\tSTATE\tSKU\tPRICE\tBILLED\tCREATED\tID", rows)
	})
}

func (r *runner) allocGet(args []string) error {
	f := r.flags("alloc get")
	c, _, cancel, err := r.session(f, args, 1, 1, "an allocation id", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	a, err := r.resolve(c, f.args[0])
	if err != nil {
		return err
	}
	return r.out(a, func(w io.Writer) { printAllocation(w, a, r.env.Now()) })
}

func printAllocation(w io.Writer, a client.Allocation, now time.Time) {
	fmt.Fprintf(w, "%s  %s\n  state    %s\n  sku      %s at %s/h\n  created  %s\n", shortID(a.Id), a.Id, a.State, a.SkuId,
		money(a.PriceMinor, a.Currency), a.CreatedAt.Format(time.RFC3339))
	if a.MaxTotalCostMinor != nil {
		fmt.Fprintf(w, "  cap      %s in total\n", money(*a.MaxTotalCostMinor, a.Currency))
	}
	if line := billedLine(a, now); line != "" {
		fmt.Fprintf(w, "  billed   %s\n", line)
	}
	if a.ReleaseReason != nil {
		fmt.Fprintf(w, "  release  %s\n", releaseReasonText[*a.ReleaseReason])
	}
	if a.FailureCode != nil && *a.FailureCode != "" {
		fmt.Fprintf(w, "  failure  %s\n", *a.FailureCode)
	}
	if a.Access != nil {
		fmt.Fprintf(w, "  ssh      %s  (or: gpuaas ssh %s)\n", a.Access.Command, shortID(a.Id))
	}
}

func (r *runner) allocRelease(args []string) error {
	f := r.flags("alloc release")
	wait := f.Bool("wait", false, "wait until the node is released")
	timeout := f.positiveDuration("timeout", 10*time.Minute, "how long --wait waits")
	c, ctx, cancel, err := r.session(f, args, 1, 1, "an allocation id", *timeout)
	if err != nil {
		return err
	}
	defer cancel()
	a, err := r.resolve(c, f.args[0])
	if err != nil {
		return err
	}
	if a, err = c.ReleaseAllocation(ctx, a.Id); err != nil {
		return err
	}
	if *wait {
		a, err = c.WaitFor(ctx, a.Id, func(a client.Allocation) bool {
			return a.State == client.StateReleased || a.State == client.StateReleaseFailed
		}, func(a client.Allocation) {
			if !r.json {
				fmt.Fprintf(r.env.Stderr, "%s %s\n", shortID(a.Id), a.State)
			}
		})
		if err != nil {
			return err
		}
	}
	return r.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "Allocation %s is %s; billing stopped.\n", a.Id, a.State)
		if line := billedLine(a, r.env.Now()); line != "" {
			fmt.Fprintf(w, "Billed %s.\n", line)
		}
	})
}

// releaseReasonText says why an allocation's release was asked for.
var releaseReasonText = map[client.ReleaseReason]string{
	client.ReleasedByUser:        "asked for by its user",
	client.ReleasedByTenantAdmin: "asked for by an admin of the organisation",
	client.ReleasedByOperator:    "asked for by a platform operator",
	client.ReleasedBalanceOut:    "the balance ran out",
	client.ReleasedCostCap:       "its total-cost cap was reached",
}

// billedLine says what an allocation has been billed (billed); "" before
// it was active.
func billedLine(a client.Allocation, now time.Time) string {
	costMinor, secs, running, ok := billed(a, now)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s for %s of use%s", money(costMinor, a.Currency), time.Duration(secs)*time.Second, soFar(running))
}

func soFar(running bool) string {
	if running {
		return " so far"
	}
	return ""
}

// billed is what an allocation has been billed: its whole seconds from
// active_at to its release request (or release, for rows from before
// requests were stamped) or else to now — then running is true — and their
// cost at its hourly price, rounded down as the platform does
// (doc/billing.md). ok is false before it was active.
func billed(a client.Allocation, now time.Time) (costMinor, secs int64, running, ok bool) {
	if a.ActiveAt == nil {
		return 0, 0, false, false
	}
	end := now
	switch {
	case a.ReleaseRequestedAt != nil:
		end = *a.ReleaseRequestedAt
	case a.ReleasedAt != nil:
		end = *a.ReleasedAt
	default:
		running = true
	}
	secs = max(int64(end.Sub(*a.ActiveAt)/time.Second), 0)
	return a.PriceMinor * secs / 3600, secs, running, true
}

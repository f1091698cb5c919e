package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

func (r *runner) balance(args []string) error {
	c, ctx, cancel, err := r.session(r.flags("balance"), args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	b, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	return r.out(b, func(w io.Writer) {
		runway := b.RunwayText
		if runway == "" { // nothing burns
			runway = "no node is running"
		}
		fmt.Fprintf(w, "Balance  %s\nBurn     %s/h\nRunway   %s\n", money(b.BalanceMinor, b.Currency),
			money(b.BurnRateMinorPerHour, b.Currency), runway)
	})
}

// usage prints the usage records, or with --csv streams the billing
// export as is.
func (r *runner) usage(args []string) error {
	f := r.flags("usage")
	csv := f.Bool("csv", false, "the billing export as CSV (RFC 4180) on standard output")
	c, ctx, cancel, err := r.session(f, args, 0, 0, "no arguments", 10*time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	if *csv {
		return c.UsageCSV(ctx, r.env.Stdout)
	}
	var recs []client.UsageRecord
	for u, err := range c.Usage(ctx) {
		if err != nil {
			return err
		}
		recs = append(recs, u)
	}
	return r.out(map[string]any{"usage": recs}, func(w io.Writer) {
		rows := make([][]string, 0, len(recs))
		for _, u := range recs {
			rows = append(rows, []string{shortID(u.AllocationId), u.ProjectName, string(u.State), u.StartedAt.Format(time.RFC3339),
				(time.Duration(u.Seconds) * time.Second).String(), money(u.HourlyPriceMinor, u.Currency) + "/h",
				money(u.CostMinor, u.Currency)})
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "No usage yet: a node adds a record from when it starts (gpuaas alloc create --sku SKU).")
			return
		}
		table(w, "ALLOCATION\tPROJECT\tSTATE\tSTARTED\tTIME\tPRICE\tCOST", rows)
	})
}

// topUp opens a checkout for an amount and prints where to pay.
func (r *runner) topUp(args []string) error {
	f := r.flags("top-up")
	currency := f.String("currency", "usd", "currency of the amount")
	noBrowser := f.Bool("no-browser", false, "print the checkout URL instead of opening a browser")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.want(1, 1, "an amount (like 25 or 12.50)"); err != nil {
		return err
	}
	amount, err := parseMoney(f.args[0])
	if err != nil || amount <= 0 {
		return usagef("top-up: %q is not a positive amount", f.args[0])
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := r.withTimeout(time.Minute)
	defer cancel()
	s, err := c.TopUp(ctx, amount, *currency)
	if err != nil {
		return err
	}
	if !*noBrowser && !r.json && r.env.OpenBrowser != nil {
		_ = r.env.OpenBrowser(s.CheckoutUrl)
	}
	return r.out(s, func(w io.Writer) {
		fmt.Fprintf(w, "Pay %s at:\n  %s\nThe balance grows once the payment is confirmed (gpuaas balance).\n",
			money(s.AmountMinor, s.Currency), s.CheckoutUrl)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

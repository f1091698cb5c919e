package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// out prints v as JSON (--json) or calls text to print it for people.
func (r *runner) out(v any, text func(w io.Writer)) error {
	if r.json {
		return writeJSONLine(r.env.Stdout, v)
	}
	text(r.env.Stdout)
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, aligned.
func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// money formats minor units of a currency: 299 usd → "2.99 USD".
func money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, strings.ToUpper(currency))
}

// parseMoney reads "12.50" or "12" (major units) into minor units.
func parseMoney(s string) (int64, error) {
	bad := fmt.Errorf("%q is not an amount (like 25 or 12.50)", s)
	whole, frac, dot := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" || strings.ContainsAny(whole, "+-") || (dot && (frac == "" || len(frac) > 2)) {
		return 0, bad
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1e10 {
		return 0, bad
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt((frac + "0")[:2], 10, 64)
		if err != nil || strings.ContainsAny(frac, "+-") {
			return 0, bad
		}
	}
	return w*100 + f, nil
}

// ago says how long ago t was, briefly.
func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Format("2006-01-02")
}

// errCode is the API's code of err, else a CLI code.
func errCode(err error) string {
	if c := client.ErrorCode(err); c != "" {
		return c
	}
	var ue usageErr
	var ee exitErr
	var fe *client.AllocationFailedError
	switch {
	case errors.As(err, &ue):
		return "usage"
	case errors.As(err, &fe):
		return "allocation_failed"
	case errors.As(err, &ee) && ee.code == ExitAuth:
		return "not_signed_in"
	}
	return "error"
}

// classify maps an error to its exit code and one human line with the
// code in it.
func classify(err error) (int, string) {
	var ue usageErr
	var ee exitErr
	var ae *client.Error
	var fe *client.AllocationFailedError
	var ne net.Error
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &ue):
		return ExitUsage, ue.msg
	case errors.As(err, &ee):
		return ee.code, ee.msg
	case errors.As(err, &fe):
		return ExitFailed, fe.Error()
	case errors.As(err, &ae):
		line := fmt.Sprintf("%s (%d %s", ae.Message, ae.StatusCode, ae.Code)
		if ae.Field != "" {
			line += ", field " + ae.Field
		}
		line += ")"
		switch ae.StatusCode {
		case 401:
			return ExitAuth, line
		case 402:
			return ExitPayment, line
		case 403:
			return ExitForbidden, line
		case 404:
			return ExitNotFound, line
		case 409, 422:
			return ExitConflict, line
		case 429, 502, 503, 504:
			return ExitUnavailable, line
		case 400:
			return ExitUsage, line
		}
		return ExitError, line
	case errors.Is(err, context.DeadlineExceeded):
		return ExitUnavailable, "timed out: " + err.Error()
	case errors.As(err, &pe) || errors.As(err, &le):
		// A local file's error (before net.Error: the syscall.Errno it
		// wraps has Timeout and Temporary, so it would read as one).
		return ExitError, err.Error()
	case errors.As(err, &ne):
		return ExitUnavailable, "the API is unreachable: " + err.Error()
	}
	return ExitError, err.Error()
}

// nextStep is what to run after a refusal a new user meets on the way to a
// node ("" when there is nothing the CLI can suggest): the API's message
// says what is wrong, this says which command fixes it.
func nextStep(err error) string {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return ""
	}
	if ae.StatusCode == 401 {
		return "sign in again: gpuaas login"
	}
	switch ae.Code {
	case "ssh_key_required":
		return "add your public key: gpuaas ssh-keys add ~/.ssh/id_ed25519.pub"
	case "insufficient_balance":
		return "buy credit: gpuaas top-up 20 (gpuaas balance shows what you have)"
	case "no_capacity":
		return "gpuaas skus shows which SKUs have free nodes"
	case "allocation_cap_reached":
		return "gpuaas alloc ls shows your nodes; gpuaas alloc release ID frees one"
	case "spend_cap_reached":
		return "this API key's daily spend cap is used up (it resets at 00:00 UTC); gpuaas keys ls shows its cap"
	case "storage_quota_exceeded":
		return "gpuaas files ls shows what the project stores; gpuaas files rm PATH frees space"
	}
	return ""
}

// plural is n with the word for one or for several.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

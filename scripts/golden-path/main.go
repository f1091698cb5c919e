// Command golden-path walks the product's reason to exist against a running
// platform (`gpuaas dev`), as a signed-in user would, and exits non-zero on
// the first thing that does not work:
//
//  1. sign in through the dev identity provider (PKCE) and read /users/me;
//
//  2. top up credit through the dev checkout if the balance is not positive;
//
//  3. add an SSH key (made in memory for this run);
//
//  4. POST /allocations for a SKU with capacity and wait for `active`;
//
//  5. ssh into the node with that key and run a command;
//
//  6. open the browser terminal WebSocket, run `echo hi-$((6*7))`, expect `hi-42`;
//
//  7. release, wait for `released`, and check SSH is refused and the node is
//     available again.
//
//     go run ./scripts/golden-path -api http://127.0.0.1:8080 -user alice
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "golden-path: FAIL:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "golden-path: OK")
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("golden-path", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the platform API")
	user := fs.String("user", "alice", "dev identity provider user")
	password := fs.String("password", "", "password (default: the user name)")
	sku := fs.String("sku", "", "SKU to allocate (default: the first with capacity)")
	timeout := fs.Duration("timeout", 3*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		*password = *user
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	step := func(format string, a ...any) { fmt.Fprintf(out, "• "+format+"\n", a...) }

	c := e2e.New(*api)
	if err := c.Login(ctx, *user, *password); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return fmt.Errorf("users/me: %w", err)
	}
	step("signed in as %s (tenant %s, project %s)", me.User.Email, me.Tenant.ID, c.Project)

	bal, err := c.Balance(ctx)
	if err != nil {
		return fmt.Errorf("balance: %w", err)
	}
	if bal.BalanceMinor <= 0 {
		if err := c.TopUp(ctx, 5000, "usd"); err != nil {
			return err
		}
		if bal, err = c.Balance(ctx); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
		if bal.BalanceMinor <= 0 {
			return fmt.Errorf("balance is %d after paying", bal.BalanceMinor)
		}
	}
	step("balance %d %s", bal.BalanceMinor, bal.Currency)

	if err := e2e.GoldenPath(ctx, c, *sku, step); err != nil {
		return err
	}
	return nil
}

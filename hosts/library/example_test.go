package library_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestMain runs the examples when Postgres answers (the Postgres example
// needs it). Without it the package is skipped loudly, and fails under
// GPUAAS_REQUIRE_SERVICES=1, as every suite needing a service does.
func TestMain(m *testing.M) {
	u, err := url.Parse(services.PostgresURL())
	if err == nil {
		err = services.Reachable(u.Host)
	}
	if err != nil {
		if os.Getenv("GPUAAS_REQUIRE_SERVICES") == "1" {
			fmt.Fprintf(os.Stderr, "library: Postgres is required (GPUAAS_REQUIRE_SERVICES=1) and unreachable: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "library: SKIPPING the examples: Postgres is unreachable (%v)\n", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Your own adapters: the policy use cases over an in-memory policy store,
// audit log and transaction runner written here (any store that keeps the
// ports' promises will do), with the testkit's clock and ids.
func Example_policyWithYourOwnAdapters() {
	ctx := context.Background()
	store := &memPolicies{values: map[string]string{}}
	log := &memAudit{}
	svc, err := policysvc.New(policysvc.Deps{Tx: noTx{}, Policies: store, Audit: log,
		Clock: fakes.NewClock(time.Time{}), IDs: &fakes.IDs{}})
	if err != nil {
		panic(err)
	}
	operator := identity.Principal{User: identity.User{ID: "op-1", Role: identity.RoleAdmin, Status: identity.UserActive}}
	if _, err := svc.Set(ctx, operator, policy.AllocationMaxPerUser.Name, "2"); err != nil {
		panic(err)
	}
	_, err = svc.Set(ctx, operator, policy.AllocationMaxPerUser.Name, "-1")
	fmt.Println("refused:", fault.From(err).Code, fault.From(err).Field)
	_, err = svc.Set(ctx, identity.Principal{User: identity.User{ID: "u-1", Role: identity.RoleUser}}, policy.AllocationMaxPerUser.Name, "9")
	fmt.Println("refused:", fault.From(err).Code)
	vals, _ := store.Values(ctx, "")
	fmt.Println(policy.AllocationMaxPerUser.Name, "=", vals.Int(policy.AllocationMaxPerUser))
	fmt.Println("audited:", len(log.events), log.events[0].Action)
	// Output:
	// refused: validation_failed value
	// refused: forbidden
	// allocation.max_concurrent_per_user = 2
	// audited: 1 policy.set
}

// Our adapters: identity, policy, ledger, payments and allocations over
// Postgres (migrated on open), the dev payment provider, the wall clock's
// stand-in from testkit and UUIDs — what `gpuaas serve api` wires, without
// it. A person signs in (their tenant and default project are made), an
// operator credits the tenant, a node is registered, and the person quotes,
// creates and is capped.
func Example_allocationsOnPostgres() {
	ctx := context.Background()
	db, drop := freshDatabase(ctx)
	defer drop()
	clock, ids := fakes.NewClock(time.Time{}), &fakes.IDs{}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	must(err)
	defer outbox.Close()
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	must(err)
	auditLog, ledgerStore := postgres.NewAuditLog(db), postgres.NewLedgerStore(db)
	people, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog, Outbox: outbox,
		Clock: clock, IDs: ids})
	must(err)
	money, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: ledgerStore, Entries: ledgerStore, Usage: postgres.NewUsageStore(db),
		Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	rules, err := policysvc.New(policysvc.Deps{Tx: db, Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	provider, err := devpay.New(devpay.Config{PublicBaseURL: "http://127.0.0.1:8080", WebhookSecret: "whsec_example"})
	must(err)
	payments, err := paymentsvc.New(paymentsvc.Config{SuccessURL: "http://127.0.0.1:8080/billing", CancelURL: "http://127.0.0.1:8080/billing",
		PortalReturnURL: "http://127.0.0.1:8080/billing"}, paymentsvc.Deps{Tx: db, Store: postgres.NewPaymentStore(db),
		Ledger: ledgerStore, Provider: provider, Policies: policies, Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids})
	must(err)
	allocs := postgres.NewAllocationStore(db)
	nodes := allocationsvc.Deps{Tx: db, Allocations: allocs, Spend: allocs, SKUs: postgres.NewSKUStore(db),
		Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db), Ledger: ledgerStore, Policies: policies,
		Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids}
	compute, err := allocationsvc.New(nodes)
	must(err)

	ada, err := people.SignIn(ctx, identity.Claims{Issuer: "https://idp.example", Subject: "ada", Email: "ada@example.com", Name: "Ada"})
	must(err)
	projects, err := people.ListProjects(ctx, ada)
	must(err)
	project := projects[0].Project
	fmt.Println("signed in:", ada.User.Email, ada.TenantRole, "of a tenant with project", project.Name)
	operator, err := people.SignIn(ctx, identity.Claims{Issuer: "https://idp.example", Subject: "op", Roles: []string{"admin"}})
	must(err)
	_, err = money.AdminCredit(ctx, operator, ledgersvc.AdminCreditRequest{TenantID: ada.TenantID, AmountMinor: 10_000,
		Currency: "usd", Reason: "welcome credit", IdempotencyKey: "welcome-" + ada.TenantID})
	must(err)
	_, err = rules.Set(ctx, operator, policy.AllocationMaxPerUser.Name, "1")
	must(err)
	checkout, err := payments.CreateCheckout(ctx, ada, 2_500, "usd", "first-top-up")
	must(err)
	fmt.Println("checkout:", checkout.Status, checkout.AmountMinor, checkout.Currency, strings.HasPrefix(checkout.CheckoutURL, "http://127.0.0.1:8080/"))

	must(nodes.Nodes.CreateNode(ctx, inventory.Node{ID: ids.NewID(), Name: "gpu-1", SKUID: "h100-80g-x1",
		State: inventory.NodeActive, SSHHost: "10.0.0.1", SSHPort: 22}))
	_, err = compute.AddSSHKey(ctx, ada, "laptop", sshKey())
	must(err)
	limit := int64(598) // two hours at 2.99/h
	q, err := compute.Quote(ctx, ada, project.ID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxTotalCostMinor: limit})
	must(err)
	fmt.Printf("quote: %d/h, balance %d, runway %dh, may run %dh, allowed %v\n", q.HourlyPriceMinor, q.BalanceMinor,
		q.RunwaySecondsAfter/3600, q.MaxDurationSeconds/3600, q.Allowed)
	a, err := compute.Create(ctx, ada, project.ID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxTotalCostMinor: limit})
	must(err)
	fmt.Println("allocation:", a.State, a.PriceMinor, a.Currency, "capped at", a.MaxTotalCostMinor)
	_, err = compute.Create(ctx, ada, project.ID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"})
	fmt.Println("second:", fault.From(err).Code)
	bal, err := money.Balance(ctx, ada)
	must(err)
	fmt.Println("balance:", bal.BalanceMinor, bal.Currency)
	// Output:
	// signed in: ada@example.com owner of a tenant with project default
	// checkout: initiated 2500 usd true
	// quote: 299/h, balance 10000, runway 33h, may run 2h, allowed true
	// allocation: requested 299 usd capped at 598
	// second: allocation_cap_reached
	// balance: 10000 usd
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func sshKey() string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// freshDatabase makes a database of its own, migrated, and returns the
// function that drops it.
func freshDatabase(ctx context.Context) (*postgres.DB, func()) {
	admin := services.PostgresURL()
	conn, err := pgx.Connect(ctx, admin)
	must(err)
	name := "gpuaas_lib_" + services.RandomSuffix(6)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	must(err)
	_ = conn.Close(ctx)
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	db, err := postgres.Open(ctx, postgres.Config{URL: u.String(), Migrate: true})
	must(err)
	return db, func() {
		db.Close()
		if c, err := pgx.Connect(context.Background(), admin); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	}
}

// memPolicies is an in-memory ports.PolicyStore (global values only).
type memPolicies struct {
	mu     sync.Mutex
	values map[string]string
}

var _ ports.PolicyStore = (*memPolicies)(nil)

func (m *memPolicies) Values(_ context.Context, _ string) (policy.Values, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := policy.Values{}
	for k, v := range m.values {
		out[k] = v
	}
	return out, nil
}

func (m *memPolicies) Set(_ context.Context, _ string, key, value, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key] = value
	return nil
}

// memAudit is an in-memory ports.AuditLog.
type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

var _ ports.AuditLog = (*memAudit)(nil)

func (m *memAudit) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memAudit) List(context.Context, audit.Filter) ([]audit.Event, string, error) {
	return append([]audit.Event(nil), m.events...), "", nil
}

// noTx runs the work the context carries and fn at once: a store without
// transactions (one process, one writer) may do that.
type noTx struct{}

func (noTx) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if work := ports.TxWork(ctx); work != nil {
		if err := work(ctx); err != nil {
			return err
		}
	}
	return fn(ctx)
}

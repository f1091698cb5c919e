package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/hosts/cli"
	"github.com/gpuaas/gpuaas/hosts/http/client"
	"github.com/gpuaas/gpuaas/testkit/e2e"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// sshPublicKey makes an Ed25519 key and returns its public half in
// authorized_keys format.
func sshPublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// TestMachineAccessEndToEnd is issue 14's proof on the whole platform (real
// Postgres, NATS, Temporal, the agent gateway and sandbox nodes):
//   - a service account creates, waits for and releases an allocation
//     through the Go client, audited as itself; its rotated-out secret is
//     refused at once and its revoked credential's token within a second;
//   - an MCP client session (the SDK's client) lists SKUs, quotes, creates
//     under a cost cap and releases, with a person's API key;
//   - an API key over its daily spend cap is refused with 402;
//   - the CLI logs in with an API key and runs skus, alloc create --wait,
//     config-ssh and alloc release with --json.
func TestMachineAccessEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole platform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	_, o, db := startTestPlatform(ctx, t)
	base := "http://" + o.httpAddr
	alice := e2e.New(base)
	if err := alice.Login(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := alice.TopUp(ctx, 50000, "usd"); err != nil {
		t.Fatal(err)
	}
	sku, err := waitForCapacity(ctx, alice, o.nodeSKU)
	if err != nil {
		t.Fatal(err)
	}
	person := alice.API()

	// --- A service account through the Go client.
	sa, err := person.CreateServiceAccount(ctx, alice.Project, "ci-"+randSuffix(), "member")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := person.CreateCredential(ctx, alice.Project, sa.Id)
	if err != nil {
		t.Fatal(err)
	}
	bot, err := client.New(base, client.WithServiceAccount(c1.ClientId, c1.ClientSecret), client.WithProject(alice.Project))
	if err != nil {
		t.Fatal(err)
	}
	bot.PollInterval = 100 * time.Millisecond
	pub := sshPublicKey(t)
	if _, err := bot.AddSSHKey(ctx, "bot", pub); err != nil {
		t.Fatal(err)
	}
	limit := int64(1_000)
	q, err := bot.Quote(ctx, client.CreateAllocation{SkuId: sku, MaxTotalCostMinor: &limit})
	if err != nil || !q.Allowed {
		t.Fatalf("quote %+v %v", q, err)
	}
	a, err := bot.CreateAllocation(ctx, client.CreateAllocation{SkuId: sku, MaxTotalCostMinor: &limit})
	if err != nil {
		t.Fatal(err)
	}
	if a.UserId != sa.Id || a.MaxTotalCostMinor == nil || *a.MaxTotalCostMinor != limit {
		t.Fatalf("allocation %+v", a)
	}
	if a, err = bot.WaitActive(ctx, a.Id, nil); err != nil {
		t.Fatal(err)
	}
	if a.Access == nil || a.Access.HostKey == nil || !strings.HasPrefix(*a.Access.HostKey, "ssh-") {
		t.Fatalf("access %+v", a.Access)
	}
	if _, err := bot.ReleaseAllocation(ctx, a.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.WaitFor(ctx, a.Id, func(a client.Allocation) bool { return a.State == client.StateReleased }, nil); err != nil {
		t.Fatal(err)
	}
	var actor string
	if err := db.Pool.QueryRow(ctx, `SELECT actor_type FROM audit_log WHERE action = 'allocation.create' AND actor_id = $1`,
		sa.Id).Scan(&actor); err != nil || actor != "service_account" {
		t.Fatalf("audit actor %q %v", actor, err)
	}
	// Admin routes are not its to call.
	if err := bot.Call(ctx, "GET", "/api/v1/admin/policies", nil, nil); client.ErrorCode(err) != client.CodeInteractiveRequired {
		t.Fatalf("admin route: %v", err)
	}

	// Rotation: a second secret; the first revoked is refused at the token
	// route at once, and its token within a second.
	c2, err := person.CreateCredential(ctx, alice.Project, sa.Id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bot.SKUs(ctx); err != nil { // the bot holds a token of c1
		t.Fatal(err)
	}
	tok1, err := bot.ServiceToken(ctx, c1.ClientId, c1.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := person.RevokeCredential(ctx, alice.Project, sa.Id, c1.Credential.Id); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if _, err := bot.ServiceToken(ctx, c1.ClientId, c1.ClientSecret); client.ErrorCode(err) != client.CodeInvalidClient {
		t.Fatalf("rotated-out secret: %v", err)
	}
	old, _ := client.New(base, client.WithBearerToken(tok1.AccessToken), client.WithProject(alice.Project))
	refusedWithin := func(c *client.Client, since time.Time, what string) {
		t.Helper()
		poll.Until(t, time.Second-time.Since(since), what+" refused", func() bool {
			_, err := c.SKUs(ctx)
			return client.ErrorCode(err) == client.CodeTokenInvalid
		})
		t.Logf("%s refused %s after the revocation", what, time.Since(since).Round(time.Millisecond))
	}
	refusedWithin(old, revoked, "the rotated-out credential's token")
	bot2, _ := client.New(base, client.WithServiceAccount(c2.ClientId, c2.ClientSecret), client.WithProject(alice.Project))
	tok2, err := bot2.ServiceToken(ctx, c2.ClientId, c2.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := person.RevokeCredential(ctx, alice.Project, sa.Id, c2.Credential.Id); err != nil {
		t.Fatal(err)
	}
	holder, _ := client.New(base, client.WithBearerToken(tok2.AccessToken), client.WithProject(alice.Project))
	refusedWithin(holder, time.Now(), "the revoked credential's token")

	// --- An MCP session with a person's API key.
	if _, err := person.AddSSHKey(ctx, "alice", sshPublicKey(t)); err != nil {
		t.Fatal(err)
	}
	key, err := person.CreateAPIKey(ctx, client.CreateAPIKey{Name: "agent-" + randSuffix(), ProjectId: alice.Project,
		Scopes: []client.CredentialScope{client.ScopeRead, client.ScopeAllocations, client.ScopeBilling}})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := client.New(base, client.WithAPIKey(key.Secret), client.WithProject(alice.Project))
	if err != nil {
		t.Fatal(err)
	}
	agent.PollInterval = 100 * time.Millisecond
	srvT, cliT := mcp.NewInMemoryTransports()
	server := cli.MCPServer(agent, "test")
	ss, err := server.Connect(ctx, srvT, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	mc := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "v0"}, nil)
	cs, err := mc.Connect(ctx, cliT, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	callTool := func(name string, args map[string]any, out any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out != nil && !res.IsError {
			b, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s: %v: %s", name, err, b)
			}
		}
		return res
	}
	var skus struct{ Skus []client.SKU }
	callTool("list_skus", nil, &skus)
	if len(skus.Skus) == 0 {
		t.Fatal("list_skus listed nothing")
	}
	var quote client.Quote
	callTool("quote", map[string]any{"sku_id": sku, "max_total_cost_minor": 500}, &quote)
	if quote.SkuId != sku || quote.HourlyPriceMinor <= 0 {
		t.Fatalf("quote %+v", quote)
	}
	if res := callTool("create_allocation", map[string]any{"sku_id": sku}, nil); !res.IsError {
		t.Fatal("create_allocation without a cost cap was accepted")
	}
	var created client.Allocation
	if res := callTool("create_allocation", map[string]any{"sku_id": sku, "max_total_cost_minor": 500, "wait_active": true}, &created); res.IsError {
		t.Fatalf("create_allocation: %s", toolText(res))
	}
	if created.State != client.StateActive || created.MaxTotalCostMinor == nil || *created.MaxTotalCostMinor != 500 {
		t.Fatalf("created %+v", created)
	}
	var listed struct{ Allocations []client.Allocation }
	callTool("list_allocations", map[string]any{"state": "active"}, &listed)
	if len(listed.Allocations) != 1 || listed.Allocations[0].Id != created.Id {
		t.Fatalf("listed %+v", listed)
	}
	var rel client.Allocation
	callTool("release_allocation", map[string]any{"allocation_id": created.Id}, &rel)
	if rel.State != client.StateReleasing {
		t.Fatalf("released %+v", rel)
	}
	var bal client.BillingBalance
	callTool("balance", nil, &bal)
	if bal.Currency == "" {
		t.Fatalf("balance %+v", bal)
	}

	// --- A key over its daily spend cap.
	capped, err := person.CreateAPIKey(ctx, client.CreateAPIKey{Name: "capped-" + randSuffix(), ProjectId: alice.Project,
		Scopes: []client.CredentialScope{client.ScopeAllocations}, SpendCapMinor: ptr(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := client.New(base, client.WithAPIKey(capped.Secret), client.WithProject(alice.Project))
	if _, err := ck.CreateAllocation(ctx, client.CreateAllocation{SkuId: sku}); client.ErrorCode(err) != client.CodeSpendCapReached {
		t.Fatalf("over the spend cap: %v", err)
	}

	// --- The CLI with an API key, as a script uses it.
	home := t.TempDir()
	cliKey, err := person.CreateAPIKey(ctx, client.CreateAPIKey{Name: "cli-" + randSuffix(), ProjectId: alice.Project,
		Scopes: []client.CredentialScope{client.ScopeRead, client.ScopeAllocations, client.ScopeBilling}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(want int, args ...string) []byte {
		t.Helper()
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(cliKey.Secret + "\n"), Stdout: &stdout, Stderr: &stderr, Now: time.Now,
			Getenv: func(k string) string {
				if k == "GPUAAS_CONFIG_DIR" {
					return filepath.Join(home, "config")
				}
				return ""
			}}
		if code := cli.Run(ctx, args, env); code != want {
			t.Fatalf("gpuaas %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout.Bytes(), stderr.Bytes())
		}
		return stdout.Bytes()
	}
	run(0, "login", "--api", base, "--api-key-stdin", "--json")
	if st, err := os.Stat(filepath.Join(home, "config", "credentials.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	var created2 client.Allocation
	if err := json.Unmarshal(run(0, "alloc", "create", "--sku", sku, "--wait", "--json"), &created2); err != nil || created2.State != client.StateActive {
		t.Fatalf("alloc create: %+v %v", created2, err)
	}
	sshCfg := filepath.Join(home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(sshCfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sshCfg, []byte("Host mine\n  HostName example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(0, "config-ssh", "--ssh-config", sshCfg, "--json")
	run(0, "config-ssh", "--ssh-config", sshCfg) // again: the block is replaced, not repeated
	b, _ := os.ReadFile(sshCfg)
	if !strings.HasPrefix(string(b), "Host mine\n") || strings.Count(string(b), "START-GPUAAS") != 1 ||
		!strings.Contains(string(b), "Host gpuaas."+created2.Id[len(created2.Id)-8:]) || !strings.Contains(string(b), "StrictHostKeyChecking yes") {
		t.Fatalf("ssh config:\n%s", b)
	}
	run(0, "alloc", "release", created2.Id[len(created2.Id)-8:], "--json")
	run(cli.ExitUsage, "top-up", "0")
	// Metering opens usage from the activation event, asynchronously.
	poll.Until(t, 30*time.Second, "the allocation in the usage CSV", func() bool {
		return bytes.Contains(run(0, "usage", "--csv"), []byte(created2.Id))
	})
}

func ptr[T any](v T) *T { return &v }

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// toolText is the text of a tool result (its error, when it is one).
func toolText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

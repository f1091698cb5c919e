package httphost

import (
	"bufio"
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/hosts/internal/telemetry"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// hotPathStack is the HTTP host as `gpuaas serve api` wires it on one
// replica (identity, inventory and allocations over real Postgres, the
// in-process token store and rate limiter `gpuaas dev` uses, the policy
// cache listening, a JSON access log written to nowhere), serving on a
// loopback listener. tracer, when set, sees every statement of the pool
// (BenchmarkAllocationCreates records one request's with it).
type hotPathStack struct {
	ts      *httptest.Server
	db      *postgres.DB
	dbURL   string
	tok     string
	project string
	tenant  string
	user    string
	// policies is the host's policy store; iss signs its tokens.
	policies *postgres.PolicyStore
	iss      *tokens.Issuer
}

func newHotPathStack(b *testing.B, tracer pgx.QueryTracer) *hotPathStack {
	b.Helper()
	dbURL := services.FreshDatabaseURL(b)
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, Migrate: true, MaxConns: 40, Tracer: tracer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	iss := tokens.NewIssuer(b)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
		StaticKeys: append([]crypto.PublicKey(nil), iss.PublicKeys()...)})
	if err != nil {
		b.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(outbox.Close)
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		b.Fatal(err)
	}
	policies.Start()
	b.Cleanup(policies.Close)
	changes := postgres.NewAccessChanges(db)
	b.Cleanup(changes.Close)
	clock, ids, auditLog := system.Clock{}, system.UUIDs{}, postgres.NewAuditLog(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: ids, Changes: changes})
	if err != nil {
		b.Fatal(err)
	}
	inv, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db),
		Nodes: postgres.NewNodeStore(db), Allocations: postgres.NewAllocationStore(db),
		Bootstrap: postgres.NewBootstrapTokenStore(db), Certs: postgres.NewNodeCertificateStore(db), Prober: nopProber{},
		Audit: auditLog, Clock: clock, IDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	allocs, err := allocationsvc.New(allocationsvc.Deps{Tx: db, Allocations: postgres.NewAllocationStore(db),
		SKUs: postgres.NewSKUStore(db), Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db),
		Ledger: postgres.NewLedgerStore(db), Policies: policies, Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
		Deps{Identity: idsvc, Verifier: verifier, IdP: &stubIdP{iss: iss}, Tokens: inproc.NewTokenStore(clock),
			RateLimiter: inproc.NewRateLimiter(clock), Policies: policies, Audit: auditLog,
			Idempotency: postgres.NewIdempotencyStore(db, clock), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Inventory: inv, Allocations: allocs, AccessChanges: changes})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.handler)
	b.Cleanup(ts.Close)
	st := &hotPathStack{ts: ts, db: db, dbURL: dbURL, policies: policies, iss: iss}
	st.tok = iss.Mint(b, tokens.Subject("bench-hot"), tokens.Email("bench-hot@example.com"), tokens.Name("Bench"),
		tokens.Expiry(time.Now().Add(2*time.Hour)))
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+st.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st.project = jsonField(body, `"is_default":true`, `"id":"`)
	st.tenant = jsonField(body, `"tenant":{`, `"id":"`)
	if st.project == "" || st.tenant == "" {
		b.Fatalf("sign in: %s", body)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT user_id::text FROM tenant_memberships WHERE tenant_id = $1`, st.tenant).Scan(&st.user); err != nil {
		b.Fatal(err)
	}
	// Rate limits out of the way (the limiter still runs on every request).
	for _, k := range []string{"ratelimit.default_per_minute", "ratelimit.mutate_per_minute"} {
		if err := policies.Set(ctx, "", k, "1000000", st.user); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// nopProber answers that every node is reachable (the benchmarks never probe).
type nopProber struct{}

func (nopProber) Probe(context.Context, string, int) (ports.ProbeResult, error) {
	return ports.ProbeResult{}, nil
}

// seedAllocations gives the bench project n allocations (released, so they
// hold no node), on n nodes of one SKU.
func (st *hotPathStack) seedAllocations(b *testing.B, n int) {
	b.Helper()
	_, err := st.db.Pool.Exec(context.Background(), `
		WITH nd AS (
			INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port, last_heartbeat_at)
			SELECT gen_random_uuid(), 'list-' || i, 'h100-80g-x1', 'active', '10.0.0.1', 22, now()
			FROM generate_series(1, $4::int) i
			RETURNING id)
		INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, node_id, state, price_minor, currency,
			ssh_user, gpu_count, created_at, updated_at, active_at, release_requested_at, released_at)
		SELECT gen_random_uuid(), $1, $2, $3, 'h100-80g-x1', nd.id, 'released', 299, 'usd', 'u', 1,
			now() - interval '1 hour', now(), now() - interval '50 minutes', now() - interval '10 minutes', now()
		FROM nd`, st.tenant, st.project, st.user, n)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.db.Pool.Exec(context.Background(), `ANALYZE allocations`); err != nil {
		b.Fatal(err)
	}
}

// listSQL is the statement AllocationStore.List runs for GET /allocations
// of a project (no state filter, no cursor, the default page of 50).
const listSQL = `SELECT id, tenant_id, project_id, user_id, sku_id, COALESCE(node_id::text, ''), state, price_minor,
	currency, failure_code, created_at, updated_at, active_at, release_requested_at, released_at,
	COALESCE(max_total_cost_minor, 0), COALESCE(api_key_id::text, ''), COALESCE(release_reason, '') FROM allocations WHERE tenant_id = $1 AND project_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3`

// httpLoad is a load generator in the manner of wrk: clients keep-alive
// connections, each sending one request and reading its whole response
// before the next, for d; it returns requests/s. It writes the request's
// bytes as they are and parses only the status line, Content-Length or
// chunked framing, so it costs the shared CPU about what pgbench's C
// client costs Postgres, not what net/http's client would. req is called
// once per connection; where its bytes hold loadUnique (in an
// X-Idempotency-Key, say), each request sends a value there that no other
// request of the process sent.
func httpLoad(b *testing.B, addr string, clients int, d time.Duration, req func() *http.Request, want int) float64 {
	b.Helper()
	conns := make([]*loadConn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var raw strings.Builder
		r := req()
		_ = r.Write(&raw) // HTTP/1.1, Host and headers as a client sends them
		conns[i] = &loadConn{c: c, r: bufio.NewReaderSize(c, 64<<10), req: []byte(raw.String())}
		conns[i].uniqueAt = strings.Index(raw.String(), loadUnique)
		if err := conns[i].roundTrip(want); err != nil { // warm: not timed
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start, cpu0 := time.Now(), processCPU()
	defer func() {
		lastCPUPerRequest = (processCPU() - cpu0) / time.Duration(max(n.Load(), 1))
	}()
	for _, c := range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := c.roundTrip(want); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// lastCPUPerRequest is the CPU time this process (the host and the load
// generator together) spent per request in the last httpLoad.
var lastCPUPerRequest time.Duration

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type loadConn struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
	// uniqueAt is where loadUnique sits in req (-1: nowhere).
	uniqueAt int
}

// loadUnique marks the bytes of a load request that httpLoad makes unique
// per request: 16 hex digits of loadSeq.
const loadUnique = "@@@@@@@@@@@@@@@@"

var loadSeq atomic.Uint64

// roundTrip sends the request and reads the response to its end.
func (l *loadConn) roundTrip(want int) error {
	if l.uniqueAt >= 0 {
		const hex = "0123456789abcdef"
		n, dst := loadSeq.Add(1), l.req[l.uniqueAt:l.uniqueAt+len(loadUnique)]
		for i := len(dst) - 1; i >= 0; i, n = i-1, n>>4 {
			dst[i] = hex[n&15]
		}
	}
	if _, err := l.c.Write(l.req); err != nil {
		return err
	}
	line, err := l.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || string(line[9:12]) != strconv.Itoa(want) {
		return fmt.Errorf("status %q, want %d", strings.TrimSpace(string(line)), want)
	}
	length, chunked := -1, false
	for {
		h, err := l.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 {
			break
		}
		name, val, _ := strings.Cut(strings.TrimSpace(string(h)), ":")
		switch strings.ToLower(name) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(val))
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(val), "chunked")
		}
	}
	if !chunked {
		_, err := l.r.Discard(max(length, 0))
		return err
	}
	for {
		h, err := l.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(string(h), ";", 2)[0]), 16, 64)
		if err != nil {
			return err
		}
		if _, err := l.r.Discard(int(size) + 2); err != nil {
			return err
		}
		if size == 0 {
			return nil
		}
	}
}

// sqlScript is a baseline transaction as pgbench runs it: its statements
// in order, each with $1.. parameters named by pgbench variables, constant
// variables (text, as pgbench passes them), and variables drawn at random
// for each run of the script.
type sqlScript struct {
	steps  []sqlStep
	vars   map[string]string
	random []string // each a random positive integer per run (pgbench \set random)
}

// sqlStep is one statement of a script. params name the variables its $1..
// take; gset sets variables named by its columns from its one row (pgbench
// \gset), for later steps' params. Consecutive steps of the same pipeline
// (> 0) are sent together and their results read after (pgbench
// \startpipeline … \endpipeline, a pgx.Batch), as pgx sends a batch.
type sqlStep struct {
	sql      string
	params   []string
	gset     bool
	pipeline int
}

// pgbench is the script as a pgbench script file.
func (sc sqlScript) pgbench() string {
	var w strings.Builder
	for _, v := range sc.random {
		fmt.Fprintf(&w, "\\set %s random(1, 9223372036854775806)\n", v)
	}
	for i, st := range sc.steps {
		if st.pipeline > 0 && (i == 0 || sc.steps[i-1].pipeline != st.pipeline) {
			w.WriteString("\\startpipeline\n")
		}
		q := st.sql
		for i := len(st.params) - 1; i >= 0; i-- { // $12 before $1
			q = strings.ReplaceAll(q, "$"+strconv.Itoa(i+1), ":"+st.params[i])
		}
		end := ";"
		if st.gset {
			end = " \\gset"
		}
		w.WriteString(strings.TrimSpace(q) + end + "\n")
		if st.pipeline > 0 && (i == len(sc.steps)-1 || sc.steps[i+1].pipeline != st.pipeline) {
			w.WriteString("\\endpipeline\n")
		}
	}
	return w.String()
}

// pgbenchTPS runs a script the way pgbench runs it: clients connections
// (one each), prepared statements, the script back to back; it returns
// transactions (runs of the script) per second over d, after a first
// second not counted: pgbench's connections are new backends, whose first
// runs fill their catalog caches and plan every statement (the host's
// pooled connections did that before the timed window), so the rate is
// the mean of pgbench's per-second progress reports after the first.
func pgbenchTPS(b *testing.B, bin, dbURL string, sc sqlScript, clients int, d time.Duration) float64 {
	b.Helper()
	f := filepath.Join(b.TempDir(), "script.sql")
	if err := os.WriteFile(f, []byte(sc.pgbench()), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2", "-P", "1",
		"-T", strconv.Itoa(1 + int(d/time.Second)), "-f", f}
	for k, v := range sc.vars {
		args = append(args, "-D", k+"="+v)
	}
	args = append(args, dbURL)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`number of failed transactions: ([0-9]+)`).FindSubmatch(out); m != nil && string(m[1]) != "0" {
		b.Fatalf("pgbench: failed transactions\n%s", out)
	}
	var sum float64
	n := 0
	for _, m := range regexp.MustCompile(`progress: ([0-9.]+) s, ([0-9.]+) tps`).FindAllSubmatch(out, -1) {
		at, _ := strconv.ParseFloat(string(m[1]), 64)
		tps, _ := strconv.ParseFloat(string(m[2]), 64)
		if at > 1.01 {
			sum += tps
			n++
		}
	}
	if n == 0 {
		b.Fatalf("pgbench output: %s", out)
	}
	return sum / float64(n)
}

// pgxLoopTPS is pgbench's loop written over pgx, for machines without
// pgbench: clients connections of their own, each statement prepared and
// the script run once per connection before the timed window, then the
// script back to back for d with every row read (not decoded, as pgbench
// reads them; a gset step's columns as text).
func pgxLoopTPS(b *testing.B, dbURL string, sc sqlScript, clients int, d time.Duration) float64 {
	b.Helper()
	ctx := context.Background()
	// run runs the script once on c with vars.
	run := func(c *pgx.Conn, vars map[string]string) error {
		for _, v := range sc.random {
			vars[v] = strconv.FormatInt(rand.Int64N(math.MaxInt64-1)+1, 10)
		}
		for j := 0; j < len(sc.steps); {
			k := j + 1 // steps j..k-1 go together
			for k < len(sc.steps) && sc.steps[j].pipeline > 0 && sc.steps[k].pipeline == sc.steps[j].pipeline {
				k++
			}
			if err := runSteps(ctx, c, sc.steps, j, k, vars); err != nil {
				return fmt.Errorf("%s: %w", telemetry.SQLSpanName(sc.steps[j].sql), err)
			}
			j = k
		}
		return nil
	}
	conns := make([]*pgx.Conn, clients)
	vars := make([]map[string]string, clients)
	for i := range conns {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		for j, st := range sc.steps {
			if _, err := c.Prepare(ctx, "s"+strconv.Itoa(j), st.sql); err != nil {
				b.Fatal(err)
			}
		}
		conns[i], vars[i] = c, maps.Clone(sc.vars)
		if vars[i] == nil {
			vars[i] = map[string]string{}
		}
		if err := run(c, vars[i]); err != nil { // warm: not timed
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start, cpu0 := time.Now(), processCPU()
	defer func() {
		lastCPUPerRequest = (processCPU() - cpu0) / time.Duration(max(n.Load(), 1))
	}()
	for i, c := range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := run(c, vars[i]); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// runSteps runs the prepared steps from..to-1 (one pipeline, or one
// step), reading their rows (as text, setting vars by column name, where a
// step has gset).
func runSteps(ctx context.Context, c *pgx.Conn, steps []sqlStep, from, to int, vars map[string]string) error {
	args := func(st sqlStep) []any {
		a := make([]any, len(st.params))
		for i, p := range st.params {
			a[i] = vars[p] // text, as pgbench sends it
		}
		return a
	}
	if to-from == 1 {
		rows, err := c.Query(ctx, "s"+strconv.Itoa(from), args(steps[from])...)
		if err != nil {
			return err
		}
		return readRows(rows, steps[from].gset, vars)
	}
	batch := &pgx.Batch{}
	for j := from; j < to; j++ {
		batch.Queue("s"+strconv.Itoa(j), args(steps[j])...)
	}
	br := c.SendBatch(ctx, batch)
	for j := from; j < to; j++ {
		rows, err := br.Query()
		if err == nil {
			err = readRows(rows, false, vars)
		}
		if err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// readRows reads rows to their end, raw, or with gset its one row's
// columns into vars.
func readRows(rows pgx.Rows, gset bool, vars map[string]string) error {
	got := 0
	for rows.Next() {
		got++
		if !gset {
			_ = rows.RawValues()
			continue
		}
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return err
		}
		for i, f := range rows.FieldDescriptions() {
			vars[f.Name] = fmt.Sprint(vals[i])
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if gset && got != 1 {
		return fmt.Errorf("%d rows, want 1", got)
	}
	return nil
}

// statementRunner measures a baseline: pgbench when the machine has it,
// else the same loop over pgx (named in the output).
type statementRunner struct {
	name string
	run  func(clients int, d time.Duration) float64
}

func newScriptRunner(b *testing.B, dbURL string, sc sqlScript) statementRunner {
	bin, err := exec.LookPath("pgbench")
	if err != nil || os.Getenv("GPUAAS_BENCH_NO_PGBENCH") != "" {
		return statementRunner{name: "a pgx loop (pgbench not found)", run: func(clients int, d time.Duration) float64 {
			return pgxLoopTPS(b, dbURL, sc, clients, d)
		}}
	}
	return statementRunner{name: "pgbench", run: func(clients int, d time.Duration) float64 {
		return pgbenchTPS(b, bin, dbURL, sc, clients, d)
	}}
}

// oneStatement is a script of one statement whose $1.. take args (as
// text) through variables named vars.
func oneStatement(sql string, vars []string, args ...any) sqlScript {
	sc := sqlScript{steps: []sqlStep{{sql: sql, params: vars}}, vars: map[string]string{}}
	for i, v := range vars {
		sc.vars[v] = fmt.Sprint(args[i])
	}
	return sc
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkAuthenticatedList is issue 15's read ratio: authenticated
// GET /api/v1/allocations (a project's page of 20) through the real HTTP
// host, requests/s with 16 keep-alive clients, ÷ the SELECT that request
// runs, executed the way pgbench runs it with the same 16 connections
// (pgbench -M prepared when installed, else the same loop over pgx).
// Five interleaved samples of each (GPUAAS_BENCH_SECONDS each, default 2);
// min and median printed, the medians compared. Goal ≥ 0.5. The load
// generator runs in this process and takes CPU from the host, as pgbench's
// client takes from Postgres; the process collects garbage as `gpuaas serve
// api` does (TuneGC).
func BenchmarkAuthenticatedList(b *testing.B) {
	defer debug.SetGCPercent(TuneGC(os.Getenv)) // as `gpuaas serve api` runs
	st := newHotPathStack(b, nil)
	st.seedAllocations(b, 20)
	const clients = 16
	d := time.Duration(benchSeconds()) * time.Second
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, st.ts.URL+"/api/v1/allocations", nil)
		r.Header.Set("Authorization", "Bearer "+st.tok)
		r.Header.Set("X-Project-ID", st.project)
		return r
	}
	// The page must be what the SELECT returns.
	resp, err := http.DefaultClient.Do(req())
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Count(string(body), `"sku_id"`) != 20 {
		b.Fatalf("GET /allocations: %d %s", resp.StatusCode, body)
	}
	list := oneStatement(listSQL, []string{"tenant", "project", "lim"}, st.tenant, st.project, 51)
	base := newScriptRunner(b, st.dbURL, list)
	var api, sql, viaPgx, cpu []float64
	for range 5 {
		api = append(api, httpLoad(b, st.ts.Listener.Addr().String(), clients, d, req, http.StatusOK))
		cpu = append(cpu, float64(lastCPUPerRequest.Microseconds()))
		sql = append(sql, base.run(clients, d))
		// For reference: the same loop in Go over pgx, rows read but not
		// decoded (what a Go program can at best do with the SELECT).
		viaPgx = append(viaPgx, pgxLoopTPS(b, st.dbURL, list, clients, d))
	}
	fmt.Printf("API process CPU per request (host and load generator): median %.0f µs\n", medianOf(cpu))
	fmt.Printf("for reference, the SELECT in a Go loop over pgx: min %.0f, median %.0f req/s (API ÷ it %.2f)\n",
		slices.Min(viaPgx), medianOf(viaPgx), medianOf(api)/medianOf(viaPgx))
	report(b, "authenticated GET /api/v1/allocations", "the same SELECT through "+base.name, api, sql, 0.5, "req/s")
}

// report prints min and median of both series and the ratio of medians
// against goal (≥ goal).
func report(b *testing.B, what, baseline string, got, base []float64, goal float64, unit string) {
	b.Helper()
	ratio := medianOf(got) / medianOf(base)
	verdict := "meets"
	if ratio < goal {
		verdict = "MISSES"
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "%s: min %.0f, median %.0f %s (samples %s)\n", what, slices.Min(got), medianOf(got), unit, fmtSamples(got))
	fmt.Fprintf(w, "%s: min %.0f, median %.0f %s (samples %s)\n", baseline, slices.Min(base), medianOf(base), unit, fmtSamples(base))
	fmt.Fprintf(w, "ratio of medians %.2f (goal ≥ %.1f: %s)\n", ratio, goal, verdict)
	_ = w.Flush()
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(medianOf(got), "api-"+unit)
	b.ReportMetric(medianOf(base), "sql-"+unit)
}

func fmtSamples(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, " ")
}

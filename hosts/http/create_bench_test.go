package httphost

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/hosts/internal/telemetry"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// BenchmarkAllocationCreates is issue 15's create ratio: POST
// /api/v1/allocations through the real HTTP host, creates/s with 8
// keep-alive clients (8 users of one tenant, so every create takes the
// same tenant row lock), each request with its own X-Idempotency-Key, ÷
// the create's SQL transaction run by pgbench -M prepared with the same 8
// connections (a pgx loop where pgbench is missing). Five interleaved
// samples of each (GPUAAS_BENCH_SECONDS each, default 2); min and median
// printed, the medians compared. Goal ≥ 0.7.
//
// The baseline cannot drift from the code: a pgx tracer on the host's pool
// records the statements of one create (by its X-Correlation-ID) and the
// script is those statements, text, order and pipelines (pgx batches) as
// sent, every argument the text pgx sent, except what must differ per
// transaction — the ids the request minted become gen_random_uuid() in
// place of their parameter (pgbench cannot make a UUID), the idempotency
// key a random number, a NULL argument NULL in place (and, were the node
// picked by one statement and named by the next, the pick's result,
// \gset). Recorded on this tree, one round trip a line, the create runs
//
//	SELECT set_config('synchronous_commit', 'off', true)
//	  + INSERT idempotency_keys … ON CONFLICT   (the key's claim: one implicit transaction)
//	BEGIN
//	UPDATE idempotency_keys SET status = 'committed'   (the key marked with the request's writes)
//	SELECT skus                                 (GetSKU)
//	SELECT ledger_entries                       (Balance)
//	SELECT ssh_keys                             (ListSSHKeys)
//	SAVEPOINT + WITH pick AS (SELECT nodes … FOR UPDATE SKIP LOCKED)
//	  INSERT allocations … FROM pick + RELEASE SAVEPOINT   (CreatePlaced)
//	INSERT audit_log
//	INSERT platform_outbox_events
//	SELECT tenants … FOR NO KEY UPDATE
//	  + SELECT count(*) … allocations           (CountLive: the tenant lock, held to the end of COMMIT)
//	COMMIT
//	SELECT set_config(…) + UPDATE idempotency_keys   (the key's completion)
//
// (the policy values come from the policy cache) and the baseline is
// BEGIN … COMMIT, run as pgx ran it. For reference the whole request's SQL
// (with the key's claim and completion) is measured too. Between samples,
// outside the timed window, the created allocations are deleted and the
// fleet freed, so every sample starts from the same state.
func BenchmarkAllocationCreates(b *testing.B) {
	defer debug.SetGCPercent(TuneGC(os.Getenv)) // as `gpuaas serve api` runs
	rec := &sqlRecorder{}
	st := newHotPathStack(b, rec)
	const clients = 8
	secs := benchSeconds()
	d := time.Duration(secs) * time.Second
	ctx := context.Background()

	// The fleet: more free nodes than any sample takes.
	fleet := 4000 * (secs + 1)
	const sku = "h100-80g-x1"
	if _, err := st.db.Pool.Exec(ctx, `
		INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port, last_heartbeat_at)
		SELECT gen_random_uuid(), 'create-' || i, $1, 'active', '10.0.0.1', 22, now()
		FROM generate_series(1, $2::int) i`, sku, fleet); err != nil {
		b.Fatal(err)
	}
	users := st.tenantUsers(b, clients)
	for k, v := range map[policy.Key]string{policy.AllocationMaxPerUser: "1000", policy.AllocationMaxPerProject: "10000",
		policy.AllocationMaxPerTenant: "100000"} {
		if err := st.policies.Set(ctx, st.tenant, k.Name, v, st.user); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := postgres.NewLedgerStore(st.db).Post(ctx, ledger.Entry{TenantID: st.tenant, Type: ledger.Credit,
		AmountMinor: 1_000_000_000, Currency: "usd", IdempotencyKey: "bench-credit"}); err != nil {
		b.Fatal(err)
	}
	next := 0
	create := func(key string) *http.Request {
		tok := users[next%len(users)]
		next++
		r, _ := http.NewRequest(http.MethodPost, st.ts.URL+"/api/v1/allocations", strings.NewReader(`{"sku_id":"`+sku+`"}`))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Project-ID", st.project)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Idempotency-Key", key)
		return r
	}
	// One create per user warms the caches; the next is recorded.
	for range users {
		if status, body := do(b, create("bench-warm-"+strconv.Itoa(next))); status != http.StatusCreated {
			b.Fatalf("create: %d %s", status, body)
		}
	}
	const correlation, idemKey = "bench-create-recorded", "bench-create-recorded-key"
	r := create(idemKey)
	r.Header.Set("X-Correlation-ID", correlation)
	want := correlation
	rec.want.Store(&want)
	status, body := do(b, r)
	rec.want.Store(nil)
	var made struct {
		NodeID string `json:"node_id"`
	}
	if err := json.Unmarshal(body, &made); status != http.StatusCreated || err != nil || made.NodeID == "" {
		b.Fatalf("create: %d %s", status, body)
	}
	var userIDs []string
	rows, err := st.db.Pool.Query(ctx, `SELECT user_id::text FROM tenant_memberships WHERE tenant_id = $1`, st.tenant)
	if err != nil {
		b.Fatal(err)
	}
	if userIDs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		b.Fatal(err)
	}
	known := append([]string{st.tenant, st.project, made.NodeID}, userIDs...)
	whole := createScript(b, st.dbURL, rec.recorded(), known, made.NodeID, idemKey)
	begin := slices.IndexFunc(whole.steps, func(s sqlStep) bool { return strings.EqualFold(s.sql, "begin") })
	commit := slices.IndexFunc(whole.steps, func(s sqlStep) bool { return strings.EqualFold(s.sql, "commit") })
	if begin < 0 || commit < begin {
		b.Fatalf("the create ran no transaction: %v", whole.steps)
	}
	tx := whole
	tx.steps = whole.steps[begin : commit+1]
	fmt.Printf("the create's SQL (recorded): %s\n", whole.summary())

	// reset deletes what a sample created, frees the fleet and clears the
	// tables every create appends to, outside the timed window.
	reset := func() {
		tag, err := st.db.Pool.Exec(ctx, `DELETE FROM allocations WHERE tenant_id = $1`, st.tenant)
		if err != nil {
			b.Fatal(err)
		}
		if tag.RowsAffected() > int64(fleet)*9/10 {
			b.Fatalf("a sample took %d of %d nodes: the fleet is too small for it", tag.RowsAffected(), fleet)
		}
		for _, q := range []string{`UPDATE nodes SET live_allocation_id = NULL WHERE live_allocation_id IS NOT NULL`,
			`TRUNCATE idempotency_keys, platform_outbox_events, audit_log`, `VACUUM ANALYZE allocations, nodes, tenants`} {
			if _, err := st.db.Pool.Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	}
	reset()
	txBase, wholeBase := newScriptRunner(b, st.dbURL, tx), newScriptRunner(b, st.dbURL, whole)
	load := func() *http.Request { return create("bench-" + loadUnique) }
	// A second of creates first, not counted, as pgbench's first second is
	// not: the host's pool has more connections than the warm-up used, and
	// a connection's first use of each statement prepares it in a cold
	// backend.
	httpLoad(b, st.ts.Listener.Addr().String(), clients, time.Second, load, http.StatusCreated)
	reset()
	var api, sql, all, cpu []float64
	for range 5 {
		api = append(api, httpLoad(b, st.ts.Listener.Addr().String(), clients, d, load, http.StatusCreated))
		cpu = append(cpu, float64(lastCPUPerRequest.Microseconds()))
		reset()
		sql = append(sql, txBase.run(clients, d))
		reset()
		all = append(all, wholeBase.run(clients, d))
		reset()
	}
	fmt.Printf("API process CPU per create (host and load generator): median %.0f µs\n", medianOf(cpu))
	fmt.Printf("for reference, the request's whole SQL (the key's claim and completion too) through %s: min %.0f, median %.0f creates/s (API ÷ it %.2f)\n",
		wholeBase.name, slices.Min(all), medianOf(all), medianOf(api)/medianOf(all))
	report(b, "POST /api/v1/allocations", "the create's transaction through "+txBase.name, api, sql, 0.7, "creates/s")
}

// benchSeconds is how long each sample of a hot-path benchmark runs
// (GPUAAS_BENCH_SECONDS, default 2).
func benchSeconds() int {
	if s, err := strconv.Atoi(os.Getenv("GPUAAS_BENCH_SECONDS")); err == nil && s > 0 {
		return s
	}
	return 2
}

// do sends one request with net/http and returns its status and body.
func do(b *testing.B, r *http.Request) (int, []byte) {
	b.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// tenantUsers returns n bearer tokens of users of the bench tenant, each
// with an SSH key: the stack's user and n-1 invited members (invited users
// join the tenant's default project).
func (st *hotPathStack) tenantUsers(b *testing.B, n int) []string {
	b.Helper()
	toks := []string{st.tok}
	for i := 1; i < n; i++ {
		email := fmt.Sprintf("bench-member-%d@example.com", i)
		if _, err := st.db.Pool.Exec(context.Background(),
			`INSERT INTO tenant_invitations (tenant_id, email, role) VALUES ($1, $2, 'member')`, st.tenant, email); err != nil {
			b.Fatal(err)
		}
		toks = append(toks, st.iss.Mint(b, tokens.Subject(fmt.Sprintf("bench-member-%d", i)), tokens.Email(email),
			tokens.Name("Member"), tokens.Expiry(time.Now().Add(2*time.Hour))))
	}
	for _, tok := range toks {
		r, _ := http.NewRequest(http.MethodGet, st.ts.URL+"/api/v1/users/me", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if status, body := do(b, r); status != http.StatusOK || jsonField(body, `"tenant":{`, `"id":"`) != st.tenant {
			b.Fatalf("users/me: %d %s", status, body)
		}
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		pk, _ := ssh.NewPublicKey(pub)
		key, _ := json.Marshal(map[string]string{"name": "laptop", "public_key": string(ssh.MarshalAuthorizedKey(pk))})
		r, _ = http.NewRequest(http.MethodPost, st.ts.URL+"/api/v1/ssh-keys", strings.NewReader(string(key)))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		if status, body := do(b, r); status != http.StatusCreated {
			b.Fatalf("add ssh key: %d %s", status, body)
		}
	}
	return toks
}

// sqlRecorder is a pgx tracer that keeps the statements, with their
// arguments, of the request whose X-Correlation-ID is want (none while
// want is nil: then it costs an atomic load per statement or batch).
type sqlRecorder struct {
	want    atomic.Pointer[string]
	mu      sync.Mutex
	got     []recordedSQL
	batches int
}

// recordedSQL is one statement sent; batch > 0 numbers the pgx.Batch it
// was sent in.
type recordedSQL struct {
	sql   string
	args  []any
	batch int
}

var (
	_ pgx.QueryTracer = (*sqlRecorder)(nil)
	_ pgx.BatchTracer = (*sqlRecorder)(nil)
)

func (r *sqlRecorder) recording(ctx context.Context) bool {
	w := r.want.Load()
	return w != nil && callctx.CorrelationID(ctx) == *w
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if r.recording(ctx) {
		r.mu.Lock()
		r.got = append(r.got, recordedSQL{sql: data.SQL, args: slices.Clone(data.Args)})
		r.mu.Unlock()
	}
	return ctx
}

func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *sqlRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if r.recording(ctx) {
		r.mu.Lock()
		r.batches++
		for _, q := range data.Batch.QueuedQueries {
			r.got = append(r.got, recordedSQL{sql: q.SQL, args: slices.Clone(q.Arguments), batch: r.batches})
		}
		r.mu.Unlock()
	}
	return ctx
}

func (r *sqlRecorder) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (r *sqlRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *sqlRecorder) recorded() []recordedSQL {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

var (
	paramRE = regexp.MustCompile(`\$[0-9]+`)
	nodesRE = regexp.MustCompile(`(?i)\bFROM\s+nodes\b`)
)

// createScript is the script of what one create sent (rec): each statement
// as sent, each argument a variable holding the text pgx sent for it,
// except what a run must not repeat — a UUID the request minted (not in
// known) is gen_random_uuid() in its parameter's place, idemKey a random
// number per run, nodeID (where the node is picked by one statement and
// named by the next) the result of the pick before it (the statement
// reading nodes, \gset), a NULL is NULL in place. Statements pgx sent in
// one batch stay in one pipeline.
func createScript(b *testing.B, dbURL string, rec []recordedSQL, known []string, nodeID, idemKey string) sqlScript {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[strings.ToLower(k)] = true
	}
	sc := sqlScript{vars: map[string]string{}, random: []string{"idem"}}
	nodeVar := ""
	for i, r := range rec {
		desc, err := conn.Prepare(ctx, "", r.sql)
		if err != nil {
			b.Fatalf("prepare %q: %v", r.sql, err)
		}
		if len(desc.ParamOIDs) != len(r.args) {
			b.Fatalf("%q: %d parameters, %d arguments", r.sql, len(desc.ParamOIDs), len(r.args))
		}
		repl := make([]string, len(r.args)) // what $n becomes
		var params []string
		for j, a := range r.args {
			oid := desc.ParamOIDs[j]
			buf, err := conn.TypeMap().Encode(oid, pgtype.TextFormatCode, a, nil)
			if err != nil {
				b.Fatalf("%q $%d: %v", r.sql, j+1, err)
			}
			text := string(buf)
			param := func(name string) string {
				params = append(params, name)
				return "$" + strconv.Itoa(len(params))
			}
			fresh := func(cast string) string {
				if n := len(regexp.MustCompile(`\$`+strconv.Itoa(j+1)+`\b`).FindAllString(r.sql, -1)); n != 1 {
					b.Fatalf("%q: the minted id $%d is used %d times", r.sql, j+1, n)
				}
				return "gen_random_uuid()" + cast
			}
			switch {
			case buf == nil:
				repl[j] = "NULL"
			case text == nodeID:
				if nodeVar == "" {
					b.Fatalf("%q: the node id is used before any statement reads nodes", r.sql)
				}
				repl[j] = param(nodeVar)
			case text == idemKey:
				repl[j] = param("idem")
			case uuidRE.MatchString(text) && !isKnown[text] && oid == pgtype.UUIDOID:
				repl[j] = fresh("")
			case uuidRE.MatchString(text) && !isKnown[text] && oid == pgtype.TextOID:
				repl[j] = fresh("::text")
			case strings.HasPrefix(text, "{") && uuidRE.MatchString(strings.Trim(text, "{}")) &&
				!isKnown[strings.Trim(text, "{}")] && oid == pgtype.TextArrayOID:
				repl[j] = "ARRAY[" + fresh("::text") + "]"
			default:
				v := fmt.Sprintf("v%d_%d", i, j+1)
				sc.vars[v] = text
				repl[j] = param(v)
			}
		}
		sql := paramRE.ReplaceAllStringFunc(r.sql, func(p string) string {
			n, _ := strconv.Atoi(p[1:])
			return repl[n-1]
		})
		sc.steps = append(sc.steps, sqlStep{sql: sql, params: params, pipeline: r.batch})
		// A pick the node id may come from: a statement reading nodes that
		// returns one text column (pgbench cannot \gset in a pipeline).
		if nodesRE.MatchString(r.sql) && len(desc.Fields) == 1 && desc.Fields[0].DataTypeOID == pgtype.TextOID && r.batch == 0 {
			sc.steps[len(sc.steps)-1].gset = true
			nodeVar = desc.Fields[0].Name
		}
	}
	return sc
}

// summary names the script's statements by operation and table, a
// pipeline's in brackets.
func (sc sqlScript) summary() string {
	var w strings.Builder
	for i, st := range sc.steps {
		first := st.pipeline > 0 && (i == 0 || sc.steps[i-1].pipeline != st.pipeline)
		last := st.pipeline > 0 && (i == len(sc.steps)-1 || sc.steps[i+1].pipeline != st.pipeline)
		switch {
		case i == 0:
		case st.pipeline > 0 && !first:
			w.WriteString(" + ")
		default:
			w.WriteString(" · ")
		}
		if first {
			w.WriteString("[")
		}
		w.WriteString(telemetry.SQLSpanName(st.sql))
		if last {
			w.WriteString("]")
		}
	}
	return w.String()
}

package httphost

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// storageBenchStack is the HTTP host with identity and project storage
// over real Postgres and versitygw, as `gpuaas serve api` runs them.
type storageBenchStack struct {
	ts      *httptest.Server
	db      *postgres.DB
	gw      *services.S3Gateway
	svc     *storagesvc.Service
	tok     string
	project string
	tenant  string
}

func newStorageBenchStack(b *testing.B) *storageBenchStack {
	b.Helper()
	db := services.Postgres(b)
	gw := services.S3(b)
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
	policies.Start() // cached, as the running host has it
	b.Cleanup(policies.Close)
	// The access change feed, as postgres.Module gives the host: verified
	// tokens' principals and project access are cached at its generation.
	changes := postgres.NewAccessChanges(db)
	b.Cleanup(changes.Close)
	// The collector's target `gpuaas serve api` runs with (TuneGC); the
	// baselines run in the same process, under the same setting.
	prevGC := TuneGC(os.Getenv)
	b.Cleanup(func() { debug.SetGCPercent(prevGC) })
	clock, ids, auditLog := system.Clock{}, system.UUIDs{}, postgres.NewAuditLog(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: ids, Changes: changes})
	if err != nil {
		b.Fatal(err)
	}
	index := postgres.NewStorageStore(db)
	stor, err := storagesvc.New(storagesvc.Config{}, storagesvc.Deps{Tx: db, Index: index, Reservations: index,
		Objects: gw.Store, Presigner: gw.Store, Multipart: gw.Store, Projects: postgres.NewProjectStore(db), Policies: policies,
		Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids, Syncs: index})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
		Deps{Identity: idsvc, Verifier: verifier, IdP: &stubIdP{iss: iss}, Tokens: inproc.NewTokenStore(clock),
			RateLimiter: allowAll{}, Policies: policies, Audit: auditLog, Idempotency: postgres.NewIdempotencyStore(db, clock),
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Storage: stor, AccessChanges: changes})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.handler)
	b.Cleanup(ts.Close)
	st := &storageBenchStack{ts: ts, db: db, gw: gw, svc: stor}
	st.tok = iss.Mint(b, tokens.Subject("bench-storage"), tokens.Email("bench-storage@example.com"), tokens.Name("Bench"))
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
	return st
}

// jsonField finds the string value after key, after anchor (good enough
// for the one answer it reads).
func jsonField(body []byte, anchor, key string) string {
	s := string(body)
	if anchor == `"is_default":true` {
		// the project object that contains the anchor
		i := strings.Index(s, anchor)
		if i < 0 {
			return ""
		}
		j := strings.LastIndex(s[:i], key)
		if j < 0 {
			return ""
		}
		s = s[j+len(key):]
	} else {
		i := strings.Index(s, anchor)
		if i < 0 {
			return ""
		}
		s = s[i:]
		j := strings.Index(s, key)
		if j < 0 {
			return ""
		}
		s = s[j+len(key):]
	}
	return s[:strings.IndexByte(s, '"')]
}

func (st *storageBenchStack) request(method, route string, q url.Values, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, st.ts.URL+"/api/v1/storage/"+route+"?"+q.Encode(), body)
	req.Header.Set("Authorization", "Bearer "+st.tok)
	req.Header.Set("X-Project-ID", st.project)
	return req
}

// benchStream yields size pseudo-random bytes without holding them.
type benchStream struct {
	left int64
	rng  *rand.ChaCha8
}

func newBenchStream(size int64) *benchStream {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(size))
	return &benchStream{left: size, rng: rand.NewChaCha8(seed)}
}

func (s *benchStream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.left)]
	n, _ := s.rng.Read(p)
	s.left -= int64(n)
	return n, nil
}

// procStatus reads a /proc/self/status field in bytes (VmRSS, VmHWM).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// BenchmarkStorageTransfer prints, in one run, the throughput of a 1 GiB
// upload and download through the API and directly with the SDK to the
// same versitygw (best of three alternating rounds each), their ratios
// (goal ≥ 0.8), and the process's peak RSS growth during the first API
// upload (goal ≤ 64 MiB). The process also runs the
// client, which streams from a generator, so the API's own share is at most
// what is printed. GPUAAS_BENCH_STORAGE_BYTES changes the size.
func BenchmarkStorageTransfer(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("GPUAAS_BENCH_STORAGE_BYTES"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	st := newStorageBenchStack(b)
	ctx := context.Background()
	direct := st.gw.Store
	mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }

	upDirect := func() time.Duration {
		t0 := time.Now()
		if _, err := direct.Put(ctx, st.tenant+"/direct/up.bin", newBenchStream(size), size, "application/octet-stream"); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	upAPI := func() time.Duration {
		req := st.request(http.MethodPut, "upload", url.Values{"path": {"/bench/up.bin"}}, newBenchStream(size))
		req.ContentLength = size
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			b.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
		return time.Since(t0)
	}
	downDirect := func() time.Duration {
		t0 := time.Now()
		rc, err := direct.Get(ctx, st.tenant+"/direct/up.bin", ports.GetOptions{Length: -1})
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != size {
			b.Fatalf("direct download %d %v", n, err)
		}
		return time.Since(t0)
	}
	downAPI := func() time.Duration {
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(st.request(http.MethodGet, "download", url.Values{"path": {"/bench/up.bin"}}, nil))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != http.StatusOK {
			b.Fatalf("API download %d %d %v", resp.StatusCode, n, err)
		}
		return time.Since(t0)
	}

	// The first API upload, with the process's peak RSS growth around it.
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM to the current RSS
	base := procStatus("VmRSS")
	apiUp := upAPI()
	peak := procStatus("VmHWM")
	// Rounds alternate the two paths, so load from elsewhere on the machine
	// falls on both; each path keeps its best round.
	directUp, directDown, apiDown := upDirect(), downDirect(), downAPI()
	for round := 1; round < 3; round++ {
		apiUp, directUp = min(apiUp, upAPI()), min(directUp, upDirect())
		apiDown, directDown = min(apiDown, downAPI()), min(directDown, downDirect())
	}

	growth := float64(peak-base) / (1 << 20)
	b.ReportMetric(mbps(apiUp), "api-up-MB/s")
	b.ReportMetric(mbps(directUp), "sdk-up-MB/s")
	b.ReportMetric(mbps(apiUp)/mbps(directUp), "up-ratio")
	b.ReportMetric(mbps(apiDown), "api-down-MB/s")
	b.ReportMetric(mbps(directDown), "sdk-down-MB/s")
	b.ReportMetric(mbps(apiDown)/mbps(directDown), "down-ratio")
	b.ReportMetric(growth, "upload-peak-RSS-growth-MiB")
	b.Logf("%d bytes: upload API %.0f MB/s vs SDK %.0f MB/s (ratio %.2f, goal ≥ 0.8); download API %.0f MB/s vs SDK %.0f MB/s (ratio %.2f, goal ≥ 0.8); peak RSS growth during the API upload %.1f MiB (goal ≤ 64)",
		size, mbps(apiUp), mbps(directUp), mbps(apiUp)/mbps(directUp), mbps(apiDown), mbps(directDown),
		mbps(apiDown)/mbps(directDown), growth)
}

// BenchmarkStorageListPage prints the time of one page (1000 entries, from
// the middle) of a 100,000-file folder through the storage use case and
// through the API, and of the same index scan in SQL (rows read into Go
// values), medians of 51 rounds that time each in turn, and their ratios
// (goal ≤ 2). The API's time includes what every authenticated request
// pays before storage work, printed apart (GET /storage/stat: the chain and
// one index lookup). GPUAAS_BENCH_FILES changes the folder's size.
func BenchmarkStorageListPage(b *testing.B) {
	files := 100_000
	if s := os.Getenv("GPUAAS_BENCH_FILES"); s != "" {
		files, _ = strconv.Atoi(s)
	}
	st := newStorageBenchStack(b)
	ctx := context.Background()
	mk := st.request(http.MethodPost, "mkdir", nil, strings.NewReader(`{"path":"/many"}`))
	mk.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(mk); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("mkdir: %v %v", resp, err)
	}
	if _, err := st.db.Pool.Exec(ctx, `INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind, size_bytes,
			etag, content_type, created_at, updated_at)
		SELECT $1, $2, 'many/f' || lpad(i::text, 7, '0'), 'many', 'f' || lpad(i::text, 7, '0'), 'file', i, md5(i::text),
			'application/octet-stream', now(), now()
		FROM generate_series(1, $3::int) i`, st.tenant, st.project, files); err != nil {
		b.Fatal(err)
	}
	// VACUUM as well: autovacuum would otherwise pick the 100,000 new rows
	// up in the middle of the measurement.
	if _, err := st.db.Pool.Exec(ctx, `VACUUM ANALYZE storage_objects`); err != nil {
		b.Fatal(err)
	}
	// A page from the middle of the folder: the keyset cursor after the
	// name at files/2.
	after := fmt.Sprintf("f%07d", files/2)
	cursor := encodeCursorForBench(after)
	const page, warm, rounds = 1000, 3, 51
	// The paths are timed in turn within each round, so load from
	// elsewhere on the machine falls on all of them alike; each keeps the
	// median of its rounds. The first rounds (caches, prepared statements)
	// are not timed.
	type path struct {
		run func()
		ds  []time.Duration
	}
	medians := func(paths ...*path) {
		for i := range warm + rounds {
			for _, p := range paths {
				t0 := time.Now()
				p.run()
				if i >= warm {
					p.ds = append(p.ds, time.Since(t0))
				}
			}
		}
	}
	median := func(p *path) time.Duration {
		sort.Slice(p.ds, func(i, j int) bool { return p.ds[i] < p.ds[j] })
		return p.ds[len(p.ds)/2]
	}
	client := &http.Client{}
	get := func(route string, q url.Values) int64 {
		resp, err := client.Do(st.request(http.MethodGet, route, q, nil))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", route, resp.StatusCode)
		}
		return n
	}
	apiPath := &path{run: func() {
		if n := get("list", url.Values{"path": {"/many"}, "limit": {strconv.Itoa(page)}, "cursor": {cursor}}); n < int64(page)*100 {
			b.Fatalf("list: %d bytes", n)
		}
	}}
	// What every API request pays before any storage work: the same chain
	// (token verification, the user and membership lookups, validation)
	// in front of the cheapest storage route (one primary-key lookup).
	fixedPath := &path{run: func() { get("stat", url.Values{"path": {"/many"}}) }}
	principal := identityPrincipalForBench(b, st)
	usecasePath := &path{run: func() {
		p, err := st.svc.List(ctx, principal, st.project, "/many", cursor, page)
		if err != nil || len(p.Entries) != page {
			b.Fatalf("use case: %d %v", len(p.Entries), err)
		}
	}}
	sqlPath := &path{run: func() {
		rows, err := st.db.Pool.Query(ctx, `SELECT path, kind, size_bytes, etag, content_type, COALESCE(created_by::text, ''),
				created_at, updated_at
			FROM storage_objects WHERE project_id = $1 AND parent = 'many' AND name > $2 AND tenant_id = $3
			ORDER BY name LIMIT $4`, st.project, after, st.tenant, page+1)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var path, kind, etag, ct, by string
			var size int64
			var created, updated time.Time
			if err := rows.Scan(&path, &kind, &size, &etag, &ct, &by, &created, &updated); err != nil {
				b.Fatal(err)
			}
			n++
		}
		rows.Close()
		if n != page+1 {
			b.Fatalf("sql page of %d", n)
		}
	}}
	medians(apiPath, fixedPath, usecasePath, sqlPath)
	api, fixed, usecase, sql := median(apiPath), median(fixedPath), median(usecasePath), median(sqlPath)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(api), "api-ms/page")
	b.ReportMetric(ms(fixed), "api-fixed-ms")
	b.ReportMetric(ms(usecase), "usecase-ms/page")
	b.ReportMetric(ms(sql), "sql-ms/page")
	b.ReportMetric(float64(usecase)/float64(sql), "usecase-ratio")
	b.ReportMetric(float64(api)/float64(sql), "api-ratio")
	b.ReportMetric(float64(api-fixed)/float64(sql), "api-less-fixed-ratio")
	b.Logf("a %d-entry page of a %d-file folder: storagesvc.List %s, the index scan in SQL (rows read) %s, ratio %.2f (goal ≤ 2); "+
		"through the API %s (ratio %.2f), of which %s is what every authenticated request pays before storage work (GET /storage/stat; ratio without it %.2f)",
		page, files, usecase, sql, float64(usecase)/float64(sql), api, float64(api)/float64(sql), fixed, float64(api-fixed)/float64(sql))
}

// encodeCursorForBench is the list cursor after a name (the store's
// opaque form: base64url of the name).
func encodeCursorForBench(name string) string {
	return strings.TrimRight(base64URL(name), "=")
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// identityPrincipalForBench is the bench user as the use case sees it.
func identityPrincipalForBench(b *testing.B, st *storageBenchStack) identity.Principal {
	b.Helper()
	var uid string
	if err := st.db.Pool.QueryRow(context.Background(), `SELECT user_id::text FROM tenant_memberships WHERE tenant_id = $1`,
		st.tenant).Scan(&uid); err != nil {
		b.Fatal(err)
	}
	return identity.Principal{User: identity.User{ID: uid}, TenantID: st.tenant, TenantRole: identity.TenantOwner}
}

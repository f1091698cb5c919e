package telemetry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestSQLTracer, on a real Postgres: statements outside a trace make no
// span; inside one each is a client span of the caller's, named by
// operation and table, with the database system; a refused statement is
// marked failed with its SQLSTATE and nothing of the server's message
// (which quotes the value); finding no row is not a failure; a batch is a
// span with one child per statement.
func TestSQLTracer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec, tp := recorder()
	cfg, err := pgx.ParseConfig(services.FreshDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tracer = NewSQLTracer(tp)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = $1`, "x").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got := rec.Ended(); len(got) != 0 {
		t.Fatalf("%d spans outside a trace", len(got))
	}

	tctx, root := tp.Tracer("test").Start(ctx, "root")
	if err := conn.QueryRow(tctx, `SELECT count(*) FROM pg_class WHERE relname = $1`, "x").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := conn.QueryRow(tctx, `SELECT $1::uuid::text`, "CANARYnotauuid").Scan(&s); err == nil {
		t.Fatal("a bad uuid was taken")
	}
	if err := conn.QueryRow(tctx, `SELECT 1 FROM pg_class WHERE false`).Scan(&n); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no rows: %v", err)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT 1`)
	b.Queue(`UPDATE pg_class SET relname = relname WHERE false`)
	if err := conn.SendBatch(tctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	root.End()

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byName[sp.Name()] = append(byName[sp.Name()], sp)
		var all strings.Builder
		fmt.Fprintf(&all, "%s %v", sp.Name(), sp.Status())
		for _, a := range sp.Attributes() {
			fmt.Fprintf(&all, " %s=%s", a.Key, a.Value.Emit())
		}
		for _, e := range sp.Events() {
			fmt.Fprintf(&all, " %s %v", e.Name, e.Attributes)
		}
		if strings.Contains(all.String(), "CANARY") {
			t.Errorf("a statement's value in a span: %s", all.String())
		}
	}
	rootID := root.SpanContext().SpanID()
	sel := byName["SELECT pg_class"]
	if len(sel) != 2 {
		t.Fatalf("spans %v, want two SELECT pg_class (the count and the empty one)", slices.Sorted(maps.Keys(byName)))
	}
	for _, sp := range sel {
		if sp.Parent().SpanID() != rootID || sp.SpanKind() != trace.SpanKindClient || sp.Status().Code != codes.Unset ||
			attrOf(sp, "db.system.name") != "postgresql" {
			t.Errorf("span %s: parent %v kind %v status %v attrs %v", sp.Name(), sp.Parent().SpanID(), sp.SpanKind(), sp.Status(), sp.Attributes())
		}
	}
	bad := byName["SELECT"]
	if len(bad) != 2 { // the bad uuid, and the batch's SELECT 1
		t.Fatalf("spans %v", slices.Sorted(maps.Keys(byName)))
	}
	var failed, batch sdktrace.ReadOnlySpan
	for _, sp := range bad {
		if sp.Parent().SpanID() == rootID {
			failed = sp
		}
	}
	if failed == nil || failed.Status().Code != codes.Error || failed.Status().Description != "SQLSTATE 22P02" ||
		attrOf(failed, "db.response.status_code") != "22P02" {
		t.Fatalf("the refused statement's span: %+v", failed)
	}
	if bs := byName["batch"]; len(bs) != 1 || bs[0].Parent().SpanID() != rootID || attrOf(bs[0], "db.operation.batch.size") != "2" {
		t.Fatalf("batch spans %v", bs)
	} else {
		batch = bs[0]
	}
	for _, name := range []string{"SELECT", "UPDATE pg_class"} {
		found := false
		for _, sp := range byName[name] {
			found = found || sp.Parent().SpanID() == batch.SpanContext().SpanID()
		}
		if !found {
			t.Errorf("no %q span under the batch: %v", name, slices.Sorted(maps.Keys(byName)))
		}
	}
}

func attrOf(sp sdktrace.ReadOnlySpan, key string) string {
	for _, a := range sp.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

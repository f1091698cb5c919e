package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gpuaas/gpuaas/core/fault"
)

// TestTranslateUnavailable: errors that say the database is out of reach
// or turned the work away, with nothing done, are Unavailable (503, which
// clients retry), not Internal (500); everything else keeps its kind.
func TestTranslateUnavailable(t *testing.T) {
	t.Parallel()
	_, connectErr := pgx.Connect(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if connectErr == nil {
		t.Fatal("connected to port 1")
	}
	cases := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"connect refused", connectErr, fault.KindUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, fault.KindUnavailable},
		{"admin shutdown", fmt.Errorf("list: %w", &pgconn.PgError{Code: "57P01"}), fault.KindUnavailable},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, fault.KindUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, fault.KindUnavailable},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, fault.KindUnavailable},
		// After a statement was sent, a lost connection leaves a write's
		// outcome unknown: not something to tell a client to retry.
		{"connection dropped mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), fault.KindInternal},
		{"unique violation", &pgconn.PgError{Code: "23505"}, fault.KindConflict},
		{"no rows", pgx.ErrNoRows, fault.KindNotFound},
		{"syntax error (a bug)", &pgconn.PgError{Code: "42601"}, fault.KindInternal},
		{"anything else", errors.New("boom"), fault.KindInternal},
	}
	for _, c := range cases {
		err := translate(c.err, "thing")
		if got := fault.KindOf(err); got != c.want {
			t.Errorf("%s: kind %s, want %s", c.name, got, c.want)
		}
		if !errors.Is(err, c.err) && c.err != pgx.ErrNoRows {
			t.Errorf("%s: the cause is lost", c.name)
		}
	}
}

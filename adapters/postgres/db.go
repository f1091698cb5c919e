package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the pool.
type Config struct {
	URL      string
	MaxConns int32 // 0: pgx default
	// Migrate applies pending migrations when the pool opens. Otherwise
	// Connect only verifies that no applied migration changed
	// (VerifyMigrations) and refuses to start if one did.
	Migrate bool
	// SkipMigrationCheck leaves that check out (`gpuaas migrate status`,
	// which reports changed migrations instead of refusing).
	SkipMigrationCheck bool
	// PolicyCacheTTL bounds how long a PolicyStore serves cached values
	// when a change notification was lost. 0: DefaultPolicyCacheTTL.
	PolicyCacheTTL time.Duration
	// Tracer, when set, traces every statement of the pool's connections
	// (hosts pass an OpenTelemetry tracer, doc/observability.md). nil: none,
	// and nothing is spent on it.
	Tracer pgx.QueryTracer
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.URL == "" {
		return errors.New("postgres: URL is required")
	}
	if c.PolicyCacheTTL < 0 {
		return errors.New("postgres: PolicyCacheTTL must not be negative")
	}
	if c.PolicyCacheTTL == 0 {
		c.PolicyCacheTTL = DefaultPolicyCacheTTL
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return fmt.Errorf("postgres: bad URL: %w", redactErr(err))
	}
	return nil
}

// DB is the pool plus the transaction runner every store shares.
type DB struct {
	Pool *pgxpool.Pool
	cfg  Config
}

var (
	_ ports.TxRunner    = (*DB)(nil)
	_ ports.HealthCheck = (*DB)(nil)
)

// Open connects, pings and (if configured) migrates.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	db, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := db.Connect(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// New builds the pool without connecting (pgxpool dials lazily), so a
// dependency graph can be assembled without I/O; Connect does the I/O.
func New(cfg Config) (*DB, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, redactErr(err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.Tracer != nil {
		pc.ConnConfig.Tracer = cfg.Tracer
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, redactErr(err)
	}
	return &DB{Pool: pool, cfg: cfg}, nil
}

// Connect pings the server and, if the config says so, migrates; either
// way an applied migration whose file changed refuses the start.
func (db *DB) Connect(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", redactErr(err))
	}
	switch {
	case db.cfg.Migrate:
		if _, err := db.MigrateUp(ctx); err != nil {
			return err
		}
	case !db.cfg.SkipMigrationCheck:
		return db.VerifyMigrations(ctx)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Name implements [ports.HealthCheck].
func (db *DB) Name() string { return "postgres" }

// Check implements [ports.HealthCheck].
func (db *DB) Check(ctx context.Context) error { return db.Pool.Ping(ctx) }

type txKey struct{}

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
}

// Q returns the transaction in ctx, or the pool.
func (db *DB) Q(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	return db.Pool
}

// InTx implements [ports.TxRunner]. A nested call joins the outer
// transaction. Serialization failures and deadlocks are retried with jittered
// backoff up to 5 attempts.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return fn(ctx)
	}
	return retried(ctx, func() error { return db.inTxOnce(ctx, fn) })
}

// retried runs a transaction until it ends other than in a serialization
// failure or deadlock, up to 5 attempts with jittered backoff.
func retried(ctx context.Context, once func() error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = once()
		if !isRetryable(err) {
			return err
		}
		backoff := time.Duration(1<<i)*5*time.Millisecond + time.Duration(rand.IntN(5))*time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	return err
}

// sendBatch runs the batch that build makes: inside the transaction in
// ctx, or else as one implicit transaction — one round trip, committed
// when the batch's results have been read (Close) — retried like InTx on
// serialization failures and deadlocks, with a fresh batch each time.
func (db *DB) sendBatch(ctx context.Context, build func() *pgx.Batch) error {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx.SendBatch(ctx, build()).Close()
	}
	return retried(ctx, func() error {
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			return fault.Unavailable("database unavailable", err)
		}
		defer conn.Release()
		return conn.SendBatch(ctx, build()).Close()
	})
}

// commitTimeout bounds a COMMIT that no longer follows its caller's context.
const commitTimeout = 30 * time.Second

func (db *DB) inTxOnce(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fault.Unavailable("database unavailable", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	txCtx := context.WithValue(ctx, txKey{}, tx)
	if work := ports.TxWork(ctx); work != nil {
		if err = work(txCtx); err != nil {
			return err
		}
	}
	if err = fn(txCtx); err != nil {
		return err
	}
	// The work is done: commit it even if the caller has gone away since.
	// Cancelling a COMMIT in flight would leave its outcome unknown (the
	// connection is closed under it), and a caller that retries — with its
	// idempotency key — could not tell whether it ran. The wait is bounded
	// all the same (commitTimeout), for a server that stopped answering.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err = tx.Commit(commitCtx); err != nil {
		// A deferred constraint, or the server's refusal (Unavailable: it
		// did not commit). A connection lost during the commit leaves the
		// outcome unknown and stays Internal.
		return translate(err, "")
	}
	return nil
}

// SQLSTATE codes the adapter translates.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeCheckViolation       = "23514"
	codeExclusionViolation   = "23P01"
	codeInvalidText          = "22P02" // e.g. a malformed uuid
	codeBadEncoding          = "22021" // character_not_in_repertoire: NUL or invalid UTF-8 in text
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected)
}

// IsUniqueViolation reports a unique violation, optionally of one constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeUniqueViolation || pe.Code == codeExclusionViolation) &&
		(constraint == "" || pe.ConstraintName == constraint)
}

// IsForeignKeyViolation reports a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeForeignKeyViolation
}

// translate maps infrastructure errors to fault errors at the boundary.
// Unique and foreign-key violations are refined by constraint name (see
// constraints.go) so callers get a stable code instead of a generic one.
func translate(err error, resource string) error {
	var pe *pgconn.PgError
	errors.As(err, &pe)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fault.NotFound(resource, "")
	case IsUniqueViolation(err, ""):
		if c, ok := uniqueConstraints[pe.ConstraintName]; ok {
			fe := fault.Conflict(c.code, c.message)
			fe.Field = uniqueFields[pe.ConstraintName]
			return fe.Wrap(err)
		}
		return fault.Conflict(fault.CodeConflict, resource+" already exists").Wrap(err)
	case IsForeignKeyViolation(err):
		if r, ok := foreignKeys[pe.ConstraintName]; ok {
			resource = r
		}
		return fault.NotFound(resource, "").Wrap(err)
	case pe != nil && pe.Code == codeInvalidText:
		// Ids are uuids: one that does not parse names nothing that exists.
		return fault.NotFound(resource, "").Wrap(err)
	case pe != nil && pe.Code == codeBadEncoding:
		// The use cases hold text to core/text first; this is the last line
		// for a path that forgot: bad input, never a 500.
		return fault.Invalid("", "text must be valid UTF-8 without NUL").Wrap(err)
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if unavailable(err) { // 503, which clients and the Go client retry
		return fault.Unavailable("the database is unavailable; try again shortly", err)
	}
	return fault.Internal(err)
}

// unavailable reports an error that says nothing about the request and
// leaves nothing done, so a retry is safe: the database could not be
// reached (a restart, a failover, too many connections), nothing was sent,
// or the server answered that it is shutting down, out of resources or gave
// the transaction up to a concurrent one. A connection that broke after a
// statement was sent is not among them: an autocommit write or a COMMIT may
// have gone through, and a retry could do it twice (it stays Internal).
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	return isRetryable(err) || errors.As(err, &pe) &&
		(strings.HasPrefix(pe.Code, "08") || // connection exception
			strings.HasPrefix(pe.Code, "53") || // insufficient resources: connections, memory, disk
			strings.HasPrefix(pe.Code, "57")) // operator intervention: shutdown, cannot connect now, statement timeout
}

// redactErr strips a connection string's password from parse errors.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

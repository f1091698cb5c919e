package postgres

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// MaxRetries is how many failed publish attempts turn an outbox row from
// pending into failed. A failed row needs an operator: it is never retried
// on its own.
const MaxRetries = 10

// outboxChannel is the LISTEN/NOTIFY channel the insert trigger in
// 0001_foundation notifies once per INSERT statement.
const outboxChannel = "outbox_pending"

// ListenerApplicationName is the application_name of the LISTEN connection.
const ListenerApplicationName = "gpuaas-outbox-listener"

// maxErrorLen bounds last_error so one pathological error cannot bloat rows.
const maxErrorLen = 512

// OutboxConfig tunes retries and the wake-up listener.
type OutboxConfig struct {
	// BaseBackoff is the delay before the first retry; each later retry
	// doubles it. Default 1s.
	BaseBackoff time.Duration
	// MaxBackoff caps the delay between retries. Default 5m.
	MaxBackoff time.Duration
	// MaxRetries failed attempts mark a row failed. Default [MaxRetries].
	MaxRetries int
	// ListenHealthInterval is how often an idle LISTEN connection is pinged
	// so a silently dead connection is replaced. Default 30s.
	ListenHealthInterval time.Duration
	// Logger receives listener reconnect messages. Default: discard.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *OutboxConfig) CheckAndSetDefaults() error {
	if c.BaseBackoff < 0 || c.MaxBackoff < 0 || c.MaxRetries < 0 || c.ListenHealthInterval < 0 {
		return errors.New("postgres: outbox config: durations and MaxRetries must not be negative")
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MaxBackoff < c.BaseBackoff {
		return errors.New("postgres: outbox config: MaxBackoff is below BaseBackoff")
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = MaxRetries
	}
	if c.ListenHealthInterval == 0 {
		c.ListenHealthInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Outbox is the transactional outbox on platform_outbox_events. Append
// joins the caller's transaction, so a state change and its events commit
// or roll back together; ProcessBatch and WaitForNew serve the relay.
type Outbox struct {
	db  *DB
	cfg OutboxConfig

	// n holds the one LISTEN connection, started by the first claim or
	// wait. since is a subscription taken when the latest claim began: it
	// fires for any row committed after that (or a reconnect, after which
	// notifications may have been missed), which closes the gap between an
	// empty claim and the following WaitForNew.
	n           *notifier
	mu          sync.Mutex
	since       <-chan struct{}
	unsubscribe func()
}

var (
	_ ports.Outbox        = (*Outbox)(nil)
	_ ports.OutboxClaimer = (*Outbox)(nil)
)

// NewOutbox returns the outbox over db.
func NewOutbox(db *DB, cfg OutboxConfig) (*Outbox, error) {
	if db == nil {
		return nil, errors.New("postgres: outbox needs a DB")
	}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Outbox{db: db, cfg: cfg,
		n: newNotifier(db, cfg.ListenHealthInterval, cfg.Logger, ListenerApplicationName, outboxChannel)}, nil
}

// Close stops the LISTEN connection, if one was started.
func (o *Outbox) Close() {
	o.mu.Lock()
	if o.unsubscribe != nil {
		o.unsubscribe()
	}
	o.mu.Unlock()
	o.n.close()
}

// subscribeSince replaces the "something new since" subscription and
// returns it.
func (o *Outbox) subscribeSince() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unsubscribe != nil {
		o.unsubscribe()
	}
	o.since, o.unsubscribe = o.n.subscribe(outboxChannel, "")
	return o.since
}

// Append implements [ports.Outbox]. All events go in one INSERT statement
// (one round trip, one NOTIFY) through the transaction in ctx, if any.
func (o *Outbox) Append(ctx context.Context, events ...event.Envelope) error {
	if len(events) == 0 {
		return nil
	}
	enc, err := event.Encode(events...)
	if err != nil {
		return err
	}
	ids := make([]string, len(events))
	subjects := make([]string, len(events))
	bodies := make([]string, len(events))
	traces := make([]string, len(events))
	occurred := make([]*time.Time, len(events))
	for i, e := range enc {
		ids[i], subjects[i], bodies[i], traces[i] = e.ID, e.Type, string(e.Body), e.TraceParent
		if t := events[i].OccurredAt; !t.IsZero() {
			occurred[i] = &t
		}
	}
	// envelope is json: the body is stored as encoded (checked, not
	// rebuilt), so the relay later forwards these very bytes.
	_, err = o.db.Q(ctx).Exec(ctx, `
		INSERT INTO platform_outbox_events (id, subject, envelope, traceparent, occurred_at)
		SELECT u.id::uuid, u.subject, u.body::json, u.traceparent, coalesce(u.occurred_at, now())
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, subject, body, traceparent, occurred_at)`,
		ids, subjects, bodies, traces, occurred)
	return translateOutbox(err)
}

// ProcessBatch implements [ports.OutboxClaimer]. The claim deletes the
// rows it hands out, uncommitted: they stay locked for the whole call, so
// concurrent relays (SKIP LOCKED) never hand the same row to two
// publishers, and if this process dies mid-batch the transaction rolls
// back and the rows are pending again, untouched (at least once; the bus
// dedupes by event id). Rows whose publish failed are written back, in the
// same transaction, with their retry state. A published row is gone from
// the outbox: the stream holds the event from then on.
func (o *Outbox) ProcessBatch(ctx context.Context, limit int, publish func(ctx context.Context, recs []ports.OutboxRecord) []error) (int, error) {
	if limit <= 0 {
		return 0, fault.Invalid("limit", "limit must be positive")
	}
	o.subscribeSince()
	tx, err := o.db.Pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginClaim})
	if err != nil {
		return 0, fault.Unavailable("outbox: database unavailable", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	claimed, err := claim(ctx, tx, limit)
	if err != nil || len(claimed) == 0 {
		return 0, translateOutbox(err)
	}
	recs := make([]ports.OutboxRecord, len(claimed))
	for i, c := range claimed {
		recs[i] = c.rec
	}

	errs := publish(ctx, recs)

	var back retryRows
	for i, r := range recs {
		var perr error
		if i < len(errs) {
			perr = errs[i]
		} else {
			perr = errors.New("publisher returned no result for this event")
		}
		if perr != nil {
			back.add(r, claimed[i].occurredAt, sanitizeError(perr), o.backoff(r.RetryCount+1))
		}
	}

	// Record outcomes even if ctx was cancelled while publishing: the events
	// are on the bus, and committing now spares a duplicate publish.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if len(back.ids) > 0 {
		// The claim deleted these rows in this transaction, so their ids
		// are free again: the row comes back as it was, one attempt older.
		if _, err := tx.Exec(mctx, `
			INSERT INTO platform_outbox_events
			    (id, subject, envelope, traceparent, occurred_at, retry_count, last_attempted_at, last_error, next_attempt_at, status)
			SELECT u.id, u.subject, u.body::json, u.traceparent, u.occurred_at, u.retries + 1, now(), u.err,
			       now() + make_interval(secs => u.delay),
			       CASE WHEN u.retries + 1 >= $9 THEN 'failed' ELSE 'pending' END
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::text[], $8::float8[])
			     AS u(id, subject, body, traceparent, occurred_at, retries, err, delay)`,
			back.ids, back.subjects, back.bodies, back.traces, back.occurred, back.retries, back.errs, back.delays, o.cfg.MaxRetries); err != nil {
			return 0, translateOutbox(err)
		}
	}
	if err := tx.Commit(mctx); err != nil {
		return 0, translateOutbox(err)
	}
	return len(recs), nil
}

// retryRows are claimed rows going back into the outbox after a failed
// publish, as columns for one INSERT … SELECT FROM unnest.
type retryRows struct {
	ids, subjects, bodies, traces, errs []string
	occurred                            []time.Time
	retries                             []int
	delays                              []float64
}

func (b *retryRows) add(r ports.OutboxRecord, occurred time.Time, err string, delay time.Duration) {
	b.ids = append(b.ids, r.Event.ID)
	b.subjects = append(b.subjects, r.Event.Type)
	b.bodies = append(b.bodies, string(r.Event.Body))
	b.traces = append(b.traces, r.Event.TraceParent)
	b.occurred = append(b.occurred, occurred)
	b.retries = append(b.retries, r.RetryCount)
	b.errs = append(b.errs, err)
	b.delays = append(b.delays, delay.Seconds())
}

// claimedRow is a row claim took out of the outbox.
type claimedRow struct {
	rec        ports.OutboxRecord
	occurredAt time.Time
}

// claim takes up to limit due rows out of the outbox, the longest-due
// first, and returns them oldest first, as stored: the envelope is not
// decoded, the relay forwards it (its traceparent, when it has one, comes
// out beside it for the bus's message headers).
//
// The rows are locked FOR UPDATE SKIP LOCKED and deleted by the same
// statement: one delete mark per event, no new row version, no index
// entry. A per-row "published" update would write a new version of every
// row (and its primary-key entry) — twice the database work per event.
// The delete finds the locked rows by ctid (a TID scan: one heap fetch
// each) rather than by id (a primary-key probe each: a quarter of the
// claim's database time). The ctid is that of the row version the lock took, and
// the lock keeps it from moving until this transaction ends. A row whose
// locked version is newer than the statement's snapshot (updated and
// committed meanwhile: only an operator's UPDATE does that) is not
// deleted and so not returned: it stays pending for the next claim.
//
// The order follows platform_outbox_pending_idx (next_attempt_at,
// occurred_at) WHERE status = 'pending' so Postgres walks the index and
// locks rows lazily until the limit: a claim costs O(limit). Ordering by
// occurred_at alone would sort every pending row on every claim (with
// 20,000 pending rows, 170 ms instead of 1 ms per batch). For new rows
// next_attempt_at is the insert time, so this is still oldest first; a
// retried row queues by when it became due, and cannot block the rows
// behind it. Events carry no cross-event order guarantee anyway: relays
// run concurrently and delivery is at least once.
//
// The planner takes that index walk only when its statistics say the
// table is large: with none (a new table, autovacuum off) or stale ones
// (analyzed while the outbox was empty, which is its usual state, then a
// backlog arrives) it picks a bitmap scan that reads and sorts every due
// row for each batch of limit — a drain of n rows then costs O(n²/limit)
// (20,000 rows in batches of 1000: 200–330 ms of execution instead of
// 100–170 ms on the 2-core development VM). beginClaim
// rules the sort out for this transaction, so the walk is the only plan.
func claim(ctx context.Context, tx pgx.Tx, limit int) ([]claimedRow, error) {
	rows, err := tx.Query(ctx, `
		DELETE FROM platform_outbox_events
		WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM platform_outbox_events
			WHERE status = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at, occurred_at
			LIMIT $1
			FOR UPDATE SKIP LOCKED))
		RETURNING id, subject, envelope,
		          CASE WHEN traceparent IS NULL THEN COALESCE(envelope->>'traceparent', '') ELSE traceparent END,
		          retry_count, occurred_at`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]claimedRow, 0, limit)
	d := claimDecoder{subjects: map[string]string{}}
	for rows.Next() {
		var c claimedRow
		d.cur = &c
		if err := rows.Scan(&c.rec.Event.ID, (*subjectInto)(&d), (*bodyInto)(&d), &c.rec.Event.TraceParent,
			&c.rec.RetryCount, &c.occurredAt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// DELETE … RETURNING comes in heap (TID) order, not the claim's.
	slices.SortStableFunc(out, func(a, b claimedRow) int { return a.occurredAt.Compare(b.occurredAt) })
	return out, nil
}

// claimDecoder scans claimed rows with few allocations: the envelopes are
// copied into shared buffers instead of one allocation each, and the
// subjects, a small set, are shared. (The id comes as a binary uuid, which
// pgx formats, rather than id::text, which Postgres would.) A claim is the
// relay's only per-event work besides the publish itself.
type claimDecoder struct {
	cur      *claimedRow
	buf      []byte
	subjects map[string]string
}

// bodyBufSize is the size of a buffer for claimed envelopes.
const bodyBufSize = 64 << 10

// bodyInto scans the envelope into cur.
type bodyInto claimDecoder

// ScanBytes implements [pgtype.BytesScanner].
func (d *bodyInto) ScanBytes(src []byte) error {
	if cap(d.buf)-len(d.buf) < len(src) {
		d.buf = make([]byte, 0, max(bodyBufSize, len(src)))
	}
	start := len(d.buf)
	d.buf = append(d.buf, src...)
	// Capped: an append to one body cannot run into the next.
	d.cur.rec.Event.Body = d.buf[start:len(d.buf):len(d.buf)]
	return nil
}

// subjectInto scans the subject into cur.
type subjectInto claimDecoder

// ScanBytes implements [pgtype.BytesScanner].
func (d *subjectInto) ScanBytes(src []byte) error {
	s, ok := d.subjects[string(src)]
	if !ok {
		s = string(src)
		d.subjects[s] = s
	}
	d.cur.rec.Event.Type = s
	return nil
}

// beginClaim begins the claim's transaction and makes the ordered walk of
// platform_outbox_pending_idx its only plan (see claim), in one round trip;
// SET LOCAL ends with the transaction, so the pooled connection keeps its
// settings. Plans the connection caches for the claim statement are made
// under these settings too.
const beginClaim = `BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off`

// backoff returns the delay before attempt number attempt (1-based):
// exponential from BaseBackoff, capped at MaxBackoff, with "equal jitter"
// (half fixed, half random) so rows that failed together do not retry in
// lockstep against a recovering bus.
func (o *Outbox) backoff(attempt int) time.Duration {
	d := o.cfg.MaxBackoff
	if attempt <= 1 {
		d = o.cfg.BaseBackoff
	} else if shift := attempt - 1; shift < 32 {
		if x := o.cfg.BaseBackoff << shift; x > 0 && x < d {
			d = x
		}
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// WaitForNew implements [ports.OutboxClaimer]. It returns nil at once if a
// notification arrived after the latest ProcessBatch began claiming; else
// when an INSERT is notified, when the listener (re)connects
// (notifications may have been missed, so the caller should poll), or when
// timeout passes. It returns ctx's error when ctx ends first.
func (o *Outbox) WaitForNew(ctx context.Context, timeout time.Duration) error {
	o.mu.Lock()
	since := o.since
	o.mu.Unlock()
	if since == nil {
		since = o.subscribeSince()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-since:
		return nil
	case <-t.C:
		return nil
	}
}

// translateOutbox maps database errors to fault kinds.
func translateOutbox(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "22P02": // invalid_text_representation: an id that is not a uuid
			return fault.Invalid("id", "event id must be a UUID").Wrap(err)
		case codeUniqueViolation:
			return fault.Conflict(fault.CodeConflict, "event already in the outbox").Wrap(err)
		}
		return fault.Internal(err)
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Anything else below pgx is a connection problem.
	return fault.Unavailable("outbox: database unavailable", err)
}

// userinfoRe finds credentials embedded in URLs (scheme://user:pass@host).
var userinfoRe = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// sanitizeError renders err for the last_error column and logs: URL
// credentials are masked and the text is cut to maxErrorLen bytes on a
// rune boundary.
func sanitizeError(err error) string {
	if err == nil {
		return ""
	}
	s := userinfoRe.ReplaceAllString(err.Error(), "${1}***@")
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

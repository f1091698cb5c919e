package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/freshstack"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// The channels the node_tasks triggers of 0002_compute notify: the payload
// of taskQueuedChannel is the node id, that of taskDoneChannel the task id.
const (
	taskQueuedChannel = "node_tasks"
	taskDoneChannel   = "node_task_done"
)

// TaskListenerApplicationName is the application_name of the task store's
// LISTEN connection, so operators can find it in pg_stat_activity.
const TaskListenerApplicationName = "gpuaas-task-listener"

// TaskStoreConfig tunes the task store.
type TaskStoreConfig struct {
	// Clock decides which leases and tasks are overdue. Default: wall clock.
	Clock ports.Clock
	// ListenHealthInterval is how often an idle LISTEN connection is pinged
	// so a silently dead one is replaced. Default 30s.
	ListenHealthInterval time.Duration
	// Logger receives listener reconnect messages. Default: discard.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *TaskStoreConfig) CheckAndSetDefaults() error {
	if c.ListenHealthInterval < 0 {
		return errors.New("postgres: task store: ListenHealthInterval must not be negative")
	}
	if c.ListenHealthInterval == 0 {
		c.ListenHealthInterval = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// TaskStore implements [ports.TaskQueue] on node_tasks. Sequence numbers
// come from nodes.task_seq, bumped with UPDATE … RETURNING in the enqueuing
// transaction, so two concurrent enqueues for a node serialize on the node
// row and can never share or skip a number. Waits use LISTEN on the
// channels the table's triggers notify, through one shared connection.
type TaskStore struct {
	db  *DB
	cfg TaskStoreConfig
	n   *notifier
}

var _ ports.TaskQueue = (*TaskStore)(nil)

// NewTaskStore returns the task store over db. Close stops its listener.
func NewTaskStore(db *DB, cfg TaskStoreConfig) (*TaskStore, error) {
	if db == nil {
		return nil, errors.New("postgres: task store needs a DB")
	}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &TaskStore{db: db, cfg: cfg, n: newNotifier(db, cfg.ListenHealthInterval, cfg.Logger,
		TaskListenerApplicationName, taskQueuedChannel, taskDoneChannel)}, nil
}

// Close stops the LISTEN connection, if one was started.
func (s *TaskStore) Close() { s.n.close() }

// Enqueue implements [ports.TaskQueue]. It assigns the node's next sequence
// number, has sign sign the envelope and stores it — all in one
// transaction (the caller's, when ctx carries one). Times are cut to
// microseconds first: that is what timestamptz keeps, and the agent must
// see exactly the instants that were signed.
func (s *TaskStore) Enqueue(ctx context.Context, t nodetask.Task, sign func(nodetask.Envelope) (nodetask.Envelope, error)) (nodetask.Task, error) {
	if sign == nil {
		return nodetask.Task{}, fault.Internal(errors.New("postgres: enqueue without a signer"))
	}
	nodeID, ok := canonicalID(t.NodeID)
	if !ok {
		return nodetask.Task{}, fault.NotFound("node", t.NodeID)
	}
	if _, ok := canonicalID(t.TaskID); !ok {
		return nodetask.Task{}, fault.Invalid("task_id", "task id must be a UUID")
	}
	if t.AllocationID != "" {
		if _, ok := canonicalID(t.AllocationID); !ok {
			return nodetask.Task{}, fault.Invalid("allocation_id", "allocation id must be a UUID")
		}
	}
	var params json.RawMessage
	if len(t.Params) == 0 || !json.Valid(t.Params) {
		return nodetask.Task{}, fault.Invalid("params", "parameters must be JSON")
	}
	params = append(params, t.Params...)
	var out nodetask.Task
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		var seq int64
		var state string
		err := q.QueryRow(ctx, `UPDATE nodes SET task_seq = task_seq + 1, updated_at = now()
			WHERE id = $1 RETURNING task_seq, state`, nodeID).Scan(&seq, &state)
		if err != nil {
			return translate(err, "node")
		}
		if state == "retired" {
			return fault.Conflict("node_retired", "the node is retired")
		}
		env := t.Envelope
		env.NodeID = nodeID
		env.Params = params
		env.Seq = uint64(seq)
		env.IssuedAt = env.IssuedAt.UTC().Truncate(time.Microsecond)
		env.ExpiresAt = env.ExpiresAt.UTC().Truncate(time.Microsecond)
		env.KeyID, env.Signature = "", nil
		signed, err := sign(env)
		if err != nil {
			return err
		}
		// The signer may add only the key id and the signature: anything
		// else it changed would be stored unsigned.
		if signed.TaskID != env.TaskID || signed.NodeID != env.NodeID || signed.Type != env.Type ||
			!bytes.Equal(signed.Params, env.Params) || !signed.IssuedAt.Equal(env.IssuedAt) ||
			!signed.ExpiresAt.Equal(env.ExpiresAt) || signed.Seq != env.Seq ||
			signed.KeyID == "" || len(signed.Signature) == 0 {
			return fault.Internal(errors.New("postgres: the task signer altered the envelope or did not sign"))
		}
		_, err = q.Exec(ctx, `INSERT INTO node_tasks (id, node_id, seq, type, params, signed_params,
				allocation_id, state, issued_at, expires_at, key_id, signature, trace_parent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12)`,
			signed.TaskID, nodeID, seq, string(signed.Type), string(signed.Params), []byte(signed.Params),
			nullableID(t.AllocationID), signed.IssuedAt, signed.ExpiresAt, signed.KeyID, signed.Signature,
			truncate(t.TraceParent, 128))
		if err != nil {
			return translate(err, "node task")
		}
		out = nodetask.Task{Envelope: signed, AllocationID: t.AllocationID, State: nodetask.Queued,
			TraceParent: truncate(t.TraceParent, 128)}
		return nil
	})
	return out, err
}

const taskColumns = `id::text, node_id::text, seq, type, signed_params, COALESCE(allocation_id::text, ''), state,
	issued_at, expires_at, key_id, signature, attempts, result, error_code, error_message, trace_parent`

func scanTask(row pgx.Row) (nodetask.Task, error) {
	var (
		t       nodetask.Task
		seq     int64
		typ     string
		state   string
		params  []byte
		output  []byte
		code    string
		message string
	)
	err := row.Scan(&t.TaskID, &t.NodeID, &seq, &typ, &params, &t.AllocationID, &state,
		&t.IssuedAt, &t.ExpiresAt, &t.KeyID, &t.Signature, &t.Attempts, &output, &code, &message, &t.TraceParent)
	if err != nil {
		return t, err
	}
	t.Seq = uint64(seq)
	t.Type = nodetask.Type(typ)
	t.Params = params
	t.State = nodetask.State(state)
	t.IssuedAt, t.ExpiresAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC()
	switch t.State {
	case nodetask.Succeeded, nodetask.Failed, nodetask.Expired:
		t.Result = &nodetask.Result{TaskID: t.TaskID, Succeeded: t.State == nodetask.Succeeded,
			ErrorCode: code, ErrorMessage: message}
		if len(output) > 0 {
			t.Result.Output = output
		}
	}
	return t, nil
}

// Lease implements [ports.TaskQueue]. Queued tasks and tasks whose lease
// ran out are handed out again (attempts counts the hand-outs); tasks past
// their expiry are not, since the agent would refuse them anyway.
//
// The lease runs on a goroutine of its own (freshstack.Run): its caller is the
// agent's long poll, which then waits up to 25 s.
func (s *TaskStore) Lease(ctx context.Context, nodeID string, max int, leaseUntil time.Time) ([]nodetask.Task, error) {
	id, ok := canonicalID(nodeID)
	if !ok {
		return nil, nil
	}
	if max <= 0 {
		return nil, nil
	}
	return freshstack.Run(func() ([]nodetask.Task, error) { return s.lease(ctx, id, max, leaseUntil) })
}

func (s *TaskStore) lease(ctx context.Context, id string, max int, leaseUntil time.Time) ([]nodetask.Task, error) {
	now := s.cfg.Clock.Now()
	rows, err := s.db.Q(ctx).Query(ctx, `
		UPDATE node_tasks SET state = 'leased', lease_expires_at = $3, attempts = attempts + 1
		WHERE id IN (
			SELECT id FROM node_tasks
			WHERE node_id = $1 AND expires_at > $4
			  AND (state = 'queued' OR (state = 'leased' AND lease_expires_at <= $4))
			ORDER BY seq
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		RETURNING `+taskColumns, id, max, leaseUntil, now)
	if err != nil {
		return nil, translate(err, "node task")
	}
	tasks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (nodetask.Task, error) { return scanTask(r) })
	if err != nil {
		return nil, translate(err, "node task")
	}
	// UPDATE … RETURNING does not keep the subquery's order.
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Seq < tasks[j].Seq })
	return tasks, nil
}

// Complete implements [ports.TaskQueue]. A task of another node is
// NotFound, exactly like one that does not exist, so an agent learns
// nothing about other nodes' work. A task that already has its outcome is
// Conflict task_already_done: the first result stands.
func (s *TaskStore) Complete(ctx context.Context, nodeID string, r nodetask.Result) error {
	nid, ok1 := canonicalID(nodeID)
	tid, ok2 := canonicalID(r.TaskID)
	if !ok1 || !ok2 {
		return fault.NotFound("node task", r.TaskID)
	}
	var output any
	if len(r.Output) > 0 {
		if !json.Valid(r.Output) {
			return fault.Invalid("output_json", "output must be JSON")
		}
		output = string(r.Output)
	}
	state := nodetask.Failed
	if r.Succeeded {
		state = nodetask.Succeeded
	}
	return s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		var current string
		err := q.QueryRow(ctx, `SELECT state FROM node_tasks WHERE id = $1 AND node_id = $2 FOR UPDATE`,
			tid, nid).Scan(&current)
		if err != nil {
			return translate(err, "node task")
		}
		if nodetask.State(current).Done() {
			return fault.Conflict("task_already_done", "the task already has its outcome")
		}
		_, err = q.Exec(ctx, `UPDATE node_tasks SET state = $2, result = $3, error_code = $4,
				error_message = $5, completed_at = $6, lease_expires_at = NULL
			WHERE id = $1`, tid, string(state), output, truncate(r.ErrorCode, 64),
			truncate(r.ErrorMessage, 1024), s.cfg.Clock.Now())
		return translate(err, "node task")
	})
}

// truncate cuts s to at most n bytes (agent-supplied text is bounded
// before it is stored).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// GetTask implements [ports.TaskQueue].
func (s *TaskStore) GetTask(ctx context.Context, id string) (nodetask.Task, error) {
	tid, ok := canonicalID(id)
	if !ok {
		return nodetask.Task{}, fault.NotFound("node task", id)
	}
	t, err := scanTask(s.db.Q(ctx).QueryRow(ctx, `SELECT `+taskColumns+` FROM node_tasks WHERE id = $1`, tid))
	if err != nil {
		return t, translate(err, "node task")
	}
	return t, nil
}

// ExpireOverdue implements [ports.TaskQueue]. The done trigger notifies
// node_task_done for each expired task, so waiters learn of it at once.
func (s *TaskStore) ExpireOverdue(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE node_tasks SET state = 'expired', completed_at = $1,
			error_code = 'expired', error_message = 'the task expired before the agent reported a result',
			lease_expires_at = NULL
		WHERE state IN ('queued', 'leased') AND expires_at <= $1`, now)
	if err != nil {
		return 0, translate(err, "node task")
	}
	return int(tag.RowsAffected()), nil
}

// WaitForTasks implements [ports.TaskQueue]. It subscribes first and then
// looks for work, so a task committed between the caller's empty Lease and
// this call is never slept through.
//
// The look runs on a goroutine of its own (freshstack.Run), so the caller's —
// an agent's long poll, parked here for up to 25 s, one per connected
// agent — never runs a query: pgx grows a goroutine's stack to 16–32 KB,
// and the GC halves a parked stack only while less than a quarter of it is
// in use (doc/performance.md, agent gateway at fleet scale).
func (s *TaskStore) WaitForTasks(ctx context.Context, nodeID string, timeout time.Duration) error {
	id, ok := canonicalID(nodeID)
	if !ok {
		return s.sleep(ctx, nil, timeout)
	}
	wake, cancel := s.n.subscribe(taskQueuedChannel, id)
	defer cancel()
	end := time.Now().Add(timeout)
	pending, err := freshstack.Run(func() (bool, error) { return s.pending(ctx, id, end) })
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil && !time.Now().Before(end):
		return nil // the wait is over before the look answered
	case err != nil:
		return err
	case pending:
		return nil
	}
	t := time.NewTimer(time.Until(end))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-t.C:
	}
	return nil
}

// pending reports whether the node has a task to lease; the look ends with
// the wait.
func (s *TaskStore) pending(ctx context.Context, id string, end time.Time) (bool, error) {
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var pending bool
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM node_tasks
		WHERE node_id = $1 AND expires_at > $2
		  AND (state = 'queued' OR (state = 'leased' AND lease_expires_at <= $2)))`,
		id, s.cfg.Clock.Now()).Scan(&pending)
	if err != nil {
		return false, translate(err, "node task")
	}
	return pending, nil
}

// WaitForDone implements [ports.TaskQueue], subscribing before it checks
// the task's state for the same reason as WaitForTasks.
func (s *TaskStore) WaitForDone(ctx context.Context, taskID string, timeout time.Duration) error {
	id, ok := canonicalID(taskID)
	if !ok {
		return fault.NotFound("node task", taskID)
	}
	wake, cancel := s.n.subscribe(taskDoneChannel, id)
	defer cancel()
	var state string
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT state FROM node_tasks WHERE id = $1`, id).Scan(&state)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return translate(err, "node task")
	}
	if nodetask.State(state).Done() {
		return nil
	}
	return s.sleep(ctx, wake, timeout)
}

func (s *TaskStore) sleep(ctx context.Context, wake <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
		return nil
	case <-t.C:
		return nil
	}
}

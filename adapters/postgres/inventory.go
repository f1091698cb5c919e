package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/ports"
)

// SKUStore implements [ports.SKUStore] on the skus table.
type SKUStore struct{ db *DB }

// NodeStore implements [ports.NodeStore] on the nodes table.
type NodeStore struct{ db *DB }

var (
	_ ports.SKUStore  = (*SKUStore)(nil)
	_ ports.NodeStore = (*NodeStore)(nil)
)

// NewSKUStore returns a SKUStore; its calls join the transaction in ctx.
func NewSKUStore(db *DB) *SKUStore { return &SKUStore{db: db} }

// NewNodeStore returns a NodeStore; its calls join the transaction in ctx.
func NewNodeStore(db *DB) *NodeStore { return &NodeStore{db: db} }

// liveStates is the SQL list of allocation states that hold a node; it must
// match allocation.State.Live and the allocations_one_live_per_node index.
const liveStates = `('requested', 'provisioning', 'active', 'releasing', 'release_failed')`

const skuColumns = `id, name, gpu_model, gpu_count, gpu_memory_gib, cpu_cores, memory_gib, hourly_price_minor, currency, active`

func scanSKU(row pgx.Row) (inventory.SKU, error) {
	var s inventory.SKU
	err := row.Scan(&s.ID, &s.Name, &s.GPUModel, &s.GPUCount, &s.GPUMemoryGiB, &s.CPUCores, &s.MemoryGiB,
		&s.HourlyPriceMinor, &s.Currency, &s.Active)
	return s, err
}

// ListSKUs implements [ports.SKUStore]: the whole catalogue, retired SKUs
// included (callers filter on Active), cheapest first.
func (s *SKUStore) ListSKUs(ctx context.Context) ([]inventory.SKU, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+skuColumns+` FROM skus ORDER BY hourly_price_minor, id`)
	if err != nil {
		return nil, translate(err, "sku")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inventory.SKU, error) { return scanSKU(r) })
	if err != nil {
		return nil, translate(err, "sku")
	}
	return out, nil
}

// GetSKU implements [ports.SKUStore].
func (s *SKUStore) GetSKU(ctx context.Context, id string) (inventory.SKU, error) {
	k, err := scanSKU(s.db.Q(ctx).QueryRow(ctx, `SELECT `+skuColumns+` FROM skus WHERE id = $1`, id))
	if err != nil {
		return inventory.SKU{}, translate(err, "sku")
	}
	return k, nil
}

// Capacity implements [ports.SKUStore]: per SKU, active nodes that no live
// allocation holds. SKUs with no free node are absent (read as 0).
func (s *SKUStore) Capacity(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `
		SELECT sku_id, count(*) FROM nodes
		WHERE state = 'active' AND live_allocation_id IS NULL
		GROUP BY sku_id`)
	if err != nil {
		return nil, translate(err, "sku")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, translate(err, "sku")
		}
		out[id] = n
	}
	return out, translate(rows.Err(), "sku")
}

const nodeColumns = `id, name, sku_id, state, ssh_host, ssh_port, ssh_host_key, agent_version, gpu_inventory, health,
	last_heartbeat_at, created_at, retired_at`

func scanNode(row pgx.Row) (inventory.Node, error) {
	var n inventory.Node
	var state string
	var gpus, health []byte
	if err := row.Scan(&n.ID, &n.Name, &n.SKUID, &state, &n.SSHHost, &n.SSHPort, &n.SSHHostKey, &n.AgentVersion, &gpus, &health,
		&n.LastHeartbeatAt, &n.CreatedAt, &n.RetiredAt); err != nil {
		return inventory.Node{}, err
	}
	n.State = inventory.NodeState(state)
	if err := json.Unmarshal(gpus, &n.GPUs); err != nil {
		return inventory.Node{}, err
	}
	if err := json.Unmarshal(health, &n.Health); err != nil {
		return inventory.Node{}, err
	}
	if n.GPUs == nil {
		n.GPUs = []inventory.GPU{}
	}
	return n, nil
}

func encodeNodeJSON(n inventory.Node) (gpus, health []byte, err error) {
	g := n.GPUs
	if g == nil {
		g = []inventory.GPU{}
	}
	if gpus, err = json.Marshal(g); err != nil {
		return nil, nil, fault.Internal(err)
	}
	if health, err = json.Marshal(n.Health); err != nil {
		return nil, nil, fault.Internal(err)
	}
	return gpus, health, nil
}

// CreateNode implements [ports.NodeStore]. A taken name is Conflict
// node_name_taken; an unknown SKU is NotFound.
func (s *NodeStore) CreateNode(ctx context.Context, n inventory.Node) error {
	gpus, health, err := encodeNodeJSON(n)
	if err != nil {
		return err
	}
	created := any(nil)
	if !n.CreatedAt.IsZero() {
		created = n.CreatedAt
	}
	_, err = s.db.Q(ctx).Exec(ctx, `
		INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port, agent_version, gpu_inventory, health,
			last_heartbeat_at, created_at, updated_at, ssh_host_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11::timestamptz, now()), COALESCE($11::timestamptz, now()), $12)`,
		n.ID, n.Name, n.SKUID, string(n.State), n.SSHHost, n.SSHPort, n.AgentVersion, gpus, health, n.LastHeartbeatAt, created,
		n.SSHHostKey)
	return translate(err, "node")
}

// GetNode implements [ports.NodeStore].
func (s *NodeStore) GetNode(ctx context.Context, id string) (inventory.Node, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return inventory.Node{}, fault.NotFound("node", "")
	}
	n, err := scanNode(s.db.Q(ctx).QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = $1`, cid))
	if err != nil {
		return inventory.Node{}, translate(err, "node")
	}
	return n, nil
}

// ListNodes implements [ports.NodeStore], ordered by name.
func (s *NodeStore) ListNodes(ctx context.Context, f ports.NodeFilter) ([]inventory.Node, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.State != "" {
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.SKUID != "" {
		where = append(where, "sku_id = "+arg(f.SKUID))
	}
	q := `SELECT ` + nodeColumns + ` FROM nodes`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.Q(ctx).Query(ctx, q+" ORDER BY name, id", args...)
	if err != nil {
		return nil, translate(err, "node")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inventory.Node, error) { return scanNode(r) })
	if err != nil {
		return nil, translate(err, "node")
	}
	return out, nil
}

// UpdateNode implements [ports.NodeStore]: the row is locked (FOR UPDATE)
// for the rest of the caller's transaction, so fn decides on current data
// and placement (which skips locked nodes) cannot pick the node meanwhile.
// fn may change the name, state, SSH endpoint and retirement time.
func (s *NodeStore) UpdateNode(ctx context.Context, id string, fn func(*inventory.Node) error) (inventory.Node, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return inventory.Node{}, fault.NotFound("node", "")
	}
	var out inventory.Node
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		n, err := scanNode(s.db.Q(ctx).QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = $1 FOR UPDATE`, cid))
		if err != nil {
			return translate(err, "node")
		}
		if err := fn(&n); err != nil {
			return err
		}
		n.ID = cid
		_, err = s.db.Q(ctx).Exec(ctx, `
			UPDATE nodes SET name = $2, state = $3, ssh_host = $4, ssh_port = $5, retired_at = $6, updated_at = now()
			WHERE id = $1`, cid, n.Name, string(n.State), n.SSHHost, n.SSHPort, n.RetiredAt)
		if err != nil {
			return translate(err, "node")
		}
		out = n
		return nil
	})
	return out, err
}

// RecordHeartbeat implements [ports.NodeStore]. An enrolling or offline
// node becomes active; a node in maintenance stays there. A retired node's
// heartbeat is refused with Conflict node_retired (its certificates are
// revoked; reaching here means a revocation check was missed). A non-empty
// hb.SSHHostKey replaces the stored host key; the key stored before is
// returned, read under the row lock the update takes, so of concurrent
// heartbeats each sees the key the one before it left.
func (s *NodeStore) RecordHeartbeat(ctx context.Context, nodeID string, hb inventory.Heartbeat) (string, error) {
	cid, ok := canonicalID(nodeID)
	if !ok {
		return "", fault.NotFound("node", "")
	}
	gpus, health, err := encodeNodeJSON(inventory.Node{GPUs: hb.GPUs, Health: hb.Health})
	if err != nil {
		return "", err
	}
	at := hb.At
	if at.IsZero() {
		at = time.Now()
	}
	var prev string
	err = s.db.Q(ctx).QueryRow(ctx, `
		UPDATE nodes n SET agent_version = $2, gpu_inventory = $3, health = $4, last_heartbeat_at = $5,
			ssh_host_key = CASE WHEN $6 = '' THEN n.ssh_host_key ELSE $6 END,
			state = CASE WHEN n.state IN ('enrolling', 'offline') THEN 'active' ELSE n.state END, updated_at = now()
		FROM (SELECT id, ssh_host_key FROM nodes WHERE id = $1 FOR UPDATE) old
		WHERE n.id = old.id AND n.state <> 'retired'
		RETURNING old.ssh_host_key`, cid, hb.AgentVersion, gpus, health, at, hb.SSHHostKey).Scan(&prev)
	if err == nil {
		return prev, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", translate(err, "node")
	}
	if _, err := s.GetNode(ctx, cid); err != nil {
		return "", err
	}
	return "", fault.Conflict("node_retired", "the node is retired")
}

// MarkSilentOffline implements [ports.NodeStore]: one statement, so two
// sweepers running at once each report a node at most once between them.
func (s *NodeStore) MarkSilentOffline(ctx context.Context, before time.Time) ([]string, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `
		UPDATE nodes SET state = 'offline', updated_at = now()
		WHERE state = 'active' AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $1)
		RETURNING id::text`, before)
	if err != nil {
		return nil, translate(err, "node")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "node")
	}
	return ids, nil
}

import type { AdminNode, NodeRegistration, NodeState, ProbeResult, SKU } from "../../api/types";
import {
  ActionButton,
  ConfirmDialog,
  CopyButton,
  Field,
  InfoDialog,
  StateBadge,
} from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable } from "../../components/Table";
import { dateTime } from "../../components/format";
import { usePageHeading } from "../../components/hooks";
import { fieldError } from "../../api/errors";

export interface NodeForm {
  name: string;
  sku_id: string;
  ssh_host: string;
  ssh_port: string;
}

export interface NodesPageViewProps {
  nodes: Loadable<AdminNode[]>;
  skus: SKU[];
  filter: NodeState | undefined;
  onFilter: (s: NodeState | undefined) => void;
  form: NodeForm;
  onForm: (f: NodeForm) => void;
  onRegister: () => void;
  registering: boolean;
  registerError: unknown;
  registerCooldown: number;
  registration?: NodeRegistration;
  onCloseRegistration: () => void;
  onProbe: (id: string) => void;
  probe?: { id: string; result?: ProbeResult; error?: unknown; pending: boolean };
  onMaintenance: (id: string, on: boolean) => void;
  maintenanceError: unknown;
  onRetire: (id: string) => Promise<unknown>;
  retiring: boolean;
  retireError: unknown;
}

const STATES: NodeState[] = ["enrolling", "active", "offline", "maintenance", "retired"];

export function agentCommand(r: NodeRegistration): string {
  return (
    `GPUAAS_AGENT_BOOTSTRAP_TOKEN=${r.bootstrap_token} gpuaas-agent run --server https://<agent-gateway>:8444 \\\n` +
    `  --ca-file root.pem --state-dir /var/lib/gpuaas-agent --executor linux`
  );
}

export function NodesPageView(p: NodesPageViewProps) {
  const h = usePageHeading("Nodes");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Nodes
      </h1>
      <div className="toolbar">
        <label className="row" style={{ alignItems: "center" }}>
          <span>State</span>
          <select
            value={p.filter ?? ""}
            onChange={(e) => p.onFilter((e.target.value || undefined) as NodeState | undefined)}
          >
            <option value="">All</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ActionError error={p.maintenanceError} />
      <StateView
        state={p.nodes}
        what="nodes"
        isEmpty={(n) => n.length === 0}
        empty={
          <Empty title="No nodes">Register a node below; its agent enrols with the token shown once.</Empty>
        }
      >
        {(rows) => (
          <DataTable
            caption="Nodes"
            rows={rows}
            rowKey={(n) => n.id}
            columns={[
              { header: "Name", cell: (n) => <strong>{n.name}</strong> },
              { header: "Type", cell: (n) => n.sku_id },
              { header: "State", cell: (n) => <StateBadge state={n.state} /> },
              { header: "SSH", cell: (n) => <span className="mono">{`${n.ssh_host}:${n.ssh_port}`}</span> },
              { header: "Health", cell: (n) => (n.healthy ? "healthy" : n.health_message || "unhealthy") },
              { header: "GPUs", numeric: true, cell: (n) => n.gpus.length },
              { header: "Last heartbeat", cell: (n) => dateTime(n.last_heartbeat_at) },
              {
                header: "Actions",
                cell: (n) =>
                  n.state === "retired" ? (
                    "—"
                  ) : (
                    <div className="row">
                      <button type="button" onClick={() => p.onProbe(n.id)} aria-label={`Probe ${n.name}`}>
                        Probe
                      </button>
                      <button
                        type="button"
                        onClick={() => p.onMaintenance(n.id, n.state !== "maintenance")}
                        aria-label={`${n.state === "maintenance" ? "End" : "Start"} maintenance on ${n.name}`}
                      >
                        {n.state === "maintenance" ? "End maintenance" : "Maintenance"}
                      </button>
                      <ConfirmDialog
                        trigger={
                          <button type="button" aria-label={`Retire ${n.name}`}>
                            Retire
                          </button>
                        }
                        title={`Retire ${n.name}?`}
                        description={<p>Its certificates are revoked and it leaves the fleet for good.</p>}
                        confirmLabel="Retire node"
                        onConfirm={() => p.onRetire(n.id)}
                        pending={p.retiring}
                        error={p.retireError}
                      />
                    </div>
                  ),
              },
            ]}
          />
        )}
      </StateView>
      {p.probe && (
        <div className="banner info" role="status" aria-live="polite" data-testid="probe-result">
          {p.probe.pending
            ? "Probing…"
            : p.probe.result
              ? p.probe.result.reachable
                ? `Reachable in ${p.probe.result.latency_ms} ms: ${p.probe.result.banner ?? ""}`
                : `Not reachable: ${p.probe.result.error ?? "no answer"}`
              : null}
          <ActionError error={p.probe.error} />
        </div>
      )}
      <h2>Register a node</h2>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          p.onRegister();
        }}
      >
        <div className="row">
          <Field label="Name" error={fieldError(p.registerError, "name")}>
            {(f) => (
              <input
                {...f}
                value={p.form.name}
                onChange={(e) => p.onForm({ ...p.form, name: e.target.value })}
                required
                maxLength={63}
              />
            )}
          </Field>
          <Field label="Node type" error={fieldError(p.registerError, "sku_id")}>
            {(f) => (
              <select
                {...f}
                value={p.form.sku_id}
                onChange={(e) => p.onForm({ ...p.form, sku_id: e.target.value })}
                required
              >
                <option value="">Choose…</option>
                {p.skus.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="SSH host" error={fieldError(p.registerError, "ssh_host")}>
            {(f) => (
              <input
                {...f}
                value={p.form.ssh_host}
                onChange={(e) => p.onForm({ ...p.form, ssh_host: e.target.value })}
                required
              />
            )}
          </Field>
          <Field label="SSH port" error={fieldError(p.registerError, "ssh_port")}>
            {(f) => (
              <input
                {...f}
                inputMode="numeric"
                value={p.form.ssh_port}
                onChange={(e) => p.onForm({ ...p.form, ssh_port: e.target.value })}
              />
            )}
          </Field>
        </div>
        {!p.registerError || !(p.registerError as { field?: string }).field ? (
          <ActionError error={p.registerError} />
        ) : null}
        <ActionButton type="submit" className="primary" pending={p.registering} cooldown={p.registerCooldown}>
          Register node
        </ActionButton>
      </form>
      <InfoDialog
        open={!!p.registration}
        onClose={p.onCloseRegistration}
        title="Node registered: enrol its agent"
      >
        {p.registration && (
          <>
            <p>
              This bootstrap token is shown <strong>only now</strong> and works once, until{" "}
              {dateTime(p.registration.bootstrap_expires_at)}. Run on the node:
            </p>
            <pre className="secret" data-testid="agent-command">
              {agentCommand(p.registration)}
            </pre>
            <CopyButton text={agentCommand(p.registration)} label="Copy agent command" />
          </>
        )}
      </InfoDialog>
    </section>
  );
}

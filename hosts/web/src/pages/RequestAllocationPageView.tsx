import { Link } from "react-router";
import type { BillingBalance, SKU, SSHKey } from "../api/types";
import { ActionButton, Field } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { money } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { isApiError } from "../api/errors";

export interface RequestAllocationPageViewProps {
  skus: Loadable<SKU[]>;
  keys: Loadable<SSHKey[]>;
  balance?: BillingBalance;
  skuId: string;
  onSku: (id: string) => void;
  keyIds: string[];
  onKeys: (ids: string[]) => void;
  onSubmit: () => void;
  pending: boolean;
  error: unknown;
  cooldown: number;
}

export function RequestAllocationPageView(p: RequestAllocationPageViewProps) {
  const h = usePageHeading("Request a node");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Request a node
      </h1>
      <StateView
        state={p.skus}
        what="node types"
        isEmpty={(d) => d.length === 0}
        empty={<Empty title="No node types">There is nothing to request yet.</Empty>}
      >
        {(skus) => (
          <StateView state={p.keys} what="your SSH keys">
            {(keys) => <RequestForm {...p} skuList={skus} keyList={keys} />}
          </StateView>
        )}
      </StateView>
    </section>
  );
}

function RequestForm(p: RequestAllocationPageViewProps & { skuList: SKU[]; keyList: SSHKey[] }) {
  const sku = p.skuList.find((s) => s.id === p.skuId);
  const noKeys = p.keyList.length === 0;
  const short =
    sku && p.balance && p.balance.balance_minor < Math.ceil(sku.hourly_price_minor / 60) ? true : false;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        p.onSubmit();
      }}
    >
      <fieldset className="card" style={{ marginBottom: 16 }}>
        <legend>Node type</legend>
        {p.skuList.map((s) => (
          <label key={s.id} className="row" style={{ alignItems: "center", marginBottom: 8 }}>
            <input
              type="radio"
              name="sku"
              value={s.id}
              checked={p.skuId === s.id}
              onChange={() => p.onSku(s.id)}
              disabled={s.available === 0}
            />
            <span>
              <strong>{s.name}</strong> — {s.gpu_count} × {s.gpu_model},{" "}
              {money(s.hourly_price_minor, s.currency)}/h
              <span className="muted"> · {s.available > 0 ? `${s.available} free` : "none free"}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <fieldset className="card" style={{ marginBottom: 16 }}>
        <legend>SSH keys to install</legend>
        {noKeys ? (
          <p role="alert">
            You have no SSH key yet. <Link to="/keys">Add one</Link>: you need it to log in to the node.
          </p>
        ) : (
          p.keyList.map((k) => (
            <label key={k.id} className="row" style={{ alignItems: "center", marginBottom: 8 }}>
              <input
                type="checkbox"
                checked={p.keyIds.length === 0 || p.keyIds.includes(k.id)}
                onChange={(e) => {
                  const all = p.keyIds.length === 0 ? p.keyList.map((x) => x.id) : p.keyIds;
                  const next = e.target.checked ? [...all, k.id] : all.filter((x) => x !== k.id);
                  p.onKeys(next.length === p.keyList.length ? [] : next);
                }}
              />
              <span>
                {k.name} <span className="muted mono">{k.fingerprint}</span>
              </span>
            </label>
          ))
        )}
      </fieldset>
      {sku && (
        <div className="card" style={{ marginBottom: 16 }} aria-live="polite">
          <h2 style={{ marginTop: 0 }}>Price</h2>
          <p>
            <strong>{money(sku.hourly_price_minor, sku.currency)} per hour</strong>, billed per second from
            when the node is active until you release it (
            {money(Math.round(sku.hourly_price_minor / 60), sku.currency)} a minute).
          </p>
          {p.balance && (
            <p className="muted">
              Your balance: {money(p.balance.balance_minor, p.balance.currency)}
              {p.balance.balance_minor > 0 &&
                ` — about ${Math.floor((p.balance.balance_minor / sku.hourly_price_minor) * 60)} minutes of this node`}
              .
            </p>
          )}
          {short && (
            <p role="alert">
              Your balance is too low for this node. <Link to="/billing">Top up</Link> first.
            </p>
          )}
        </div>
      )}
      <Field label="Confirm" hint="The node is yours alone until you release it.">
        {(f) => (
          <ActionButton
            type="submit"
            className="primary"
            pending={p.pending}
            cooldown={p.cooldown}
            disabled={!sku || noKeys}
            aria-label={
              sku
                ? `Request ${sku.name} for ${money(sku.hourly_price_minor, sku.currency)} per hour`
                : "Request"
            }
            {...{ id: f.id }}
          >
            {sku ? `Request for ${money(sku.hourly_price_minor, sku.currency)}/h` : "Choose a node type"}
          </ActionButton>
        )}
      </Field>
      <ActionError error={p.error} />
      {isApiError(p.error) && p.error.code === "insufficient_balance" && (
        <p>
          <Link to="/billing">Go to Billing to top up</Link>
        </p>
      )}
    </form>
  );
}

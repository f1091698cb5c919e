import { Link } from "react-router";
import type { SSHKey } from "../api/types";
import { ActionButton, ConfirmDialog, Field } from "../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../components/States";
import { DataTable } from "../components/Table";
import { dateTime } from "../components/format";
import { usePageHeading } from "../components/hooks";
import { fieldError, isApiError } from "../api/errors";

export interface SSHKeysPageViewProps {
  keys: Loadable<SSHKey[]>;
  name: string;
  publicKey: string;
  onName: (v: string) => void;
  onPublicKey: (v: string) => void;
  onAdd: () => void;
  adding: boolean;
  addError: unknown;
  cooldown: number;
  onDelete: (id: string) => Promise<unknown>;
  deleting: boolean;
  deleteError: unknown;
}

export function SSHKeysPageView(p: SSHKeysPageViewProps) {
  const h = usePageHeading("SSH keys");
  const generic = isApiError(p.addError) && !p.addError.field ? p.addError : undefined;
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        SSH keys
      </h1>
      <p className="muted">
        Keys are installed on every node you request. Ed25519, ECDSA, security keys or RSA ≥ 3072.
      </p>
      <p className="muted">
        A key for the API, the <code>gpuaas</code> CLI or a script is an{" "}
        <Link to="/settings/api-keys">API key</Link>.
      </p>
      <StateView
        state={p.keys}
        what="your SSH keys"
        isEmpty={(k) => k.length === 0}
        empty={
          <Empty title="No SSH keys yet">
            Add the public key you log in with (for example ~/.ssh/id_ed25519.pub).
          </Empty>
        }
      >
        {(keys) => (
          <DataTable
            caption="Your SSH keys"
            rows={keys}
            rowKey={(k) => k.id}
            columns={[
              { header: "Name", cell: (k) => k.name },
              { header: "Type", cell: (k) => k.key_type },
              { header: "Fingerprint", cell: (k) => <code>{k.fingerprint}</code> },
              { header: "Added", cell: (k) => dateTime(k.created_at) },
              {
                header: "Action",
                cell: (k) => (
                  <ConfirmDialog
                    trigger={
                      <button type="button" aria-label={`Delete key ${k.name}`}>
                        Delete
                      </button>
                    }
                    title={`Delete the key “${k.name}”?`}
                    description={
                      <p>
                        Nodes you request from now on will not accept it. Running nodes keep it until
                        released.
                      </p>
                    }
                    confirmLabel="Delete key"
                    onConfirm={() => p.onDelete(k.id)}
                    pending={p.deleting}
                    error={p.deleteError}
                  />
                ),
              },
            ]}
          />
        )}
      </StateView>
      <h2>Add a key</h2>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          p.onAdd();
        }}
      >
        <Field label="Name" error={fieldError(p.addError, "name")}>
          {(f) => (
            <input
              {...f}
              value={p.name}
              onChange={(e) => p.onName(e.target.value)}
              required
              maxLength={100}
            />
          )}
        </Field>
        <Field
          label="Public key"
          hint="Paste one line, as `cat ~/.ssh/id_ed25519.pub` prints it."
          error={fieldError(p.addError, "public_key")}
        >
          {(f) => (
            <textarea
              {...f}
              value={p.publicKey}
              onChange={(e) => p.onPublicKey(e.target.value)}
              required
              spellCheck={false}
            />
          )}
        </Field>
        {generic && <ActionError error={generic} />}
        <ActionButton type="submit" className="primary" pending={p.adding} cooldown={p.cooldown}>
          Add key
        </ActionButton>
      </form>
    </section>
  );
}

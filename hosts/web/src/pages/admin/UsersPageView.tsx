import { Link } from "react-router";
import type { AdminUser, AdminUserPage } from "../../api/types";
import type { NewUser, UserFilter } from "../../api/queries/admin";
import { fieldError } from "../../api/errors";
import { ActionButton, Field, StateBadge } from "../../components/Controls";
import { ActionError, Empty, StateView, type Loadable } from "../../components/States";
import { DataTable, type Pager } from "../../components/Table";
import { dateTime } from "../../components/format";
import { usePageHeading } from "../../components/hooks";

export interface UsersPageViewProps {
  page: Loadable<AdminUserPage>;
  draft: UserFilter;
  onDraft: (f: UserFilter) => void;
  onApply: () => void;
  pager: Pager;
  form: NewUser;
  onForm: (f: NewUser) => void;
  onCreate: () => void;
  creating: boolean;
  createError: unknown;
  createCooldown: number;
  created?: AdminUser;
}

const FORM_FIELDS = ["email", "display_name", "new_tenant_name", "tenant_id", "role"];

/** The user's status, and "pending" until their first sign-in. */
export function UserStatus({ u }: { u: AdminUser }) {
  return (
    <>
      <StateBadge state={u.status} />
      {u.pending && (
        <>
          {" "}
          <StateBadge state="pending" />
        </>
      )}
    </>
  );
}

export function UsersPageView(p: UsersPageViewProps) {
  const h = usePageHeading("Users");
  const f = p.form;
  const set = (patch: Partial<NewUser>) => p.onForm({ ...f, ...patch });
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Users
      </h1>
      <form
        className="card row"
        style={{ marginBottom: 16 }}
        aria-label="Filters"
        onSubmit={(e) => {
          e.preventDefault();
          p.onApply();
        }}
      >
        <Field label="Email contains">
          {(a) => (
            <input
              {...a}
              value={p.draft.email ?? ""}
              onChange={(e) => p.onDraft({ ...p.draft, email: e.target.value })}
            />
          )}
        </Field>
        <Field label="Tenant id">
          {(a) => (
            <input
              {...a}
              value={p.draft.tenant_id ?? ""}
              onChange={(e) => p.onDraft({ ...p.draft, tenant_id: e.target.value })}
            />
          )}
        </Field>
        <Field label="Status">
          {(a) => (
            <select
              {...a}
              value={p.draft.status ?? ""}
              onChange={(e) =>
                p.onDraft({ ...p.draft, status: (e.target.value || undefined) as UserFilter["status"] })
              }
            >
              <option value="">Any</option>
              <option value="active">active</option>
              <option value="suspended">suspended</option>
            </select>
          )}
        </Field>
        <div className="field">
          <button type="submit" className="primary">
            Apply filters
          </button>
        </div>
      </form>

      <StateView
        state={p.page}
        what="users"
        isEmpty={(d) => d.users.length === 0}
        empty={<Empty title="No users match" />}
      >
        {(d) => (
          <DataTable
            caption="Users"
            rows={d.users}
            rowKey={(u) => u.id}
            pager={p.pager}
            columns={[
              {
                header: "Email",
                cell: (u) => (
                  <Link to={`/admin/users/${u.id}`} aria-label={`User ${u.email}`} className="entry-name">
                    {u.email}
                  </Link>
                ),
              },
              { header: "Name", cell: (u) => u.display_name || "—" },
              {
                header: "Tenant",
                cell: (u) =>
                  u.tenant_id ? (
                    <Link to={`/admin/tenants/${u.tenant_id}`}>{u.tenant_name || u.tenant_id}</Link>
                  ) : (
                    "—"
                  ),
              },
              {
                header: "Role",
                cell: (u) => (u.tenant_role ?? "—") + (u.role === "admin" ? " · operator" : ""),
              },
              { header: "Status", cell: (u) => <UserStatus u={u} /> },
              { header: "Created", cell: (u) => dateTime(u.created_at) },
            ]}
          />
        )}
      </StateView>

      <h2 id="create-user-h">Create a user</h2>
      <form
        className="card"
        aria-labelledby="create-user-h"
        onSubmit={(e) => {
          e.preventDefault();
          p.onCreate();
        }}
      >
        <p className="muted" style={{ marginTop: 0 }}>
          They sign in through the identity provider with this email; until then the account is pending.
        </p>
        <div className="row">
          <Field label="Email" error={fieldError(p.createError, "email")}>
            {(a) => (
              <input
                {...a}
                type="email"
                value={f.email}
                onChange={(e) => set({ email: e.target.value })}
                required
              />
            )}
          </Field>
          <Field label="Display name (optional)" error={fieldError(p.createError, "display_name")}>
            {(a) => (
              <input {...a} value={f.display_name} onChange={(e) => set({ display_name: e.target.value })} />
            )}
          </Field>
        </div>
        <fieldset className="row" style={{ marginBottom: 12 }}>
          <legend>Organisation</legend>
          <label className="row" style={{ alignItems: "center", gap: 6 }}>
            <input
              type="radio"
              name="where"
              checked={f.where === "new"}
              onChange={() => set({ where: "new" })}
            />
            <span>A new tenant they own</span>
          </label>
          <label className="row" style={{ alignItems: "center", gap: 6 }}>
            <input
              type="radio"
              name="where"
              checked={f.where === "existing"}
              onChange={() => set({ where: "existing" })}
            />
            <span>An existing tenant</span>
          </label>
        </fieldset>
        {f.where === "new" ? (
          <Field label="Tenant name" error={fieldError(p.createError, "new_tenant_name")}>
            {(a) => (
              <input
                {...a}
                value={f.new_tenant_name}
                onChange={(e) => set({ new_tenant_name: e.target.value })}
                required
                maxLength={100}
              />
            )}
          </Field>
        ) : (
          <div className="row">
            <Field label="Tenant id" error={fieldError(p.createError, "tenant_id")}>
              {(a) => (
                <input
                  {...a}
                  value={f.tenant_id}
                  onChange={(e) => set({ tenant_id: e.target.value })}
                  required
                />
              )}
            </Field>
            <Field label="Role in the tenant" error={fieldError(p.createError, "role")}>
              {(a) => (
                <select
                  {...a}
                  value={f.role}
                  onChange={(e) => set({ role: e.target.value as NewUser["role"] })}
                >
                  <option value="member">member</option>
                  <option value="admin">admin</option>
                  <option value="owner">owner</option>
                </select>
              )}
            </Field>
          </div>
        )}
        {!FORM_FIELDS.some((k) => fieldError(p.createError, k)) && <ActionError error={p.createError} />}
        {p.created && (
          <p role="status">
            Created <Link to={`/admin/users/${p.created.id}`}>{p.created.email}</Link>, pending until their
            first sign-in.
          </p>
        )}
        <ActionButton type="submit" className="primary" pending={p.creating} cooldown={p.createCooldown}>
          Create user
        </ActionButton>
      </form>
    </section>
  );
}

import { Link } from "react-router";
import type { Me, Member, Project } from "../api/types";
import { ActionButton, ConfirmDialog, Field } from "../components/Controls";
import { ActionError, StateView, type Loadable } from "../components/States";
import { DataTable } from "../components/Table";
import { usePageHeading } from "../components/hooks";
import { fieldError } from "../api/errors";

export interface SettingsPageViewProps {
  me: Me;
  project: Project;
  isTenantAdmin: boolean;
  projects: Loadable<Project[]>;
  members: Loadable<Member[]>;
  newProject: string;
  onNewProject: (v: string) => void;
  onCreateProject: () => void;
  creating: boolean;
  createError: unknown;
  member: string;
  onMember: (v: string) => void;
  memberRole: "admin" | "member" | "viewer";
  onMemberRole: (v: "admin" | "member" | "viewer") => void;
  onAddMember: () => void;
  addingMember: boolean;
  addMemberError: unknown;
  onRemoveMember: (userId: string) => Promise<unknown>;
  removing: boolean;
  removeError: unknown;
  inviteEmail: string;
  onInviteEmail: (v: string) => void;
  inviteRole: "admin" | "member";
  onInviteRole: (v: "admin" | "member") => void;
  onInvite: () => void;
  inviting: boolean;
  inviteError: unknown;
  invited?: string;
}

export function SettingsPageView(p: SettingsPageViewProps) {
  const h = usePageHeading("Settings");
  const memberFieldError = fieldError(p.addMemberError, "user_id") ?? fieldError(p.addMemberError, "email");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Settings
      </h1>
      <h2>Profile</h2>
      <div className="card">
        <dl className="kv">
          <dt>Name</dt>
          <dd>{p.me.user.display_name || "—"}</dd>
          <dt>Email</dt>
          <dd>{p.me.user.email}</dd>
          <dt>User id</dt>
          <dd className="mono">{p.me.user.id}</dd>
          <dt>Organisation</dt>
          <dd>
            {p.me.tenant.name} <span className="muted">({p.me.tenant.role})</span>
          </dd>
          <dt>Tenant id</dt>
          <dd className="mono">{p.me.tenant.id}</dd>
          <dt>Platform role</dt>
          <dd>{p.me.user.role === "admin" ? "Operator" : "User"}</dd>
        </dl>
      </div>

      <h2>API keys</h2>
      <p>
        <Link to="/settings/api-keys">Your API keys</Link>: personal keys for the <code>gpuaas</code> CLI,
        scripts and notebooks, each for one project with the scopes you choose.
      </p>
      <h2>Notifications</h2>
      <p>
        <Link to="/settings/notifications">Choose which notifications come by email</Link>; all of them reach
        your inbox.
      </p>
      <h2>Webhooks</h2>
      <p>
        <Link to="/settings/webhooks">Webhooks of {p.project.name}</Link>: its events (nodes ready or
        released, payments, a low balance) sent to your own HTTPS endpoints. Project admins manage them.
      </p>
      <h2>Service accounts</h2>
      <p>
        <Link to="/settings/service-accounts">Service accounts of {p.project.name}</Link>: machine identities
        for CI systems, schedulers and agents, signing in with client secrets. The owners and admins of your
        organisation manage them.
      </p>
      <h2>Projects</h2>
      <StateView state={p.projects} what="projects">
        {(rows) => (
          <DataTable
            caption="Projects"
            rows={rows}
            rowKey={(r) => r.id}
            columns={[
              { header: "Name", cell: (r) => r.name + (r.is_default ? " (default)" : "") },
              { header: "Your role", cell: (r) => r.role },
              { header: "Id", cell: (r) => <span className="mono">{r.id}</span> },
            ]}
          />
        )}
      </StateView>
      {p.isTenantAdmin && (
        <form
          className="card"
          style={{ marginTop: 12 }}
          onSubmit={(e) => {
            e.preventDefault();
            p.onCreateProject();
          }}
        >
          <Field label="New project name" error={fieldError(p.createError, "name")}>
            {(f) => (
              <input
                {...f}
                value={p.newProject}
                onChange={(e) => p.onNewProject(e.target.value)}
                required
                maxLength={100}
              />
            )}
          </Field>
          {!fieldError(p.createError, "name") && <ActionError error={p.createError} />}
          <ActionButton type="submit" pending={p.creating}>
            Create project
          </ActionButton>
        </form>
      )}

      <h2>Members of {p.project.name}</h2>
      <StateView state={p.members} what="members">
        {(rows) => (
          <DataTable
            caption={`Members of ${p.project.name}`}
            rows={rows}
            rowKey={(r) => r.user_id}
            columns={[
              { header: "Name", cell: (r) => r.display_name || "—" },
              { header: "Email", cell: (r) => r.email },
              { header: "Role", cell: (r) => r.role },
              {
                header: "Action",
                cell: (r) =>
                  p.isTenantAdmin ? (
                    <ConfirmDialog
                      trigger={
                        <button type="button" aria-label={`Remove ${r.email}`}>
                          Remove
                        </button>
                      }
                      title={`Remove ${r.email} from ${p.project.name}?`}
                      description={<p>They lose access to the project's nodes and billing view.</p>}
                      confirmLabel="Remove member"
                      onConfirm={() => p.onRemoveMember(r.user_id)}
                      pending={p.removing}
                      error={p.removeError}
                    />
                  ) : (
                    "—"
                  ),
              },
            ]}
          />
        )}
      </StateView>
      {p.isTenantAdmin && (
        <div className="cards" style={{ marginTop: 12 }}>
          <form
            className="card"
            onSubmit={(e) => {
              e.preventDefault();
              p.onAddMember();
            }}
          >
            <h3 style={{ marginTop: 0 }}>Add a member of your organisation</h3>
            <Field
              label="Email or user id"
              hint="Someone of your organisation who has signed in; invite anyone else."
              error={memberFieldError}
            >
              {(f) => <input {...f} value={p.member} onChange={(e) => p.onMember(e.target.value)} required />}
            </Field>
            <Field label="Role">
              {(f) => (
                <select
                  {...f}
                  value={p.memberRole}
                  onChange={(e) => p.onMemberRole(e.target.value as "admin" | "member" | "viewer")}
                >
                  <option value="member">Member</option>
                  <option value="admin">Admin</option>
                  <option value="viewer">Viewer</option>
                </select>
              )}
            </Field>
            {!memberFieldError && <ActionError error={p.addMemberError} />}
            <ActionButton type="submit" pending={p.addingMember}>
              Add member
            </ActionButton>
          </form>
          <form
            className="card"
            onSubmit={(e) => {
              e.preventDefault();
              p.onInvite();
            }}
          >
            <h3 style={{ marginTop: 0 }}>Invite by email</h3>
            <Field
              label="Email"
              error={fieldError(p.inviteError, "email")}
              hint="They join at their first sign-in."
            >
              {(f) => (
                <input
                  {...f}
                  type="email"
                  value={p.inviteEmail}
                  onChange={(e) => p.onInviteEmail(e.target.value)}
                  required
                />
              )}
            </Field>
            <Field label="Organisation role">
              {(f) => (
                <select
                  {...f}
                  value={p.inviteRole}
                  onChange={(e) => p.onInviteRole(e.target.value as "admin" | "member")}
                >
                  <option value="member">Member</option>
                  <option value="admin">Admin</option>
                </select>
              )}
            </Field>
            {!fieldError(p.inviteError, "email") && <ActionError error={p.inviteError} />}
            {p.invited && <p role="status">Invited {p.invited}.</p>}
            <ActionButton type="submit" pending={p.inviting}>
              Send invitation
            </ActionButton>
          </form>
        </div>
      )}
    </section>
  );
}

import { Suspense, useEffect } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigation } from "react-router";
import { useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useAuth, useMe, useProject, ProjectProvider } from "./auth";
import { signOut, startSignIn } from "./api/session";
import { Loading, StateView, loadable } from "./components/States";
import { setTheme, storedTheme, type Theme } from "./theme/theme";
import { useAnnounce } from "./components/Announcer";
import { useState } from "react";
import { openNotificationStream } from "./api/stream";
import { notificationKeys, unreadCountQuery } from "./api/queries/notifications";
import { webhookKeys } from "./api/queries/webhooks";
import type { Notification } from "./api/types";

export function Shell() {
  const auth = useAuth();
  const loc = useLocation();
  if (auth.status === "checking") return <Loading label="Signing you in" />;
  if (auth.status === "signed_out")
    return <SignIn expired={auth.expired} returnTo={loc.pathname + loc.search} />;
  return <SignedIn />;
}

export function SignIn({ expired, returnTo }: { expired: boolean; returnTo: string }) {
  useEffect(() => {
    document.title = "Sign in · GPUaaS";
  }, []);
  return (
    <main className="signin" id="main">
      <div className="card" style={{ maxWidth: 440, margin: "10vh auto" }}>
        <h1>GPUaaS console</h1>
        {expired ? (
          <p role="alert">Your session ended. Sign in again; you will come back to where you were.</p>
        ) : (
          <p>Rent bare-metal GPU nodes by the second. Sign in with your organisation's account.</p>
        )}
        <button type="button" className="primary" onClick={() => startSignIn(returnTo)}>
          Sign in
        </button>
      </div>
    </main>
  );
}

function SignedIn() {
  const me = useMe();
  return (
    <StateView state={loadable(me)} what="your profile">
      {(data) => (
        <ProjectProvider me={data}>
          <Layout />
        </ProjectProvider>
      )}
    </StateView>
  );
}

const NAV = [
  { to: "/", label: "Capacity", end: true },
  { to: "/allocations", label: "Allocations" },
  { to: "/keys", label: "SSH keys" },
  { to: "/storage", label: "Storage" },
  { to: "/billing", label: "Billing" },
  { to: "/settings", label: "Settings" },
];
const ADMIN_NAV = [
  { to: "/admin/ops", label: "Ops" },
  { to: "/admin/runbooks", label: "Runbooks" },
  { to: "/admin/nodes", label: "Nodes" },
  { to: "/admin/allocations", label: "All allocations" },
  { to: "/admin/users", label: "Users" },
  { to: "/admin/tenants", label: "Tenants" },
  { to: "/admin/money", label: "Credits & refunds" },
  { to: "/admin/policies", label: "Policies" },
  { to: "/admin/audit", label: "Audit log" },
];

/** What a notification changes on screen: refresh those reads now. */
export function applyNotification(qc: QueryClient, n: Notification) {
  void qc.invalidateQueries({ queryKey: notificationKeys.all });
  const allocationId = n.data.allocation_id;
  if (typeof allocationId === "string" && allocationId) {
    void qc.invalidateQueries({ queryKey: ["allocation", allocationId] });
    void qc.invalidateQueries({ queryKey: ["allocations"] });
    void qc.invalidateQueries({ queryKey: ["skus"] });
  }
  if (n.kind === "webhook_endpoint_disabled") void qc.invalidateQueries({ queryKey: webhookKeys.all });
  else void qc.invalidateQueries({ queryKey: ["billing"] });
}

/** The live stream for the signed-in person: new notifications refresh what they concern. */
function useNotificationStream() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  useEffect(
    () =>
      openNotificationStream({
        onNotification: (n) => {
          applyNotification(qc, n);
          announce(n.title);
        },
        // Allocation screens poll faster without the stream: re-plan them on a change.
        onState: (s) => s !== "connecting" && void qc.invalidateQueries({ queryKey: ["allocation"] }),
      }),
    [qc, announce],
  );
}

function Bell() {
  const unread = useQuery(unreadCountQuery());
  const n = unread.data ?? 0;
  return (
    <Link
      to="/notifications"
      className="button bell"
      aria-label={n > 0 ? `Inbox, ${n} unread` : "Inbox"}
      data-testid="bell"
    >
      <span aria-hidden="true">Inbox</span>
      {n > 0 && (
        <span className="count" aria-hidden="true">
          {n > 99 ? "99+" : n}
        </span>
      )}
    </Link>
  );
}

function Layout() {
  const { me, project, setProject, isPlatformAdmin } = useProject();
  const nav = useNavigation();
  const announce = useAnnounce();
  const [theme, setThemeState] = useState<Theme>(storedTheme());
  const loc = useLocation();
  useNotificationStream();
  useEffect(() => {
    if (nav.state === "loading") announce("Loading page");
  }, [nav.state, announce]);
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <NavLink to="/" className="brand">
          GPUaaS
        </NavLink>
        <nav className="nav" aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <NavLink to={n.to} end={n.end}>
                  {n.label}
                </NavLink>
              </li>
            ))}
          </ul>
          {isPlatformAdmin && (
            <>
              <p className="nav-heading" id="admin-nav">
                Operators
              </p>
              <ul aria-labelledby="admin-nav">
                {ADMIN_NAV.map((n) => (
                  <li key={n.to}>
                    <NavLink to={n.to}>{n.label}</NavLink>
                  </li>
                ))}
              </ul>
            </>
          )}
        </nav>
      </aside>
      <div className="content">
        <header className="topbar">
          <label className="row" style={{ alignItems: "center", gap: 8 }}>
            <span>Project</span>
            <select value={project.id} onChange={(e) => setProject(e.target.value)}>
              {me.projects.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
          <label className="row" style={{ alignItems: "center", gap: 8 }}>
            <span>Theme</span>
            <select
              value={theme}
              onChange={(e) => {
                const t = e.target.value as Theme;
                setTheme(t);
                setThemeState(t);
              }}
            >
              <option value="system">System</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <Bell />
          <span className="muted" title={me.user.email}>
            {me.user.display_name || me.user.email}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </header>
        <main id="main" tabIndex={-1} key={loc.pathname}>
          {nav.state === "loading" && <Loading label="Loading page" />}
          <Suspense fallback={<Loading label="Loading page" />}>
            <Outlet />
          </Suspense>
        </main>
      </div>
    </div>
  );
}

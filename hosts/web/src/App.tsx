import { QueryClientProvider } from "@tanstack/react-query";
import { createBrowserRouter, RouterProvider } from "react-router";
import { makeQueryClient } from "./api/queryClient";
import { AnnouncerProvider } from "./components/Announcer";
import { AuthProvider } from "./auth";
import { Shell } from "./Shell";
import { CallbackPage } from "./pages/CallbackPage";
import { NotFound } from "./pages/NotFound";

// Every screen but the shell is a lazy chunk: the first paint loads only
// the shell, the API client and the sign-in flow (vite.config.ts budget).
export const routes = [
  { path: "/auth/callback", Component: CallbackPage },
  {
    path: "/",
    Component: Shell,
    children: [
      { index: true, lazy: () => import("./pages/CapacityPage") },
      { path: "allocations", lazy: () => import("./pages/AllocationsPage") },
      { path: "allocations/new", lazy: () => import("./pages/RequestAllocationPage") },
      { path: "allocations/:id", lazy: () => import("./pages/AllocationPage") },
      { path: "keys", lazy: () => import("./pages/SSHKeysPage") },
      { path: "storage", lazy: () => import("./pages/StoragePage") },
      { path: "billing", lazy: () => import("./pages/BillingPage") },
      { path: "notifications", lazy: () => import("./pages/NotificationsPage") },
      { path: "settings", lazy: () => import("./pages/SettingsPage") },
      { path: "settings/notifications", lazy: () => import("./pages/NotificationPreferencesPage") },
      { path: "settings/webhooks", lazy: () => import("./pages/WebhooksPage") },
      { path: "settings/webhooks/:id", lazy: () => import("./pages/WebhookPage") },
      { path: "settings/api-keys", lazy: () => import("./pages/APIKeysPage") },
      { path: "settings/service-accounts", lazy: () => import("./pages/ServiceAccountsPage") },
      { path: "admin", lazy: () => import("./pages/admin/OpsPage") },
      { path: "admin/ops", lazy: () => import("./pages/admin/OpsPage") },
      { path: "admin/runbooks", lazy: () => import("./pages/admin/RunbooksPage") },
      { path: "admin/nodes", lazy: () => import("./pages/admin/NodesPage") },
      { path: "admin/allocations", lazy: () => import("./pages/admin/AdminAllocationsPage") },
      { path: "admin/users", lazy: () => import("./pages/admin/UsersPage") },
      { path: "admin/users/:id", lazy: () => import("./pages/admin/UserPage") },
      { path: "admin/tenants", lazy: () => import("./pages/admin/TenantsPage") },
      { path: "admin/tenants/:id", lazy: () => import("./pages/admin/TenantPage") },
      { path: "admin/money", lazy: () => import("./pages/admin/MoneyPage") },
      { path: "admin/policies", lazy: () => import("./pages/admin/PoliciesPage") },
      { path: "admin/audit", lazy: () => import("./pages/admin/AuditPage") },
      { path: "*", Component: NotFound },
    ],
  },
];

/** Top-level path segments the console owns; hosts/web/console.go serves index.html for them. */
export const CONSOLE_PREFIXES = [
  "/",
  "/auth/",
  "/allocations",
  "/keys",
  "/storage",
  "/billing",
  "/notifications",
  "/settings",
  "/admin",
];

const queryClient = makeQueryClient();
const router = createBrowserRouter(routes);

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <AnnouncerProvider>
        <AuthProvider>
          <RouterProvider router={router} />
        </AuthProvider>
      </AnnouncerProvider>
    </QueryClientProvider>
  );
}

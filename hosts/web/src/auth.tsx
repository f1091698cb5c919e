// Who is signed in, which project is active, and the expired-session prompt.
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { getSession, onSessionChange, refresh, type Session } from "./api/session";
import { setActiveProject } from "./api/client";
import { meQuery } from "./api/queries/me";
import type { Me, Project } from "./api/types";

type AuthState =
  | { status: "checking" }
  | { status: "signed_out"; expired: boolean }
  | { status: "signed_in"; session: Session };

const AuthCtx = createContext<AuthState>({ status: "checking" });

export function AuthProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [state, setState] = useState<AuthState>(() => {
    const s = getSession();
    return s ? { status: "signed_in", session: s } : { status: "checking" };
  });
  useEffect(() => {
    const off = onSessionChange((s, reason) => {
      if (s) setState({ status: "signed_in", session: s });
      else {
        setState({ status: "signed_out", expired: reason === "expired" });
        if (reason === "signed_out") qc.clear();
      }
    });
    if (!getSession() && location.pathname !== "/auth/callback") {
      // A reload: the access token was only in memory; the cookie brings it back.
      refresh().then(
        (s) => !s && setState({ status: "signed_out", expired: false }),
        () => setState({ status: "signed_out", expired: false }),
      );
    }
    return () => {
      off();
    };
  }, [qc]);
  return <AuthCtx.Provider value={state}>{children}</AuthCtx.Provider>;
}

export function useAuth() {
  return useContext(AuthCtx);
}

const PROJECT_KEY = "gpuaas.project";

interface ProjectCtxValue {
  me: Me;
  project: Project;
  setProject: (id: string) => void;
  isPlatformAdmin: boolean;
  isTenantAdmin: boolean;
}

const ProjectCtx = createContext<ProjectCtxValue | null>(null);

export function ProjectProvider({ me, children }: { me: Me; children: ReactNode }) {
  const [chosen, setChosen] = useState<string | null>(() => localStorage.getItem(PROJECT_KEY));
  const project = useMemo(
    () => me.projects.find((p) => p.id === chosen) ?? me.projects.find((p) => p.is_default) ?? me.projects[0],
    [me, chosen],
  );
  // The fetch wrapper sends it as X-Project-ID; set before children render.
  setActiveProject(project?.id);
  const value = useMemo<ProjectCtxValue | null>(
    () =>
      project
        ? {
            me,
            project,
            setProject: (id: string) => {
              localStorage.setItem(PROJECT_KEY, id);
              setChosen(id);
            },
            isPlatformAdmin: me.user.role === "admin",
            isTenantAdmin: me.tenant.role === "owner" || me.tenant.role === "admin",
          }
        : null,
    [me, project],
  );
  if (!value) return <p>Your account has no project. Ask an administrator of your organisation.</p>;
  return <ProjectCtx.Provider value={value}>{children}</ProjectCtx.Provider>;
}

export function useProject(): ProjectCtxValue {
  const v = useContext(ProjectCtx);
  if (!v) throw new Error("useProject outside ProjectProvider");
  return v;
}

export function useMe() {
  return useQuery(meQuery());
}

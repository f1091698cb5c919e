import { createContext, useCallback, useContext, useState, type ReactNode } from "react";

const Ctx = createContext<(msg: string) => void>(() => {});

/** One polite live region for the whole console: announce() speaks a message. */
export function AnnouncerProvider({ children }: { children: ReactNode }) {
  const [msg, setMsg] = useState("");
  const announce = useCallback((m: string) => {
    // Clear first so the same message twice is spoken twice.
    setMsg("");
    setTimeout(() => setMsg(m), 50);
  }, []);
  return (
    <Ctx.Provider value={announce}>
      {children}
      <div
        className="visually-hidden"
        role="status"
        aria-live="polite"
        aria-atomic="true"
        data-testid="announcer"
      >
        {msg}
      </div>
    </Ctx.Provider>
  );
}

export function useAnnounce() {
  return useContext(Ctx);
}

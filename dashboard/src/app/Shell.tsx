import { useCallback, useMemo, useState, type ReactNode } from "react";
import type { Client } from "../api/client";
import type { Me } from "../api/types";
import { Confirm, type Question } from "../components/Confirm";
import { Toasts } from "../components/Toasts";
import { Link, match, useLocation } from "../lib/router";
import { asApiError } from "../lib/useLoad";
import { Admin } from "../views/Admin";
import { Alerts } from "../views/Alerts";
import { MessageDetail } from "../views/MessageDetail";
import { Messages } from "../views/Messages";
import { Overview } from "../views/Overview";
import { PairDetail } from "../views/PairDetail";
import { Pairs } from "../views/Pairs";
import { SessionDetail } from "../views/SessionDetail";
import { Sessions } from "../views/Sessions";
import { AppContext, type App, type Window } from "./context";
import { Connection } from "./Connection";
import { useLive } from "./useLive";

interface Route {
  pattern: string;
  view(params: Record<string, string>): ReactNode;
}

const ROUTES: Route[] = [
  { pattern: "/", view: () => <Overview /> },
  { pattern: "/pairs", view: () => <Pairs /> },
  { pattern: "/pairs/:id", view: (p) => <PairDetail id={p.id ?? ""} /> },
  { pattern: "/sessions", view: () => <Sessions /> },
  { pattern: "/sessions/:id", view: (p) => <SessionDetail id={p.id ?? ""} /> },
  { pattern: "/messages", view: () => <Messages /> },
  { pattern: "/messages/:id", view: (p) => <MessageDetail id={p.id ?? ""} /> },
  { pattern: "/alerts", view: () => <Alerts /> },
  { pattern: "/admin", view: () => <Admin /> },
];

const NAV: { to: string; label: string; admin?: boolean }[] = [
  { to: "/", label: "Overview" },
  { to: "/sessions", label: "Sessions" },
  { to: "/messages", label: "Messages" },
  { to: "/pairs", label: "Pairs" },
  { to: "/alerts", label: "Alerts" },
  { to: "/admin", label: "Admin", admin: true },
];

function routed(path: string): ReactNode {
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (params) return route.view(params);
  }
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing lives at {path}. <Link to="/">Back to the overview</Link>
      </p>
    </section>
  );
}

export function Shell({
  client,
  me,
  signOut,
  onRenewed,
}: {
  client: Client;
  me: Me;
  signOut(): void;
  onRenewed(listener: (token: string) => void): void;
}) {
  const [window, setWindow] = useState<Window>("1h");
  const { live, dispatch, reload, renewed } = useLive(client, window);
  onRenewed(renewed);
  const [question, setQuestion] = useState<Question | null>(null);
  const { path } = useLocation();

  const report = useCallback(
    (err: unknown) => {
      const e = asApiError(err);
      dispatch({ type: "toast", tone: "bad", text: `${e.message} (${e.code})` });
    },
    [dispatch],
  );
  const confirm = useCallback(
    (text: string, ok: string) =>
      new Promise<boolean>((resolve) =>
        setQuestion({
          text,
          ok,
          answer: (yes) => {
            setQuestion(null);
            resolve(yes);
          },
        }),
      ),
    [],
  );

  const admin = me.role === "admin";
  const app: App = useMemo(
    () => ({
      client,
      me,
      may: { admin, send: admin || me.role === "operator" },
      live,
      dispatch,
      window,
      setWindow,
      reload,
      report,
      confirm,
      signOut,
    }),
    // `reload` is new each render but always does the same.
    [client, me, admin, live, dispatch, window, report, confirm, signOut],
  );
  const section = path === "/" ? "/" : `/${path.split("/")[1] ?? ""}`;

  return (
    <AppContext.Provider value={app}>
      <a className="skip" href="#view">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          smsops
        </Link>
        <nav aria-label="Views">
          {NAV.filter((n) => !n.admin || admin).map((n) => (
            <Link key={n.to} to={n.to} aria-current={section === n.to ? "page" : undefined}>
              {n.label}
              {n.to === "/alerts" && Object.keys(live.openAlerts).length > 0 && (
                <span className="badge" aria-label={`${Object.keys(live.openAlerts).length} open`}>
                  {Object.keys(live.openAlerts).length}
                </span>
              )}
            </Link>
          ))}
        </nav>
        <Connection state={live.connection} />
        <span id="who" title={me.id}>
          <span className="email">{me.email}</span> <span className="role">({me.role})</span>
        </span>
        <button type="button" id="sign-out" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="view" tabIndex={-1}>
        {routed(path)}
      </main>
      <Toasts toasts={live.toasts} dismiss={(id) => dispatch({ type: "dismiss", id })} />
      <Confirm question={question} />
    </AppContext.Provider>
  );
}

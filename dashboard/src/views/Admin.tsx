import { useState } from "react";
import { useLocation, navigate } from "../lib/router";
import { ApiKeys } from "./admin/ApiKeys";
import { AuditLog } from "./admin/AuditLog";
import { Invitations } from "./admin/Invitations";
import { Users } from "./admin/Users";

const TABS = { users: "Users", invitations: "Invitations", keys: "API keys", audit: "Audit log" } as const;
type Tab = keyof typeof TABS;

export function Admin() {
  const { query } = useLocation();
  const asked = query.get("tab");
  const [tab, setTab] = useState<Tab>(asked && asked in TABS ? (asked as Tab) : "users");
  const open = (t: Tab) => {
    setTab(t);
    navigate(`/admin?tab=${t}`);
  };
  return (
    <section aria-labelledby="admin-title" id="admin-view">
      <h1 id="admin-title">Admin</h1>
      <div className="tabs" role="tablist">
        {(Object.keys(TABS) as Tab[]).map((t) => (
          <button key={t} type="button" role="tab" aria-selected={t === tab} onClick={() => open(t)}>
            {TABS[t]}
          </button>
        ))}
      </div>
      <div role="tabpanel">
        {tab === "users" && <Users />}
        {tab === "invitations" && <Invitations />}
        {tab === "keys" && <ApiKeys />}
        {tab === "audit" && <AuditLog />}
      </div>
    </section>
  );
}

import { useState, type FormEvent } from "react";
import { useApp } from "../../app/context";
import { Loading, Problem } from "../../components/Problem";
import { Table } from "../../components/Table";
import { Time } from "../../components/Time";
import { useLoad } from "../../lib/useLoad";

export function Invitations() {
  const { client, report, live } = useApp();
  const invitations = useLoad(() => client.call("get", "/api/v1/invitations"), [client, live.changes.invitation]);
  const [role, setRole] = useState<"operator" | "viewer" | "admin">("operator");
  const [email, setEmail] = useState("");
  // Shown once, now: the API keeps only its hash.
  const [created, setCreated] = useState<{ token: string; role: string } | null>(null);
  const invite = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const made = await client.call("post", "/api/v1/invitations", { body: { role, ...(email.trim() ? { email: email.trim() } : {}) } });
      setCreated({ token: made.token, role: made.role });
      setEmail("");
      invitations.reload();
    } catch (err) {
      report(err);
    }
  };
  const withdraw = async (id: string) => {
    try {
      await client.call("delete", "/api/v1/invitations/{id}", { path: { id } });
      invitations.reload();
    } catch (err) {
      report(err);
    }
  };
  return (
    <>
      <Problem error={invitations.error} what="the invitations" />
      {invitations.data ? (
        <Table
          id="invitations"
          caption="Invitations"
          rows={invitations.data.items}
          rowKey={(i) => i.id}
          empty="No invitations."
          columns={[
            { key: "role", label: "Role", cell: (i) => i.role },
            { key: "for", label: "For", cell: (i) => i.email ?? "anyone with the token" },
            { key: "state", label: "State", cell: (i) => i.state },
            { key: "expires", label: "Expires", cell: (i) => <Time at={i.expires_at} /> },
            {
              key: "actions",
              label: "",
              cell: (i) =>
                i.state === "pending" ? (
                  <button type="button" onClick={() => void withdraw(i.id)}>
                    Withdraw
                  </button>
                ) : null,
            },
          ]}
        />
      ) : (
        invitations.loading && <Loading />
      )}
      {created && (
        <p className="secret" id="new-invitation">
          Invitation for a new {created.role}: give it to them now, it is not shown again. <code>{created.token}</code>
        </p>
      )}
      <form id="invite" className="card form" onSubmit={invite}>
        <h2>Invite someone</h2>
        <div className="row">
          <label>
            Role
            <select name="role" value={role} onChange={(e) => setRole(e.target.value as typeof role)}>
              <option>operator</option>
              <option>viewer</option>
              <option>admin</option>
            </select>
          </label>
          <label>
            Email <small>(empty: anyone with the token)</small>
            <input name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
        </div>
        <button>Invite</button>
      </form>
    </>
  );
}

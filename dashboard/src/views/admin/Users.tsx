import type { User } from "../../api/types";
import { useApp } from "../../app/context";
import { Loading, Problem } from "../../components/Problem";
import { Table, type Column } from "../../components/Table";
import { Time } from "../../components/Time";
import { useLoad } from "../../lib/useLoad";

const ASSIGNABLE = ["admin", "operator", "viewer"] as const;

export function Users() {
  const { client, me, report, confirm, dispatch, live } = useApp();
  const users = useLoad(() => client.call("get", "/api/v1/users", { query: { page_size: 100 } }), [client, live.changes.user]);
  const act = async (run: () => Promise<unknown>, done: string) => {
    try {
      await run();
      dispatch({ type: "toast", tone: "good", text: done });
      users.reload();
    } catch (err) {
      report(err);
    }
  };
  const columns: Column<User>[] = [
    { key: "email", label: "Email", cell: (u) => u.email, sort: (u) => u.email },
    {
      key: "role",
      label: "Role",
      cell: (u) =>
        u.role === "service" || u.id === me.id ? (
          u.role
        ) : (
          <select
            aria-label={`Role of ${u.email}`}
            value={u.role}
            onChange={(e) => {
              const role = e.target.value as (typeof ASSIGNABLE)[number];
              void act(() => client.call("patch", "/api/v1/users/{id}", { path: { id: u.id }, body: { role } }), `${u.email} is now ${role}`);
            }}
          >
            {ASSIGNABLE.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        ),
      sort: (u) => u.role,
    },
    {
      key: "quota",
      label: "Quota",
      cell: (u) =>
        `${u.quota.per_minute ?? "∞"}/min, ${u.quota.per_day ?? "∞"}/day${u.quota.source === "role" ? " (role default)" : ""}`,
    },
    { key: "created", label: "Signed up", cell: (u) => <Time at={u.created_at} />, sort: (u) => u.created_at },
    {
      key: "actions",
      label: "",
      cell: (u) =>
        u.role === "service" || u.id === me.id ? null : (
          <button
            type="button"
            className="danger"
            onClick={() =>
              void confirm(`Delete ${u.email}? They are signed out everywhere.`, "Delete").then((yes) => {
                if (yes) void act(() => client.call("delete", "/api/v1/users/{id}", { path: { id: u.id } }), `${u.email} deleted`);
              })
            }
          >
            Delete
          </button>
        ),
    },
  ];
  return (
    <>
      <Problem error={users.error} what="the users" />
      {users.data ? (
        <Table id="users" caption="Users" columns={columns} rows={users.data.items} rowKey={(u) => u.id} empty="No users." filter={(u) => `${u.email} ${u.role}`} />
      ) : (
        users.loading && <Loading />
      )}
    </>
  );
}

import { useApp } from "../../app/context";
import { Pager } from "../../components/Pager";
import { Loading, Problem } from "../../components/Problem";
import { Table } from "../../components/Table";
import { Time } from "../../components/Time";
import { useLoad } from "../../lib/useLoad";
import { usePages } from "../../lib/usePages";

export function AuditLog() {
  const { client, live } = useApp();
  const changed = Object.values(live.changes).reduce((a, b) => a + b, 0);
  const pages = usePages();
  const page = pages.token;
  const log = useLoad(() => client.call("get", "/api/v1/audit", { query: { page_size: 50, page_token: page } }), [client, page, page === "" ? changed : 0]);
  return (
    <>
      <Problem error={log.error} what="the audit log" />
      {log.data ? (
        <Table
          id="audit"
          caption="Audit log"
          rows={log.data.items}
          rowKey={(r) => r.id}
          empty="Nothing recorded yet."
          filter={(r) => `${r.actor.email} ${r.kind} ${r.target}`}
          columns={[
            { key: "at", label: "When", cell: (r) => <Time at={r.at} /> },
            { key: "who", label: "Who", cell: (r) => `${r.actor.email} (${r.actor.role})` },
            { key: "kind", label: "What", cell: (r) => r.kind },
            { key: "target", label: "On", cell: (r) => <span className="mono">{r.target}</span> },
            {
              key: "change",
              label: "Change",
              cell: (r) => <span className="mono small">{r.after ? JSON.stringify(r.after) : ""}</span>,
            },
          ]}
        />
      ) : (
        log.loading && <Loading />
      )}
      <div className="toolbar">
        <Pager {...pages} next={log.data?.next_page_token} />
      </div>
    </>
  );
}

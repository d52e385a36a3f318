import { useState, type FormEvent } from "react";
import { useApp } from "../../app/context";
import { Loading, Problem } from "../../components/Problem";
import { Table } from "../../components/Table";
import { Time } from "../../components/Time";
import { useLoad } from "../../lib/useLoad";

export function ApiKeys() {
  const { client, report, confirm, live } = useApp();
  const keys = useLoad(() => client.call("get", "/api/v1/api-keys"), [client, live.changes.api_key]);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const create = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const made = await client.call("post", "/api/v1/api-keys", { body: { name: name.trim() } });
      setCreated({ name: made.name, key: made.key });
      setName("");
      keys.reload();
    } catch (err) {
      report(err);
    }
  };
  const revoke = async (id: string, keyName: string) => {
    if (!(await confirm(`Revoke ${keyName}? Whoever uses it is refused from now on.`, "Revoke"))) return;
    try {
      await client.call("delete", "/api/v1/api-keys/{id}", { path: { id } });
      keys.reload();
    } catch (err) {
      report(err);
    }
  };
  return (
    <>
      <p className="muted">For reporting results: POST /api/v1/ingest/sms-events with the X-Api-Key header.</p>
      <Problem error={keys.error} what="the API keys" />
      {keys.data ? (
        <Table
          id="api-keys"
          caption="API keys"
          rows={keys.data.items}
          rowKey={(k) => k.id}
          empty="No API keys."
          columns={[
            { key: "name", label: "Name", cell: (k) => k.name },
            { key: "key", label: "Key", cell: (k) => <span className="mono">{k.prefix}…</span> },
            { key: "created", label: "Created", cell: (k) => <Time at={k.created_at} /> },
            { key: "used", label: "Last used", cell: (k) => (k.last_used_at ? <Time at={k.last_used_at} /> : "never") },
            {
              key: "actions",
              label: "",
              cell: (k) =>
                k.revoked_at ? (
                  <span className="muted">
                    revoked <Time at={k.revoked_at} />
                  </span>
                ) : (
                  <button type="button" className="danger" onClick={() => void revoke(k.id, k.name)}>
                    Revoke
                  </button>
                ),
            },
          ]}
        />
      ) : (
        keys.loading && <Loading />
      )}
      {created && (
        <p className="secret" id="new-key">
          New key for {created.name}: copy it now, it is not shown again. <code>{created.key}</code>
        </p>
      )}
      <form id="new-api-key" className="card form" onSubmit={create}>
        <h2>Create a key</h2>
        <label>
          Name
          <input name="name" placeholder="checker-eu" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button>Create key</button>
      </form>
    </>
  );
}

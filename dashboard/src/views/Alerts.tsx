import { useState, type FormEvent } from "react";
import type { Alert } from "../api/types";
import { useApp } from "../app/context";
import { Chip } from "../components/Chip";
import { Field } from "../components/Field";
import { Loading, Problem } from "../components/Problem";
import { RulesEditor } from "../components/RulesEditor";
import { Table, type Column } from "../components/Table";
import { Time } from "../components/Time";
import { pairName } from "../lib/format";
import { Link } from "../lib/router";
import { useLoad } from "../lib/useLoad";

const COLUMNS: Column<Alert>[] = [
  { key: "opened", label: "Opened", cell: (a) => <Time at={a.opened_at} />, sort: (a) => a.opened_at },
  { key: "state", label: "State", cell: (a) => <Chip status={a.state} />, sort: (a) => a.state },
  {
    key: "rule",
    label: "Rule",
    // A route_health alert is about one provider of the pair's route.
    cell: (a) => a.rule.replaceAll("_", " ") + (a.provider ? ` · ${a.provider}` : ""),
    sort: (a) => a.rule,
  },
  {
    key: "pair",
    label: "Pair",
    cell: (a) => (a.country_operator_id ? <Link to={`/pairs/${a.country_operator_id}`}>{pairName(a)}</Link> : "all"),
  },
  { key: "message", label: "Message", cell: (a) => a.message },
  { key: "resolved", label: "Resolved", cell: (a) => <Time at={a.resolved_at} /> },
  { key: "telegram", label: "Telegram", cell: (a) => a.delivery.replaceAll("_", " ") },
];

function RaiseAlert({ raised }: { raised(): void }) {
  const { client, report } = useApp();
  const [message, setMessage] = useState("");
  const [problem, setProblem] = useState<string | undefined>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!message.trim() || message.length > 1000) {
      setProblem("1 to 1,000 characters.");
      return;
    }
    setProblem(undefined);
    try {
      await client.call("post", "/api/v1/alerts", { body: { message: message.trim() } });
      setMessage("");
      raised();
    } catch (err) {
      report(err);
    }
  };
  return (
    <form id="new-alert" className="card form" onSubmit={submit} noValidate>
      <h2>Raise a notice</h2>
      <Field id="alert-message" label="Message" problem={problem} hint="Sent to every Telegram chat and every open dashboard; kept as a resolved alert.">
        <textarea id="alert-message" name="message" rows={2} value={message} onChange={(e) => setMessage(e.target.value)} />
      </Field>
      <button>Raise</button>
    </form>
  );
}

export function Alerts() {
  const { client, live, may } = useApp();
  const [state, setState] = useState<"open" | "resolved" | "">("");
  const alerts = useLoad(
    () => client.call("get", "/api/v1/alerts", { query: { state, limit: 200 } }),
    // Each notice (an alert opened or resolved among them) brings a reload.
    [client, state, live.nextToast],
  );
  return (
    <section aria-labelledby="alerts-title">
      <div className="heading">
        <h1 id="alerts-title">Alerts</h1>
        <fieldset className="segmented" aria-label="Which alerts">
          {([["", "all"], ["open", "open"], ["resolved", "resolved"]] as const).map(([value, label]) => (
            <label key={label} className={value === state ? "on" : undefined}>
              <input type="radio" name="alert-state" checked={value === state} onChange={() => setState(value)} />
              {label}
            </label>
          ))}
        </fieldset>
      </div>
      <Problem error={alerts.error} what="the alerts" />
      {alerts.data ? (
        <Table
          id="alerts"
          caption="Alerts"
          columns={COLUMNS}
          rows={alerts.data.items}
          rowKey={(a) => a.id}
          empty={state === "open" ? "No open alerts." : "No alerts yet."}
          filter={(a) => `${a.rule} ${pairName(a)} ${a.message}`}
          initialSort={{ key: "opened", descending: true }}
        />
      ) : (
        alerts.loading && <Loading />
      )}
      {may.admin && <RaiseAlert raised={alerts.reload} />}
      {may.admin && <RulesEditor />}
    </section>
  );
}

import { useState, type FormEvent } from "react";
import type { Pair } from "../api/types";
import { useApp } from "../app/context";
import { usePairs } from "../app/usePairs";
import { Field } from "../components/Field";
import { Loading, Problem } from "../components/Problem";
import { Table, type Column } from "../components/Table";
import { Time } from "../components/Time";
import { count, pairName, percent } from "../lib/format";
import { Link } from "../lib/router";

function NewPair({ onAdded }: { onAdded(): void }) {
  const { client, dispatch, report } = useApp();
  const [country, setCountry] = useState("");
  const [operator, setOperator] = useState("");
  const [high, setHigh] = useState(false);
  const [problems, setProblems] = useState<{ country?: string; operator?: string }>({});
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found: typeof problems = {};
    if (!/^\s*[A-Za-z]{2}\s*$/.test(country)) found.country = "Two letters (ISO 3166-1), such as GB.";
    if (!operator.trim() || operator.trim().length > 50) found.operator = "1 to 50 characters.";
    setProblems(found);
    if (Object.keys(found).length > 0) return;
    try {
      const pair = await client.call("post", "/api/v1/country-operators", {
        body: { country: country.trim(), operator: operator.trim(), is_high_priority: high },
      });
      dispatch({ type: "toast", tone: "good", text: `Added ${pairName(pair)}`, href: `/pairs/${pair.id}` });
      setCountry("");
      setOperator("");
      setHigh(false);
      onAdded();
    } catch (err) {
      report(err);
    }
  };
  return (
    <form id="new-pair" className="card form" onSubmit={submit} noValidate>
      <h2>Add a pair</h2>
      <div className="row">
        <Field id="np-country" label="Country" problem={problems.country}>
          <input id="np-country" name="country" placeholder="GB" maxLength={2} value={country} onChange={(e) => setCountry(e.target.value)} />
        </Field>
        <Field id="np-operator" label="Operator" problem={problems.operator}>
          <input id="np-operator" name="operator" placeholder="Vodafone" value={operator} onChange={(e) => setOperator(e.target.value)} />
        </Field>
      </div>
      <label className="check">
        <input name="high" type="checkbox" checked={high} onChange={(e) => setHigh(e.target.checked)} /> High priority (only an admin may stop
        its sessions)
      </label>
      <button>Add pair</button>
    </form>
  );
}

function PairActions({ pair, changed }: { pair: Pair; changed(): void }) {
  const { client, report, confirm } = useApp();
  const toggle = async () => {
    try {
      await client.call("patch", "/api/v1/country-operators/{id}", {
        path: { id: pair.id },
        body: { is_high_priority: !pair.is_high_priority },
      });
      changed();
    } catch (err) {
      report(err);
    }
  };
  const remove = async () => {
    if (!(await confirm(`Delete ${pairName(pair)}? Its messages and metrics stay.`, "Delete"))) return;
    try {
      await client.call("delete", "/api/v1/country-operators/{id}", { path: { id: pair.id } });
      changed();
    } catch (err) {
      report(err);
    }
  };
  return (
    <span className="actions">
      <button type="button" onClick={() => void toggle()}>
        {pair.is_high_priority ? "Make normal" : "Make high priority"}
      </button>
      <button type="button" className="danger" onClick={() => void remove()}>
        Delete
      </button>
    </span>
  );
}

export function Pairs() {
  const { may, live, window } = useApp();
  const pairs = usePairs();
  const columns: Column<Pair>[] = [
    { key: "pair", label: "Pair", cell: (p) => <Link to={`/pairs/${p.id}`}>{pairName(p)}</Link>, sort: (p) => pairName(p) },
    { key: "priority", label: "Priority", cell: (p) => (p.is_high_priority ? <span className="tag">high</span> : "normal"), sort: (p) => Number(p.is_high_priority) },
    { key: "sent", label: `Sent, last ${window}`, cell: (p) => count(live.summary[p.id]?.sms_sent ?? 0), sort: (p) => live.summary[p.id]?.sms_sent ?? 0, numeric: true },
    { key: "success", label: "Success", cell: (p) => percent(live.summary[p.id]?.success_rate), numeric: true },
    { key: "created", label: "Added", cell: (p) => <Time at={p.created_at} />, sort: (p) => p.created_at },
  ];
  if (may.admin) columns.push({ key: "actions", label: "", cell: (p) => <PairActions pair={p} changed={pairs.reload} /> });
  return (
    <section aria-labelledby="pairs-title">
      <h1 id="pairs-title">Country-operator pairs</h1>
      <Problem error={pairs.error} what="the pairs" />
      {pairs.data ? (
        <Table
          id="pairs"
          caption="Pairs"
          columns={columns}
          rows={pairs.data}
          rowKey={(p) => p.id}
          empty={may.admin ? "No pairs yet: add the first below." : "No pairs yet."}
          filter={(p) => pairName(p)}
          initialSort={{ key: "pair", descending: false }}
        />
      ) : (
        pairs.loading && <Loading />
      )}
      {may.admin && <NewPair onAdded={pairs.reload} />}
    </section>
  );
}

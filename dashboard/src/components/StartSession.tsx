import { useState, type FormEvent } from "react";
import type { Pair } from "../api/types";
import { useApp } from "../app/context";
import { navigate } from "../lib/router";
import { checkSession, type Problems, type SessionForm } from "../lib/validate";
import { Field } from "./Field";
import { PairSelect } from "./PairSelect";

const START: SessionForm = {
  pair: "",
  rate: "60",
  mode: "range",
  first: "+447700900000",
  count: "100",
  numbers: "",
  template: "Hello {n}",
  limit: "",
  stopAt: "",
};

export function StartSession({ pairs, pair }: { pairs: Pair[]; pair?: string }) {
  const { client, dispatch, reload, report } = useApp();
  const [form, setForm] = useState<SessionForm>({ ...START, pair: pair ?? "" });
  const [problems, setProblems] = useState<Problems>({});
  const [busy, setBusy] = useState(false);
  const set = (field: keyof SessionForm) => (value: string) => setForm((f) => ({ ...f, [field]: value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const checked = checkSession(form);
    setProblems(checked.problems);
    if (!checked.body) return;
    setBusy(true);
    try {
      const session = await client.call("post", "/api/v1/sessions", { body: checked.body });
      // The feed's session.started says so to everyone, this page included.
      dispatch({ type: "session", session });
      reload();
      navigate(`/sessions/${session.id}`);
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="new-session" className="card form" onSubmit={submit} noValidate>
      <h2>Start a session</h2>
      <Field id="ns-pair" label="Pair" problem={problems.pair}>
        <PairSelect id="ns-pair" pairs={pairs} value={form.pair} onChange={set("pair")} invalid={!!problems.pair} />
      </Field>
      <Field id="ns-rate" label="Messages a minute" problem={problems.rate} hint="1/60 (one an hour) to 600,000">
        <input id="ns-rate" name="rate" inputMode="decimal" value={form.rate} onChange={(e) => set("rate")(e.target.value)} />
      </Field>
      <fieldset className="choice">
        <legend>Recipients</legend>
        <label className="check">
          <input type="radio" name="mode" checked={form.mode === "range"} onChange={() => set("mode")("range")} /> A range
        </label>
        <label className="check">
          <input type="radio" name="mode" checked={form.mode === "list"} onChange={() => set("mode")("list")} /> A list
        </label>
      </fieldset>
      {form.mode === "range" ? (
        <div className="row">
          <Field id="ns-first" label="First number" problem={problems.first}>
            <input id="ns-first" name="first" value={form.first} onChange={(e) => set("first")(e.target.value)} />
          </Field>
          <Field id="ns-count" label="How many" problem={problems.count}>
            <input id="ns-count" name="count" inputMode="numeric" value={form.count} onChange={(e) => set("count")(e.target.value)} />
          </Field>
        </div>
      ) : (
        <Field id="ns-numbers" label="Numbers" problem={problems.numbers} hint="E.164, one per line or comma-separated">
          <textarea id="ns-numbers" name="numbers" rows={3} value={form.numbers} onChange={(e) => set("numbers")(e.target.value)} />
        </Field>
      )}
      <Field id="ns-template" label="Template" problem={problems.template} hint="{n} becomes the message's number, {pair} the pair">
        <input id="ns-template" name="template" value={form.template} onChange={(e) => set("template")(e.target.value)} />
      </Field>
      <div className="row">
        <Field id="ns-limit" label="Stop after (messages)" problem={problems.limit} hint="empty: no limit">
          <input id="ns-limit" name="limit" inputMode="numeric" value={form.limit} onChange={(e) => set("limit")(e.target.value)} />
        </Field>
        <Field id="ns-stop" label="Stop at" problem={problems.stopAt} hint="your time zone; empty: never">
          <input id="ns-stop" name="stop_at" type="datetime-local" value={form.stopAt} onChange={(e) => set("stopAt")(e.target.value)} />
        </Field>
      </div>
      <button disabled={busy}>{busy ? "Starting…" : "Start session"}</button>
    </form>
  );
}

import { useEffect, useState, type FormEvent } from "react";
import { useApp } from "../app/context";
import type { Pair, Provider, RouteStep } from "../api/types";
import { useLoad } from "../lib/useLoad";
import { Problem } from "./Problem";

const MAX_STEPS = 8;

/// A pair's route: the provider accounts its messages go through, by
/// priority. Admins edit it; everyone else sees it, with each account's
/// health as sms-svc sees it now.
export function RouteEditor({ pair, saved }: { pair: Pair; saved: (pair: Pair) => void }) {
  const { client, dispatch, may, report } = useApp();
  const providers = useLoad(() => client.call("get", "/api/v1/providers").then((p) => p.items), [client]);
  const [steps, setSteps] = useState<RouteStep[]>(pair.route);
  useEffect(() => setSteps(pair.route), [pair.route]);
  const known: Provider[] = providers.data ?? [];

  const change = (at: number, patch: Partial<RouteStep>) =>
    setSteps((all) => all.map((step, i) => (i === at ? { ...step, ...patch } : step)));
  const unused = known.filter((p) => !steps.some((s) => s.provider === p.name));
  const add = () => {
    const next = unused[0];
    if (!next) return;
    const priority = steps.length === 0 ? 0 : Math.max(...steps.map((s) => s.priority ?? 0)) + 1;
    setSteps((all) => [...all, { provider: next.name, priority, weight: 100 }]);
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const updated = await client.call("patch", "/api/v1/country-operators/{id}", {
        path: { id: pair.id },
        body: { route: steps },
      });
      saved(updated);
      dispatch({ type: "toast", tone: "good", text: steps.length ? "Route saved" : "Route cleared" });
    } catch (err) {
      report(err);
    }
  };

  const health = (name: string) => {
    const p = known.find((k) => k.name === name);
    if (!p) return <span className="chip bad">unknown account</span>;
    return <span className={p.healthy ? "chip good" : "chip bad"}>{p.healthy ? "up" : "down"}</span>;
  };

  if (!may.admin) {
    return (
      <div id="route" className="card">
        <h2>Route</h2>
        {pair.route.length === 0 ? (
          <p className="empty">No route: the accounts in their configured order.</p>
        ) : (
          <ol className="list">
            {pair.route.map((s) => (
              <li key={s.provider}>
                <span className="mono">{s.provider}</span> priority {s.priority ?? 0}, weight {s.weight ?? 100} {health(s.provider)}
              </li>
            ))}
          </ol>
        )}
      </div>
    );
  }
  return (
    <form id="route" className="card form" onSubmit={save} aria-labelledby="route-title">
      <h2 id="route-title">Route</h2>
      <Problem error={providers.error} what="the provider accounts" />
      <p className="muted">
        Lowest priority first; steps of one priority share its messages by weight. An account that is down is skipped, and a
        message it provably did not take goes to the next.
      </p>
      {steps.length === 0 && <p className="empty">No route: the accounts in their configured order.</p>}
      {steps.map((step, at) => (
        <fieldset key={at} className="route-step">
          <legend>Step {at + 1}</legend>
          <label htmlFor={`route-provider-${at}`} className="inline">
            account
            <select id={`route-provider-${at}`} value={step.provider} onChange={(e) => change(at, { provider: e.target.value })}>
              {[...known.filter((p) => p.name === step.provider || unused.includes(p)).map((p) => p.name), step.provider]
                .filter((name, i, all) => all.indexOf(name) === i)
                .map((name) => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
            </select>
          </label>
          <label htmlFor={`route-priority-${at}`} className="inline">
            priority
            <input
              id={`route-priority-${at}`}
              type="number"
              min={0}
              required
              value={step.priority ?? 0}
              onChange={(e) => change(at, { priority: Number(e.target.value) })}
            />
          </label>
          <label htmlFor={`route-weight-${at}`} className="inline">
            weight
            <input
              id={`route-weight-${at}`}
              type="number"
              min={1}
              max={1000}
              required
              value={step.weight ?? 100}
              onChange={(e) => change(at, { weight: Number(e.target.value) })}
            />
          </label>
          {health(step.provider)}
          <button type="button" onClick={() => setSteps((all) => all.filter((_, i) => i !== at))}>
            Remove
          </button>
        </fieldset>
      ))}
      <div className="actions">
        <button type="button" id="route-add" onClick={add} disabled={unused.length === 0 || steps.length >= MAX_STEPS}>
          Add a step
        </button>
      </div>
      <button id="route-save">Save route</button>
    </form>
  );
}

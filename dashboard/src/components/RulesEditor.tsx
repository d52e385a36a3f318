import { useEffect, useState, type FormEvent } from "react";
import { useApp } from "../app/context";
import { Loading, Problem } from "./Problem";
import { useLoad } from "../lib/useLoad";

type Rules = Record<string, unknown>;

const words = (name: string) => name.replaceAll("_", " ");

/// The alert rules as a form built from whatever the API returns, so a rule
/// or field the API adds shows up here without a change.
export function RulesEditor() {
  const { client, dispatch, report } = useApp();
  const loaded = useLoad(() => client.call("get", "/api/v1/alerts/rules") as Promise<Rules>, [client]);
  const [rules, setRules] = useState<Rules | null>(null);
  useEffect(() => {
    if (loaded.data) setRules(loaded.data);
  }, [loaded.data]);

  const set = (path: string[], value: unknown) =>
    setRules((r) => {
      const next = structuredClone(r ?? {});
      let target = next as Record<string, unknown>;
      for (const key of path.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
      target[path[path.length - 1] ?? ""] = value;
      return next;
    });

  const input = (path: string[], value: unknown) => {
    const id = `rule-${path.join("-")}`;
    const label = words(path[path.length - 1] ?? "");
    if (typeof value === "boolean") {
      return (
        <label key={id} className="check">
          <input id={id} type="checkbox" checked={value} onChange={(e) => set(path, e.target.checked)} /> {label}
        </label>
      );
    }
    return (
      <label key={id} htmlFor={id} className="inline">
        {label}
        <input id={id} type="number" step="any" required value={String(value)} onChange={(e) => set(path, Number(e.target.value))} />
      </label>
    );
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    try {
      // The form holds whatever shape the API gave; the API checks it.
      const saved = await client.call("put", "/api/v1/alerts/rules", { body: rules as never });
      setRules(saved as Rules);
      dispatch({ type: "toast", tone: "good", text: "Alert rules saved" });
    } catch (err) {
      report(err);
    }
  };

  return (
    <form id="rules" className="card form" onSubmit={save}>
      <h2>Alert rules</h2>
      <Problem error={loaded.error} what="the alert rules" />
      {!rules && loaded.loading && <Loading />}
      {rules &&
        Object.entries(rules).map(([name, value]) =>
          value !== null && typeof value === "object" ? (
            <fieldset key={name}>
              <legend>{words(name)}</legend>
              {Object.entries(value as Record<string, unknown>).map(([field, inner]) => input([name, field], inner))}
            </fieldset>
          ) : (
            input([name], value)
          ),
        )}
      {rules && <button>Save rules</button>}
    </form>
  );
}

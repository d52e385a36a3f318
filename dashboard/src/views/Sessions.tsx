import { useState } from "react";
import { useApp } from "../app/context";
import { usePairs } from "../app/usePairs";
import { Problem } from "../components/Problem";
import { SessionTable } from "../components/SessionTable";
import { StartSession } from "../components/StartSession";

const FILTERS = { active: ["starting", "running", "paused", "stopping"], finished: ["stopped", "failed"] } as const;

export function Sessions() {
  const { live, may } = useApp();
  const pairs = usePairs();
  const [show, setShow] = useState<"all" | "active" | "finished">("all");
  const all = Object.values(live.sessions);
  const rows = show === "all" ? all : all.filter((s) => (FILTERS[show] as readonly string[]).includes(s.state));
  return (
    <section aria-labelledby="sessions-title">
      <div className="heading">
        <h1 id="sessions-title">Sessions</h1>
        <fieldset className="segmented" aria-label="Which sessions">
          {(["all", "active", "finished"] as const).map((f) => (
            <label key={f} className={f === show ? "on" : undefined}>
              <input type="radio" name="show" checked={f === show} onChange={() => setShow(f)} />
              {f}
            </label>
          ))}
        </fieldset>
      </div>
      <SessionTable rows={rows} />
      {may.send && (
        <>
          <Problem error={pairs.error} what="the pairs" />
          <StartSession pairs={pairs.data ?? []} />
        </>
      )}
    </section>
  );
}

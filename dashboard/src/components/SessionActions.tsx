import { useState } from "react";
import type { Session } from "../api/types";
import { useApp } from "../app/context";
import { pairName } from "../lib/format";

const ACTIVE = ["starting", "running", "paused"];

/// Stop and Restart, for whoever may use them: a session is its starter's
/// and an admin's; a high-priority pair's is an admin's alone, who confirms
/// overriding its pin (the API's `force`).
export function SessionActions({ session }: { session: Session }) {
  const { client, me, may, dispatch, reload, report, confirm } = useApp();
  const [busy, setBusy] = useState(false);
  const own = may.send && session.started_by === me.id && !session.is_high_priority;
  if (!own && !may.admin) return null;

  const act = async (step: "stop" | "restart") => {
    const force = session.is_high_priority;
    if (force) {
      const ok = await confirm(
        `${pairName(session)} is a high-priority pair. ${step === "stop" ? "Stop" : "Restart"} its session anyway, overriding its pin?`,
        step === "stop" ? "Stop it" : "Restart it",
      );
      if (!ok) return;
    }
    setBusy(true);
    try {
      const path = step === "stop" ? "/api/v1/sessions/{id}/stop" : "/api/v1/sessions/{id}/restart";
      const updated = await client.call("post", path, { path: { id: session.id }, body: { force } });
      dispatch({ type: "session", session: updated });
      reload();
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <span className="actions">
      {ACTIVE.includes(session.state) && (
        <button type="button" className="danger" disabled={busy} onClick={() => void act("stop")}>
          Stop
        </button>
      )}
      <button type="button" disabled={busy} onClick={() => void act("restart")}>
        Restart
      </button>
    </span>
  );
}

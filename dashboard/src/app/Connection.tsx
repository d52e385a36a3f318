import type { Connection as State } from "../live/reducer";

const SAID: Record<State, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  polling: "Offline: polling every 5 s",
};

/// Whether what is on screen moves by itself.
export function Connection({ state }: { state: State }) {
  return (
    <span className={`connection ${state}`} id="connection" role="status" title="The live feed (GET /api/v1/live)">
      <span className="dot" aria-hidden="true" />
      {SAID[state]}
    </span>
  );
}

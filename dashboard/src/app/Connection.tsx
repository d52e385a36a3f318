import { useEffect, useState } from "react";
import type { Connection as State } from "../live/reducer";

const SAID: Record<State, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  polling: "Offline: polling every 5 s",
};

/// The browser's own word on the network: a socket may look open for a
/// while after the network went.
function useOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener("online", update);
    window.addEventListener("offline", update);
    return () => {
      window.removeEventListener("online", update);
      window.removeEventListener("offline", update);
    };
  }, []);
  return online;
}

/// Whether what is on screen moves by itself.
export function Connection({ state }: { state: State }) {
  const online = useOnline();
  const shown: State = online ? state : "polling";
  return (
    <span className={`connection ${shown}`} id="connection" role="status" title="The live feed (GET /api/v1/live)">
      <span className="dot" aria-hidden="true" />
      {online ? SAID[state] : "Offline: no network"}
    </span>
  );
}

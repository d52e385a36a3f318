// Keeps the live state: loads it over REST, follows the feed, falls back to
// polling while the feed is down, and reloads when the feed says it missed
// something.
import { useEffect, useReducer, useRef } from "react";
import type { Client } from "../api/client";
import { Feed } from "../live/socket";
import { initialState, reducer, type LiveMessage } from "../live/reducer";
import type { Window } from "./context";

const POLL_MS = 5000;
/// Even live, a reload now and then, for the window's sliding edge.
const SAFETY_MS = 30000;
const MEASURES_KEPT = 2000;

/// Records, for each pushed event, how long it took from its
/// `occurred_at` (and from its arrival here) to the screen, as User Timing
/// measures a person or a test can read (`performance.getEntriesByName`).
function measure(messages: LiveMessage[], arrived: number): void {
  const painted = performance.now();
  if (performance.getEntriesByType("measure").length > MEASURES_KEPT) performance.clearMeasures();
  for (const message of messages) {
    if (!("event" in message)) continue;
    const occurred = Date.parse(message.event.occurred_at) - performance.timeOrigin;
    if (!Number.isNaN(occurred) && occurred <= painted) {
      performance.measure("event-to-screen", { start: occurred, end: painted, detail: message.type });
    }
    performance.measure("arrival-to-screen", { start: arrived, end: painted, detail: message.type });
  }
}

export function useLive(client: Client, window: Window) {
  const [live, dispatch] = useReducer(reducer, initialState);
  const feed = useRef<Feed | null>(null);
  const pending = useRef<{ messages: LiveMessage[]; arrived: number } | null>(null);

  useEffect(() => {
    const f = new Feed({
      token: () => client.tokens.access(),
      onMessages(messages) {
        pending.current = { messages, arrived: performance.now() };
        dispatch({ type: "messages", messages });
      },
      onState(state) {
        dispatch({ type: "connection", connection: state === "live" ? "live" : "polling" });
      },
      async onTokenEnded() {
        await client.renew().catch(() => false);
      },
    });
    feed.current = f;
    return () => {
      f.close();
      feed.current = null;
    };
  }, [client]);

  // After the render that shows a batch: measure it.
  useEffect(() => {
    const batch = pending.current;
    if (!batch) return;
    pending.current = null;
    requestAnimationFrame(() => measure(batch.messages, batch.arrived));
  }, [live.version]);

  const loads = useRef(0);
  const reload = () => {
    const mine = ++loads.current;
    void Promise.all([
      client.call("get", "/api/v1/metrics/summary", { query: { window } }),
      client.call("get", "/api/v1/sessions", { query: { page_size: 100 } }),
      client.call("get", "/api/v1/alerts", { query: { state: "open" } }),
    ]).then(
      ([summary, sessions, alerts]) => {
        if (mine !== loads.current) return;
        dispatch({ type: "summary", items: summary.items });
        dispatch({ type: "sessions", items: sessions.items });
        dispatch({ type: "alerts", items: alerts.items });
      },
      () => {
        // The views that show this say what went wrong with their own loads.
      },
    );
  };
  const reloadRef = useRef(reload);
  reloadRef.current = reload;

  useEffect(() => {
    reloadRef.current();
  }, [window, live.stale]);

  const polling = live.connection !== "live";
  useEffect(() => {
    const timer = setInterval(() => reloadRef.current(), polling ? POLL_MS : SAFETY_MS);
    return () => clearInterval(timer);
  }, [polling]);

  return { live, dispatch, reload: () => reloadRef.current(), renewed: (t: string) => feed.current?.renewed(t) };
}

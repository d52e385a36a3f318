// What the live feed (GET /api/v1/live) keeps up to date, as one pure
// reducer: REST loads set the state, pushed messages move it on as they
// arrive, and a reload now and then corrects whatever the feed missed.
import type { Alert, PairSummary, Session } from "../api/types";

export type Connection = "connecting" | "live" | "reconnecting" | "polling";

export interface SmsEvent {
  event_id?: string;
  type: string;
  occurred_at: string;
  message_id?: string | null;
  session_id?: string | null;
  country_operator_id: string;
  country: string;
  operator: string;
  status: string;
  error_code?: string | null;
}

export interface SessionEvent {
  type: string;
  occurred_at: string;
  session_id: string;
  country_operator_id: string;
  country: string;
  operator: string;
  state: string;
  reason?: string | null;
  next_seq?: number;
  counters?: { submitted: number; accepted: number; failed: number };
}

/// A change someone made to the directory (pairs, users, invitations, API
/// keys, alert rules), as its audit record says it: who, what, on what.
export interface ChangeEvent {
  type: string;
  occurred_at: string;
  target: string;
  actor_email?: string;
}

/// The kinds of change the feed reports; views that list them reload on each.
export const CHANGE_FAMILIES = ["pair", "user", "invitation", "api_key", "alert_rules"] as const;
export type ChangeFamily = (typeof CHANGE_FAMILIES)[number];

export type LiveMessage =
  | { type: "ready"; user_id?: string }
  | { type: "following"; events: boolean }
  | { type: "lagged"; missed: number }
  | { type: "alert"; alert: Alert }
  | { type: "metrics"; at: string; pairs: unknown[] }
  | { type: "error"; code: string; message: string }
  | { type: "renewed"; expires_at?: number }
  | { type: string; event: SmsEvent | SessionEvent | ChangeEvent };

export interface Counts {
  sent: number;
  delivered: number;
  undelivered: number;
  failed: number;
}

export interface Toast {
  id: number;
  tone: "info" | "good" | "bad";
  text: string;
  /// Where it leads, if anywhere.
  href?: string;
}

/// Counts per minute (its start, in ms) for all pairs ("*") and each pair,
/// of events received since the page loaded: charts add them to what they
/// fetched.
export type Tally = Record<string, Record<number, Counts>>;

export interface LiveState {
  connection: Connection;
  summary: Record<string, PairSummary>;
  sessions: Record<string, Session>;
  openAlerts: Record<string, Alert>;
  tally: Tally;
  toasts: Toast[];
  /// Bumped whenever something happened that a reload should pick up
  /// (a lagged feed, a reconnect).
  stale: number;
  /// Bumped by every applied message: views that fetch on change watch it.
  version: number;
  /// Bumped by each change of its family: the views listing it reload.
  changes: Record<ChangeFamily, number>;
  nextToast: number;
}

export const initialState: LiveState = {
  connection: "connecting",
  summary: {},
  sessions: {},
  openAlerts: {},
  tally: {},
  toasts: [],
  stale: 0,
  version: 0,
  changes: { pair: 0, user: 0, invitation: 0, api_key: 0, alert_rules: 0 },
  nextToast: 1,
};

export type Action =
  | { type: "connection"; connection: Connection }
  | { type: "messages"; messages: LiveMessage[] }
  | { type: "summary"; items: PairSummary[] }
  | { type: "sessions"; items: Session[] }
  | { type: "session"; session: Session }
  | { type: "alerts"; items: Alert[] }
  | { type: "toast"; tone: Toast["tone"]; text: string; href?: string }
  | { type: "dismiss"; id: number }
  | { type: "reset" };

const MINUTE = 60_000;
/// Live buckets older than this are dropped: the longest chart (7 d) is
/// fetched again long before its oldest bucket matters.
const TALLY_KEEP_MS = 3 * 3600_000;
const MAX_TOASTS = 5;

const emptyCounts = (): Counts => ({ sent: 0, delivered: 0, undelivered: 0, failed: 0 });

function bump(counts: Counts, status: string): Counts {
  switch (status) {
    case "accepted":
      return { ...counts, sent: counts.sent + 1 };
    case "delivered":
      return { ...counts, delivered: counts.delivered + 1 };
    case "undelivered":
      return { ...counts, undelivered: counts.undelivered + 1 };
    case "failed":
      return { ...counts, failed: counts.failed + 1 };
    default:
      return counts;
  }
}

function isSmsEvent(m: LiveMessage): m is { type: string; event: SmsEvent } {
  return m.type.startsWith("sms.") && "event" in m;
}

function isSessionEvent(m: LiveMessage): m is { type: string; event: SessionEvent } {
  return m.type.startsWith("session.") && "event" in m;
}

function changeFamily(m: LiveMessage): ChangeFamily | null {
  if (!("event" in m)) return null;
  const family = m.type.split(".")[0];
  return CHANGE_FAMILIES.find((f) => f === family) ?? null;
}

function applySms(state: LiveState, e: SmsEvent): void {
  const pair = state.summary[e.country_operator_id] ?? {
    country_operator_id: e.country_operator_id,
    country: e.country,
    operator: e.operator,
    sms_sent: 0,
    delivered: 0,
    undelivered: 0,
    failed: 0,
    success_rate: 0,
    top_errors: [],
  };
  const counted = bump(
    { sent: pair.sms_sent, delivered: pair.delivered, undelivered: pair.undelivered, failed: pair.failed },
    e.status,
  );
  const finished = counted.delivered + counted.undelivered + counted.failed;
  let topErrors = pair.top_errors;
  if ((e.status === "failed" || e.status === "undelivered") && e.error_code) {
    const code = e.error_code;
    const known = topErrors.some((t) => t.code === code);
    topErrors = (known
      ? topErrors.map((t) => (t.code === code ? { ...t, count: t.count + 1 } : t))
      : [...topErrors, { code, count: 1 }]
    ).sort((a, b) => b.count - a.count);
  }
  state.summary = {
    ...state.summary,
    [e.country_operator_id]: {
      ...pair,
      sms_sent: counted.sent,
      delivered: counted.delivered,
      undelivered: counted.undelivered,
      failed: counted.failed,
      success_rate: finished === 0 ? 0 : counted.delivered / finished,
      top_errors: topErrors,
    },
  };

  const minute = Math.floor(Date.parse(e.occurred_at) / MINUTE) * MINUTE;
  if (!Number.isNaN(minute)) {
    const tally = { ...state.tally };
    for (const scope of ["*", e.country_operator_id]) {
      const buckets = { ...(tally[scope] ?? {}) };
      buckets[minute] = bump(buckets[minute] ?? emptyCounts(), e.status);
      tally[scope] = buckets;
    }
    state.tally = tally;
  }

  // A session's counters move with its messages: accepted by sms-svc is
  // submitted and accepted; the reload after it stops gives the exact ones.
  const session = e.session_id ? state.sessions[e.session_id] : undefined;
  if (session && e.status === "accepted") {
    state.sessions = {
      ...state.sessions,
      [session.id]: {
        ...session,
        // Starting ends with its first send, which publishes no event of
        // its own: a session whose messages are accepted runs.
        state: session.state === "starting" ? "running" : session.state,
        counters: {
          ...session.counters,
          submitted: session.counters.submitted + 1,
          accepted: session.counters.accepted + 1,
        },
        next_seq: session.next_seq + 1,
      },
    };
  }
}

function pushToast(state: LiveState, tone: Toast["tone"], text: string, href?: string): void {
  const toast: Toast = { id: state.nextToast, tone, text, ...(href ? { href } : {}) };
  state.nextToast += 1;
  state.toasts = [...state.toasts, toast].slice(-MAX_TOASTS);
}

const sessionName = (e: { country: string; operator: string }) => `${e.country} / ${e.operator}`;

function applySession(state: LiveState, e: SessionEvent): void {
  const known = state.sessions[e.session_id];
  if (known) {
    state.sessions = {
      ...state.sessions,
      [e.session_id]: {
        ...known,
        state: e.state,
        reason: e.reason ?? known.reason,
        next_seq: e.next_seq ?? known.next_seq,
        counters: e.counters ?? known.counters,
        updated_at: e.occurred_at,
      },
    };
  } else {
    // A session this page has not loaded yet: the next reload brings it.
    state.stale += 1;
  }
  const step = e.type.slice("session.".length);
  const tone = step === "failed" ? "bad" : step === "stopped" ? "info" : "good";
  const why = e.reason ? `: ${e.reason}` : "";
  pushToast(state, tone, `Session on ${sessionName(e)} ${step}${why}`, `/sessions/${e.session_id}`);
}

function applyAlert(state: LiveState, alert: Alert): void {
  const open = { ...state.openAlerts };
  const where = alert.country ? ` on ${alert.country} / ${alert.operator ?? ""}` : "";
  if (alert.state === "open") {
    const isNew = !open[alert.id];
    open[alert.id] = alert;
    if (isNew) pushToast(state, "bad", `Alert${where}: ${alert.message}`, "/alerts");
  } else {
    delete open[alert.id];
    const text =
      alert.rule === "manual" ? `Notice: ${alert.message}` : `Alert resolved${where}: ${alert.rule.replaceAll("_", " ")}`;
    pushToast(state, alert.rule === "manual" ? "info" : "good", text, "/alerts");
  }
  state.openAlerts = open;
}

function pruneTally(tally: Tally, now: number): Tally {
  const oldest = now - TALLY_KEEP_MS;
  const pruned: Tally = {};
  for (const [scope, buckets] of Object.entries(tally)) {
    const kept = Object.entries(buckets).filter(([minute]) => Number(minute) >= oldest);
    if (kept.length > 0) pruned[scope] = Object.fromEntries(kept);
  }
  return pruned;
}

function byId<T extends { id: string }>(items: T[]): Record<string, T> {
  return Object.fromEntries(items.map((item) => [item.id, item]));
}

export function reducer(state: LiveState, action: Action): LiveState {
  switch (action.type) {
    case "connection":
      if (state.connection === action.connection) return state;
      return {
        ...state,
        connection: action.connection,
        // Back after a gap: what happened meanwhile comes from a reload.
        stale: action.connection === "live" && state.connection !== "connecting" ? state.stale + 1 : state.stale,
      };
    case "messages": {
      const next = { ...state, version: state.version + 1 };
      for (const message of action.messages) {
        if (isSmsEvent(message)) applySms(next, message.event);
        else if (isSessionEvent(message)) applySession(next, message.event);
        else if (message.type === "alert" && "alert" in message) applyAlert(next, message.alert);
        else if (message.type === "lagged") next.stale += 1;
        else {
          const family = changeFamily(message);
          if (family) next.changes = { ...next.changes, [family]: next.changes[family] + 1 };
        }
      }
      return next;
    }
    case "summary":
      // Each reload (every 30 s at least) drops the live counts too old to chart.
      return {
        ...state,
        tally: pruneTally(state.tally, Date.now()),
        summary: Object.fromEntries(action.items.map((p) => [p.country_operator_id, p])),
      };
    case "sessions":
      return { ...state, sessions: byId(action.items) };
    case "session":
      return { ...state, sessions: { ...state.sessions, [action.session.id]: action.session } };
    case "alerts":
      return { ...state, openAlerts: byId(action.items.filter((a) => a.state === "open")) };
    case "toast": {
      const next = { ...state };
      pushToast(next, action.tone, action.text, action.href);
      return next;
    }
    case "dismiss":
      return { ...state, toasts: state.toasts.filter((t) => t.id !== action.id) };
    case "reset":
      return initialState;
  }
}

/// The live counts of `scope` ("*" or a pair id) added to fetched buckets
/// of `bucketMs`, counting only what arrived after `baseline` was taken.
export function liveDelta(tally: Tally, baseline: Tally, scope: string, bucketMs: number): Map<number, Counts> {
  const out = new Map<number, Counts>();
  const now = tally[scope] ?? {};
  const before = baseline[scope] ?? {};
  for (const [minute, counts] of Object.entries(now)) {
    const was = before[Number(minute)] ?? emptyCounts();
    const bucket = Math.floor(Number(minute) / bucketMs) * bucketMs;
    const sum = out.get(bucket) ?? emptyCounts();
    out.set(bucket, {
      sent: sum.sent + counts.sent - was.sent,
      delivered: sum.delivered + counts.delivered - was.delivered,
      undelivered: sum.undelivered + counts.undelivered - was.undelivered,
      failed: sum.failed + counts.failed - was.failed,
    });
  }
  return out;
}

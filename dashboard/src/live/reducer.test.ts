import { describe, expect, it } from "vitest";
import type { Alert, Session } from "../api/types";
import { initialState, liveDelta, reducer, type LiveMessage } from "./reducer";

const pair = { country_operator_id: "p1", country: "GB", operator: "Vodafone" };
const at = "2026-12-03T12:00:30Z";
const sms = (status: string, extra: object = {}): LiveMessage => ({
  type: `sms.${status}`,
  event: { ...pair, type: `sms.${status}`, status, occurred_at: at, ...extra },
});

const session: Session = {
  id: "s1",
  ...pair,
  is_high_priority: false,
  state: "running",
  paused_reason: null,
  reason: null,
  config: { rate_per_minute: 60, template: "Hi", recipients: { numbers: ["+447700900001"] }, limit: null, stop_at: null },
  counters: { submitted: 3, accepted: 3, failed: 0 },
  next_seq: 3,
  last_error: null,
  effective_rate_per_minute: 60,
  started_at: at,
  stopped_at: null,
  started_by: "u1",
  stopped_by: null,
  created_at: at,
  updated_at: at,
} as unknown as Session;

const alert = (state: string): Alert => ({
  id: "a1",
  rule: "success_rate",
  country_operator_id: "p1",
  country: "GB",
  operator: "Vodafone",
  state,
  opened_at: at,
  resolved_at: null,
  message: "success rate 40 %",
  delivery: "sent",
});

describe("the live reducer", () => {
  it("counts each SMS event into the pair's totals and its success rate", () => {
    const s = reducer(initialState, {
      type: "messages",
      messages: [sms("accepted"), sms("accepted"), sms("delivered"), sms("failed", { error_code: "30003" })],
    });
    expect(s.summary.p1).toMatchObject({ sms_sent: 2, delivered: 1, failed: 1, success_rate: 0.5 });
    expect(s.summary.p1?.top_errors).toEqual([{ code: "30003", count: 1 }]);
    expect(s.version).toBe(1);
  });

  it("moves a running session's counters with its accepted messages", () => {
    let s = reducer(initialState, { type: "sessions", items: [session] });
    s = reducer(s, { type: "messages", messages: [sms("accepted", { session_id: "s1" }), sms("delivered", { session_id: "s1" })] });
    expect(s.sessions.s1?.counters).toEqual({ submitted: 4, accepted: 4, failed: 0 });
    const starting = reducer(initialState, { type: "sessions", items: [{ ...session, state: "starting" }] });
    const first = reducer(starting, { type: "messages", messages: [sms("accepted", { session_id: "s1" })] });
    expect(first.sessions.s1?.state).toBe("running");
  });

  it("applies a session's state change and says so once", () => {
    let s = reducer(initialState, { type: "sessions", items: [session] });
    s = reducer(s, {
      type: "messages",
      messages: [{ type: "session.stopped", event: { ...pair, type: "session.stopped", occurred_at: at, session_id: "s1", state: "stopped", reason: "stopped on request" } }],
    });
    expect(s.sessions.s1?.state).toBe("stopped");
    expect(s.toasts).toHaveLength(1);
    expect(s.toasts[0]?.text).toContain("stopped: stopped on request");
  });

  it("opens and resolves alerts with one toast each", () => {
    let s = reducer(initialState, { type: "messages", messages: [{ type: "alert", alert: alert("open") }] });
    s = reducer(s, { type: "messages", messages: [{ type: "alert", alert: alert("open") }] });
    expect(Object.keys(s.openAlerts)).toEqual(["a1"]);
    expect(s.toasts).toHaveLength(1);
    s = reducer(s, { type: "messages", messages: [{ type: "alert", alert: alert("resolved") }] });
    expect(s.openAlerts).toEqual({});
    expect(s.toasts.map((t) => t.tone)).toEqual(["bad", "good"]);
  });

  it("asks for a reload after a lagged feed or a reconnect", () => {
    let s = reducer(initialState, { type: "messages", messages: [{ type: "lagged", missed: 12 }] });
    expect(s.stale).toBe(1);
    s = reducer(s, { type: "connection", connection: "live" });
    expect(s.stale).toBe(1);
    s = reducer(s, { type: "connection", connection: "reconnecting" });
    s = reducer(s, { type: "connection", connection: "live" });
    expect(s.stale).toBe(2);
  });

  it("keeps at most five toasts", () => {
    let s = initialState;
    for (let i = 0; i < 8; i++) s = reducer(s, { type: "toast", tone: "info", text: `t${i}` });
    expect(s.toasts.map((t) => t.text)).toEqual(["t3", "t4", "t5", "t6", "t7"]);
  });

  it("adds to a chart only what came after its fetch", () => {
    const now = new Date().toISOString();
    let s = reducer(initialState, { type: "messages", messages: [sms("accepted", { occurred_at: now })] });
    const baseline = s.tally;
    s = reducer(s, { type: "messages", messages: [sms("accepted", { occurred_at: now }), sms("delivered", { occurred_at: now })] });
    const delta = [...liveDelta(s.tally, baseline, "p1", 60_000).values()];
    expect(delta).toEqual([{ sent: 1, delivered: 1, undelivered: 0, failed: 0 }]);
    expect([...liveDelta(s.tally, {}, "*", 3_600_000).values()][0]?.sent).toBe(2);
  });

  it("counts directory changes by family, for the views that list them", () => {
    const change = (type: string): LiveMessage => ({ type, event: { type, occurred_at: at, target: "x", actor_email: "a@b" } });
    const s = reducer(initialState, { type: "messages", messages: [change("pair.created"), change("user.role_changed"), change("pair.deleted")] });
    expect(s.changes).toMatchObject({ pair: 2, user: 1, invitation: 0 });
    expect(s.toasts).toEqual([]);
  });
});

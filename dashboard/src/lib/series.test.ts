import { expect, it } from "vitest";
import { columns } from "./series";

const now = Date.parse("2026-12-03T12:30:20Z");
const point = (at: string, delivered: number, failed: number) => ({
  at,
  sms_sent: delivered + failed,
  delivered,
  undelivered: 0,
  failed,
  success_rate: delivered / (delivered + failed),
});

it("spaces buckets evenly over the window, empty ones as zero", () => {
  const c = columns([point("2026-12-03T12:29:00Z", 3, 1)], new Map(), "1h", now);
  expect(c.x).toHaveLength(60);
  expect(c.x.at(-1)).toBe(Date.parse("2026-12-03T12:30:00Z") / 1000);
  expect(c.sent.at(-2)).toBe(4);
  expect(c.success.at(-2)).toBe(0.75);
  expect(c.success.at(-1)).toBeNull();
});

it("adds what the feed counted since the fetch", () => {
  const minute = Date.parse("2026-12-03T12:30:00Z");
  const live = new Map([[minute, { sent: 2, delivered: 1, undelivered: 0, failed: 1 }]]);
  const c = columns([], live, "1h", now);
  expect(c.sent.at(-1)).toBe(2);
  expect(c.success.at(-1)).toBe(0.5);
});

it("uses hour buckets for a week", () => {
  expect(columns([], new Map(), "7d", now).x).toHaveLength(168);
});

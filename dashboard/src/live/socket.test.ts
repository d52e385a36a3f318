import { expect, it } from "vitest";
import { backoff } from "./socket";

it("backs off from half a second to half a minute, with jitter", () => {
  expect(backoff(0, 0.5)).toBe(500);
  expect(backoff(3, 0.5)).toBe(4000);
  expect(backoff(99, 0.5)).toBe(30000);
  expect(backoff(99, 0)).toBe(22500);
  expect(backoff(99, 1)).toBe(37500);
});

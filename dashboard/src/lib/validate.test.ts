import { expect, it } from "vitest";
import { checkSession, type SessionForm } from "./validate";

const form: SessionForm = {
  pair: "p1",
  rate: "60",
  mode: "range",
  first: "+447700900000",
  count: "100",
  numbers: "",
  template: "Hello {n}",
  limit: "",
  stopAt: "",
};

it("builds the API's body from a good form", () => {
  const { problems, body } = checkSession(form);
  expect(problems).toEqual({});
  expect(body).toEqual({
    country_operator_id: "p1",
    rate_per_minute: 60,
    recipients: { range: { first: "+447700900000", count: 100 } },
    template: "Hello {n}",
  });
});

it("names each field that the API would refuse", () => {
  const { problems, body } = checkSession({ ...form, pair: "", rate: "0", first: "07700", template: " ", limit: "2.5" });
  expect(body).toBeNull();
  expect(Object.keys(problems).sort()).toEqual(["first", "limit", "pair", "rate", "template"]);
});

it("keeps a range within the numbers its first number leaves", () => {
  expect(checkSession({ ...form, first: "+99999998", count: "2" }).problems.count).toBeUndefined();
  expect(checkSession({ ...form, first: "+99999998", count: "10000" }).problems.count).toMatch(/At most/);
});

it("takes a list, a limit and a stop time", () => {
  const now = new Date("2026-12-03T12:00:00Z");
  const { body } = checkSession(
    { ...form, mode: "list", numbers: "+447700900001, +447700900002\n+447700900003", limit: "10", stopAt: "2026-12-04T12:00" },
    now,
  );
  expect(body?.recipients).toEqual({ numbers: ["+447700900001", "+447700900002", "+447700900003"] });
  expect(body?.limit).toBe(10);
  expect(body?.stop_at).toMatch(/^2026-12-04T/);
  expect(checkSession({ ...form, stopAt: "2026-12-01T12:00" }, now).problems.stopAt).toBe("A time in the future.");
});

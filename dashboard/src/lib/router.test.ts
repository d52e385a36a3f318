import { expect, it } from "vitest";
import { match } from "./router";

it("matches routes and decodes their parameters", () => {
  expect(match("/pairs/:id", "/pairs/a%20b")).toEqual({ id: "a b" });
  expect(match("/pairs/:id", "/pairs")).toBeNull();
  expect(match("/", "/")).toEqual({});
  expect(match("/sessions", "/pairs")).toBeNull();
});

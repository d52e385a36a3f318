import { describe, expect, it } from "vitest";
import { duration, localTime, pairName, percent, relative, successRate, utcTime } from "./format";

describe("times", () => {
  it("name their zone and give UTC for the hover", () => {
    const at = "2026-12-03T12:49:05.123Z";
    expect(utcTime(at)).toBe("2026-12-03 12:49:05 UTC");
    expect(localTime(at, new Date(at))).toMatch(/\d\d:\d\d:\d\d/);
    expect(localTime(at, new Date(at))).toMatch(/[A-Z]{2,}|GMT|UTC/);
    expect(localTime(null)).toBe("");
    expect(localTime("not a time")).toBe("not a time");
  });
  it("say how long ago", () => {
    const now = new Date("2026-12-03T12:00:00Z");
    expect(relative("2026-12-03T11:59:30Z", now)).toBe("30 s ago");
    expect(relative("2026-12-03T09:00:00Z", now)).toBe("3 h ago");
  });
});

describe("numbers", () => {
  it("show a rate as a percentage and none as a dash", () => {
    expect(percent(0.9234)).toBe("92.3 %");
    expect(percent(null)).toBe("–");
    expect(successRate(0, 0, 0)).toBeNull();
    expect(successRate(3, 1, 0)).toBe(0.75);
    expect(pairName({ country: "GB", operator: "Vodafone" })).toBe("GB / Vodafone");
  });
  it("show a latency in the unit it reads best in", () => {
    expect(duration(412.4)).toBe("412 ms");
    expect(duration(3061)).toBe("3.1 s");
    expect(duration(600_000)).toBe("10.0 min");
    expect(duration(undefined)).toBe("–");
  });
});

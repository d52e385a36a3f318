import { describe, expect, it } from "vitest";
import { countBody, isE164 } from "./segments";

describe("countBody", () => {
  it("counts GSM-7 text as sms-svc does", () => {
    expect(countBody("")).toMatchObject({ chars: 0, segments: 0 });
    expect(countBody("a".repeat(160))).toMatchObject({ segments: 1, encoding: "GSM-7", left: 0 });
    expect(countBody("a".repeat(161))).toMatchObject({ segments: 2, left: 306 - 161 });
    expect(countBody("£€ é")).toMatchObject({ encoding: "GSM-7" });
  });
  it("counts anything else as UCS-2 by characters, not UTF-16 units", () => {
    expect(countBody("Привет")).toMatchObject({ chars: 6, segments: 1, encoding: "UCS-2" });
    expect(countBody("😀".repeat(70))).toMatchObject({ chars: 70, segments: 1 });
    expect(countBody("я".repeat(71))).toMatchObject({ segments: 2 });
  });
});

describe("isE164", () => {
  it("takes what the API takes", () => {
    expect(isE164(" +447700900123 ")).toBe(true);
    for (const bad of ["447700900123", "+0447700", "+1234567890123456", "+44 7700 900123", "+4"]) {
      expect(isE164(bad)).toBe(false);
    }
  });
});

import { describe, expect, it } from "vitest";
import { countBody, isE164 } from "./segments";

describe("countBody", () => {
  it("counts GSM-7 text as sms-svc does", () => {
    expect(countBody("")).toMatchObject({ chars: 0, segments: 0 });
    expect(countBody("a".repeat(160))).toMatchObject({ segments: 1, encoding: "GSM-7", left: 0 });
    expect(countBody("a".repeat(161))).toMatchObject({ segments: 2, left: 306 - 161 });
    expect(countBody("£€ é¡")).toMatchObject({ encoding: "GSM-7" });
  });
  it("gets right what the old count got wrong", () => {
    // Extension characters are two septets each.
    expect(countBody("{".repeat(160))).toMatchObject({ encoding: "GSM-7", segments: 3 });
    // An emoji is two UTF-16 units.
    expect(countBody("😀".repeat(36))).toMatchObject({ encoding: "UCS-2", segments: 2 });
    // A backtick is in neither GSM table.
    expect(countBody(`${"a".repeat(150)}\``)).toMatchObject({ encoding: "UCS-2", segments: 3, ucs2Because: ["`"] });
    // ¡ is in the basic table.
    expect(countBody(`¡${"a".repeat(179)}`)).toMatchObject({ encoding: "GSM-7", segments: 2 });
  });
  it("counts anything else as UCS-2 in UTF-16 units", () => {
    expect(countBody("Привет")).toMatchObject({ chars: 6, segments: 1, encoding: "UCS-2" });
    expect(countBody("я".repeat(71))).toMatchObject({ segments: 2 });
    expect(countBody("я".repeat(300))).toMatchObject({ segments: 5 });
    // No escape pair split: 152 septets, then € moves to the next part.
    expect(countBody(`${"a".repeat(152)}€${"a".repeat(152)}`)).toMatchObject({ segments: 3 });
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

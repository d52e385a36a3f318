// The same count sms-svc makes (sms-svc/src/core/segments.rs), so the send
// form shows what the message will cost before it is sent: GSM 7-bit when
// every character is in the GSM 03.38 basic table or its extension (two
// septets each), UCS-2 otherwise, counted in UTF-16 units (an emoji is two);
// 160 septets or 70 units in one part, 153 or 67 per concatenated part, and
// no escape pair or surrogate pair split between parts.

export const MAX_BODY_CHARS = 1600;
const BASIC_EXTRA = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r";
const ASCII_NOT_BASIC = "[\\]^`{|}~";
const EXTENSION = "^{}\\[~]|€\f";

/// Septets a character takes in GSM 7-bit, or null outside the alphabet.
function septets(c: string): number | null {
  if (EXTENSION.includes(c)) return 2;
  const code = c.codePointAt(0) ?? 0;
  const ascii = code >= 32 && code < 127 && !ASCII_NOT_BASIC.includes(c);
  return ascii || BASIC_EXTRA.includes(c) ? 1 : null;
}

/// Parts for units of these widths, none split between two parts.
function parts(widths: number[], single: number, multi: number): number {
  if (widths.length === 0) return 0;
  const total = widths.reduce((a, b) => a + b, 0);
  if (total <= single) return 1;
  let count = 1;
  let used = 0;
  for (const width of widths) {
    if (used + width > multi) {
      count += 1;
      used = 0;
    }
    used += width;
  }
  return count;
}

export interface BodyCount {
  chars: number;
  segments: number;
  encoding: "GSM-7" | "UCS-2";
  /// Septets (GSM-7) or UTF-16 units (UCS-2) left before another part starts.
  left: number;
  /// The characters that forced UCS-2, each once.
  ucs2Because: string[];
}

export function countBody(body: string): BodyCount {
  const chars = [...body];
  const because = [...new Set(chars.filter((c) => septets(c) === null))];
  const gsm = because.length === 0;
  const widths = chars.map((c) => (gsm ? (septets(c) ?? 1) : c.length));
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  const segments = parts(widths, single, multi);
  const used = widths.reduce((a, b) => a + b, 0);
  const capacity = segments <= 1 ? single : segments * multi;
  return {
    chars: chars.length,
    segments,
    encoding: gsm ? "GSM-7" : "UCS-2",
    left: Math.max(0, capacity - used),
    ucs2Because: because,
  };
}

/// '+', a non-zero digit, 1 to 14 more digits: the API's E.164 check.
export function isE164(raw: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(raw.trim());
}

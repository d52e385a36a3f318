// The same count sms-svc makes (sms-svc/src/core/validate.rs), so the send
// form shows what the message will cost before it is sent.

export const MAX_BODY_CHARS = 1600;
const GSM7_EXTRA = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà€";

function isGsm7(c: string): boolean {
  const code = c.codePointAt(0) ?? 0;
  if (code < 128) return c === "\n" || c === "\r" || (code >= 32 && code !== 127);
  return GSM7_EXTRA.includes(c);
}

export interface BodyCount {
  chars: number;
  segments: number;
  encoding: "GSM-7" | "UCS-2";
  /// Characters left before the next segment starts.
  left: number;
}

export function countBody(body: string): BodyCount {
  const chars = [...body];
  const gsm = chars.every(isGsm7);
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  const n = chars.length;
  const segments = n === 0 ? 0 : n <= single ? 1 : Math.ceil(n / multi);
  const capacity = segments <= 1 ? single : segments * multi;
  return { chars: n, segments, encoding: gsm ? "GSM-7" : "UCS-2", left: capacity - n };
}

/// '+', a non-zero digit, 1 to 14 more digits: the API's E.164 check.
export function isE164(raw: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(raw.trim());
}

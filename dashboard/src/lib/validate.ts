// The start-session form checks what process-svc checks
// (process-svc/src/core/plan.rs), so a mistake is shown at its field before
// anything is sent; the API stays the judge.
/// process-svc's own rule for session numbers: '+' and 8 to 15 digits, the
/// first not 0; spaces and dashes dropped.
export function sessionNumber(raw: string): string | null {
  const n = raw.replace(/[\s-]/g, "");
  return /^\+[1-9]\d{7,14}$/.test(n) ? n : null;
}

export const MIN_RATE = 1 / 60;
export const MAX_RATE = 600_000;
export const MAX_NUMBERS = 10_000;
export const MAX_BODY = 1600;

export interface SessionForm {
  pair: string;
  rate: string;
  mode: "range" | "list";
  first: string;
  count: string;
  numbers: string;
  template: string;
  limit: string;
  /// From a datetime-local input: the browser's zone.
  stopAt: string;
}

export interface NewSessionBody {
  country_operator_id: string;
  rate_per_minute: number;
  recipients: { range: { first: string; count: number } } | { numbers: string[] };
  template: string;
  limit?: number;
  stop_at?: string;
}

export type Problems = Partial<Record<keyof SessionForm, string>>;

export function checkSession(
  form: SessionForm,
  now: Date = new Date(),
): { problems: Problems; body: NewSessionBody | null } {
  const problems: Problems = {};
  if (!form.pair) problems.pair = "Choose a pair.";
  const rate = Number(form.rate);
  if (!form.rate.trim() || !Number.isFinite(rate) || rate < MIN_RATE || rate > MAX_RATE) {
    problems.rate = "From 1/60 (one an hour) to 600,000 a minute.";
  }
  let recipients: NewSessionBody["recipients"] | null = null;
  if (form.mode === "range") {
    const count = Number(form.count);
    const first = sessionNumber(form.first);
    if (!first) problems.first = "An E.164 number such as +447700900000.";
    if (!Number.isInteger(count) || count < 1) problems.count = "A whole number, 1 or more.";
    else if (first) {
      const digits = first.slice(1);
      const room = 10 ** digits.length - Number(digits);
      if (count > room) problems.count = `At most ${room.toLocaleString("en")} from that first number.`;
    }
    if (!problems.first && !problems.count) recipients = { range: { first: first ?? "", count } };
  } else {
    const numbers = form.numbers
      .split(/[\s,;]+/)
      .map((n) => n.trim())
      .filter(Boolean);
    const bad = numbers.find((n) => !sessionNumber(n));
    if (numbers.length === 0) problems.numbers = "At least one number.";
    else if (bad) problems.numbers = `${bad} is not an E.164 number.`;
    else if (numbers.length > MAX_NUMBERS) problems.numbers = `At most ${MAX_NUMBERS.toLocaleString("en")}; use a range.`;
    else recipients = { numbers };
  }
  if (!form.template.trim()) problems.template = "Say what to send; {n} becomes the message's number.";
  else if ([...form.template].length > MAX_BODY) problems.template = `At most ${MAX_BODY} characters.`;
  let limit: number | undefined;
  if (form.limit.trim()) {
    limit = Number(form.limit);
    if (!Number.isInteger(limit) || limit < 1) problems.limit = "A whole number, 1 or more, or empty for none.";
  }
  let stopAt: string | undefined;
  if (form.stopAt) {
    const at = new Date(form.stopAt);
    if (Number.isNaN(at.getTime())) problems.stopAt = "Not a time.";
    else if (at <= now) problems.stopAt = "A time in the future.";
    else stopAt = at.toISOString();
  }
  if (Object.keys(problems).length > 0 || !recipients) return { problems, body: null };
  return {
    problems,
    body: {
      country_operator_id: form.pair,
      rate_per_minute: rate,
      recipients,
      template: form.template,
      ...(limit !== undefined ? { limit } : {}),
      ...(stopAt ? { stop_at: stopAt } : {}),
    },
  };
}

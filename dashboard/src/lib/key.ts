/// A random idempotency key. crypto.randomUUID needs a secure context, which
/// a plain-http deployment is not; getRandomValues works everywhere.
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

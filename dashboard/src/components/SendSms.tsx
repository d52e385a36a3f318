import { useState, type FormEvent } from "react";
import type { Pair } from "../api/types";
import { useApp } from "../app/context";
import { count } from "../lib/format";
import { countBody, isE164, MAX_BODY_CHARS } from "../lib/segments";
import { Field } from "./Field";
import { PairSelect } from "./PairSelect";
import { newKey } from "../lib/key";

/// Sends one SMS. The form empties once the API has taken it, so a second
/// click cannot send it twice; an idempotency key makes a retried click of
/// the same message harmless too.
export function SendSms({ pairs, onSent }: { pairs: Pair[]; onSent(id: string): void }) {
  const { client, dispatch, report } = useApp();
  const [pair, setPair] = useState("");
  const [to, setTo] = useState("");
  const [body, setBody] = useState("");
  const [key, setKey] = useState(() => newKey());
  const [problems, setProblems] = useState<{ pair?: string; to?: string; body?: string }>({});
  const [busy, setBusy] = useState(false);
  const counted = countBody(body);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found: typeof problems = {};
    if (!pair) found.pair = "Choose a pair.";
    if (!isE164(to)) found.to = "An E.164 number such as +447700900123.";
    if (!body.trim()) found.body = "Say something.";
    else if (counted.chars > MAX_BODY_CHARS) found.body = `At most ${MAX_BODY_CHARS} characters.`;
    setProblems(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      const sms = await client.call("post", "/api/v1/sms", {
        body: { country_operator_id: pair, to: to.trim(), body, idempotency_key: key },
      });
      dispatch({ type: "toast", tone: "good", text: `Sent to ${sms.to}: ${sms.status}`, href: `/messages/${sms.id}` });
      setTo("");
      setBody("");
      setKey(newKey());
      onSent(sms.id);
    } catch (err) {
      report(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="new-sms" className="card form" onSubmit={submit} noValidate>
      <h2>Send one SMS</h2>
      <Field id="sms-pair" label="Pair" problem={problems.pair}>
        <PairSelect id="sms-pair" pairs={pairs} value={pair} onChange={setPair} invalid={!!problems.pair} />
      </Field>
      <Field id="sms-to" label="To" problem={problems.to}>
        <input id="sms-to" name="to" placeholder="+447700900123" inputMode="tel" value={to} onChange={(e) => setTo(e.target.value)} />
      </Field>
      <Field
        id="sms-body"
        label="Body"
        problem={problems.body}
        hint={
          <span id="sms-count">
            {count(counted.chars)} characters, {counted.segments} segment{counted.segments === 1 ? "" : "s"} ({counted.encoding}),{" "}
            {counted.left} left in this one
            {counted.ucs2Because.length > 0 && `; UCS-2 because of ${counted.ucs2Because.slice(0, 5).join(" ")}`}
          </span>
        }
      >
        <textarea id="sms-body" name="body" rows={3} value={body} onChange={(e) => setBody(e.target.value)} />
      </Field>
      <button disabled={busy}>{busy ? "Sending…" : "Send SMS"}</button>
    </form>
  );
}

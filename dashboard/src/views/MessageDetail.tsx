import { useApp } from "../app/context";
import { Chip } from "../components/Chip";
import { Loading, Problem } from "../components/Problem";
import { Time } from "../components/Time";
import { pairName } from "../lib/format";
import { Link } from "../lib/router";
import { useLoad } from "../lib/useLoad";
import { useThrottled } from "../lib/useThrottled";

/// One message and every status it went through.
export function MessageDetail({ id }: { id: string }) {
  const { client, live } = useApp();
  const follow = useThrottled(live.version, 1000);
  const detail = useLoad(() => client.call("get", "/api/v1/sms/{id}", { path: { id } }), [client, id, follow]);
  const m = detail.data;
  return (
    <section aria-labelledby="message-title">
      <p className="crumbs">
        <Link to="/messages">Messages</Link> /
      </p>
      <h1 id="message-title">Message to {m ? <span className="mono">{m.to}</span> : "…"}</h1>
      <Problem error={detail.error} what="the message" />
      {!detail.data && detail.loading && <Loading />}
      {m && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <Chip status={m.status} /> {m.error_code && `${m.error_code} ${m.error_message ?? ""}`}
            </dd>
            <dt>Pair</dt>
            <dd>
              <Link to={`/pairs/${m.country_operator_id}`}>{pairName(m)}</Link>
            </dd>
            <dt>Length</dt>
            <dd>
              {m.body_length} characters, {m.segments} segment{m.segments === 1 ? "" : "s"}
            </dd>
            <dt>Provider</dt>
            <dd>
              {m.provider} <span className="mono">{m.provider_sid ?? ""}</span>
              {m.route_reason && <span className="why"> ({m.route_reason.replaceAll("_", " ")})</span>}
            </dd>
            <dt>Session</dt>
            <dd>{m.session_id ? <Link to={`/sessions/${m.session_id}`}>{m.session_id}</Link> : "sent on its own"}</dd>
            <dt>Created</dt>
            <dd>
              <Time at={m.created_at} />
            </dd>
          </dl>
          <h2>Timeline</h2>
          <ol className="timeline" id="timeline">
            {m.history.map((h, i) => (
              <li key={i}>
                <Chip status={h.status} /> <Time at={h.occurred_at} />
                {h.error_code && <span className="why"> {h.error_code}</span>}
                {h.provider_status && <span className="muted"> provider said {h.provider_status}</span>}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

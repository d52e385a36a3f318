import { useApp } from "../app/context";
import { Chip } from "../components/Chip";
import { MessageTable } from "../components/MessageTable";
import { Loading, Problem } from "../components/Problem";
import { SessionActions } from "../components/SessionActions";
import { Time } from "../components/Time";
import { count, pairName } from "../lib/format";
import { Link } from "../lib/router";
import { useLoad } from "../lib/useLoad";
import { useThrottled } from "../lib/useThrottled";

function recipients(config: { recipients: unknown }): string {
  const r = config.recipients as { range?: { first: string; count: number }; numbers?: string[] } | string[];
  if (Array.isArray(r)) return `${r.length} numbers`;
  if (r.range) return `${count(r.range.count)} numbers from ${r.range.first}`;
  return `${r.numbers?.length ?? 0} numbers`;
}

export function SessionDetail({ id }: { id: string }) {
  const { client, live } = useApp();
  const loaded = useLoad(() => client.call("get", "/api/v1/sessions/{id}", { path: { id } }), [client, id]);
  // What the feed knows is newer than what was loaded.
  const s = live.sessions[id] ?? loaded.data;
  const state = s?.state;
  const audit = useLoad(() => client.call("get", "/api/v1/sessions/{id}/audit", { path: { id } }), [client, id, state]);
  const follow = useThrottled(live.version, 2000);
  const messages = useLoad(
    () => client.call("get", "/api/v1/sms", { query: { session_id: id, page_size: 10 } }),
    [client, id, follow],
  );
  return (
    <section aria-labelledby="session-title">
      <p className="crumbs">
        <Link to="/sessions">Sessions</Link> /
      </p>
      <div className="heading">
        <h1 id="session-title">Session on {s ? pairName(s) : "…"}</h1>
        {s && <SessionActions session={s} />}
      </div>
      <Problem error={loaded.error} what="the session" />
      {!s && loaded.loading && <Loading />}
      {s && (
        <>
          <dl className="totals" id="session-counters">
            <div>
              <dt>State</dt>
              <dd>
                <Chip status={s.state} />
              </dd>
            </div>
            <div>
              <dt>Submitted</dt>
              <dd>{count(s.counters.submitted)}</dd>
            </div>
            <div>
              <dt>Accepted</dt>
              <dd className="accepted">{count(s.counters.accepted)}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{count(s.counters.failed)}</dd>
            </div>
            <div>
              <dt>Rate now</dt>
              <dd>
                {s.effective_rate_per_minute.toFixed(1)} <small>of {s.config.rate_per_minute}/min</small>
              </dd>
            </div>
          </dl>
          <dl className="facts">
            {s.state === "paused" && (
              <>
                <dt>Waiting for</dt>
                <dd>{s.paused_reason}</dd>
              </>
            )}
            {s.reason && (
              <>
                <dt>Why it ended</dt>
                <dd>{s.reason}</dd>
              </>
            )}
            {s.last_error && (
              <>
                <dt>Last error</dt>
                <dd>{s.last_error}</dd>
              </>
            )}
            <dt>Recipients</dt>
            <dd>{recipients(s.config)}</dd>
            <dt>Template</dt>
            <dd className="mono">{s.config.template}</dd>
            <dt>Stops</dt>
            <dd>
              {s.config.limit ? `after ${count(s.config.limit)} messages` : "no limit"}
              {s.config.stop_at ? (
                <>
                  , at <Time at={s.config.stop_at} />
                </>
              ) : null}
            </dd>
            <dt>Started</dt>
            <dd>
              <Time at={s.started_at} />
            </dd>
            <dt>Stopped</dt>
            <dd>
              <Time at={s.stopped_at} />
            </dd>
          </dl>
        </>
      )}
      <h2>Audit trail</h2>
      <Problem error={audit.error} what="the audit trail" />
      <ol className="timeline" id="session-audit">
        {(audit.data?.items ?? []).map((a, i) => (
          <li key={i}>
            <Time at={a.at} /> <strong>{a.action}</strong> by {a.by_email ?? a.by}
            {a.forced && <span className="tag">forced past the pin</span>}
            {a.reason && <span className="why"> {a.reason}</span>}
          </li>
        ))}
      </ol>
      <h2>Latest messages</h2>
      <Problem error={messages.error} what="the messages" />
      {messages.data && <MessageTable id="session-messages" rows={messages.data.items} />}
    </section>
  );
}

import { useApp } from "../app/context";
import { Charts } from "../components/Charts";
import { Chip } from "../components/Chip";
import { MessageTable } from "../components/MessageTable";
import { Loading, Problem } from "../components/Problem";
import { RouteEditor } from "../components/RouteEditor";
import { SessionTable } from "../components/SessionTable";
import { StartSession } from "../components/StartSession";
import { Time } from "../components/Time";
import { WindowPicker } from "../components/WindowPicker";
import { count, duration, pairName, percent } from "../lib/format";
import { Link } from "../lib/router";
import { useLoad } from "../lib/useLoad";
import { useThrottled } from "../lib/useThrottled";

/// Everything about one pair: where an operator lands from any table.
export function PairDetail({ id }: { id: string }) {
  const { client, live, may, window } = useApp();
  const pair = useLoad(() => client.call("get", "/api/v1/country-operators/{id}", { path: { id } }), [client, id]);
  const follow = useThrottled(live.version, 2000);
  const messages = useLoad(
    () => client.call("get", "/api/v1/sms", { query: { country_operator_id: id, page_size: 10 } }),
    [client, id, follow],
  );
  const alerts = useLoad(
    () => client.call("get", "/api/v1/alerts", { query: { limit: 200 } }).then((a) => a.items.filter((x) => x.country_operator_id === id)),
    [client, id, Object.keys(live.openAlerts).join()],
  );
  const summary = live.summary[id];
  const sessions = Object.values(live.sessions).filter((s) => s.country_operator_id === id);
  const p = pair.data;
  return (
    <section aria-labelledby="pair-title">
      <p className="crumbs">
        <Link to="/pairs">Pairs</Link> /
      </p>
      <div className="heading">
        <h1 id="pair-title">
          {p ? pairName(p) : summary ? pairName(summary) : "…"}
          {p?.is_high_priority && <span className="tag">high priority</span>}
        </h1>
        <WindowPicker />
      </div>
      <Problem error={pair.error} what="the pair" />
      {!p && pair.loading && <Loading />}
      <dl className="totals">
        <div>
          <dt>Sent</dt>
          <dd>{count(summary?.sms_sent ?? 0)}</dd>
        </div>
        <div>
          <dt>Delivered</dt>
          <dd>{count(summary?.delivered ?? 0)}</dd>
        </div>
        <div>
          <dt>Failed</dt>
          <dd>{count((summary?.failed ?? 0) + (summary?.undelivered ?? 0))}</dd>
        </div>
        <div>
          <dt>Success, last {window}</dt>
          <dd>{summary && summary.delivered + summary.failed + summary.undelivered > 0 ? percent(summary.success_rate) : "–"}</dd>
        </div>
        <div>
          <dt>Delivered in (p50 / p95 / p99)</dt>
          <dd id="delivery-latency">
            {summary?.to_delivered
              ? [summary.to_delivered.p50_ms, summary.to_delivered.p95_ms, summary.to_delivered.p99_ms].map(duration).join(" / ")
              : "–"}
          </dd>
        </div>
      </dl>
      <Charts scope={id} />
      <h2>Top error codes</h2>
      {summary && summary.top_errors.length > 0 ? (
        <ul className="list" id="top-errors">
          {summary.top_errors.map((e) => (
            <li key={e.code}>
              <span className="mono">{e.code}</span> × {count(e.count)}
            </li>
          ))}
        </ul>
      ) : (
        <p className="empty">No errors in this window.</p>
      )}
      {p && <RouteEditor pair={p} saved={pair.reload} />}
      <h2>Sessions</h2>
      <SessionTable id="pair-sessions" rows={sessions} />
      {may.send && p && <StartSession pairs={[p]} pair={p.id} />}
      <h2>Latest messages</h2>
      <Problem error={messages.error} what="the messages" />
      {messages.data && <MessageTable id="pair-messages" rows={messages.data.items} />}
      <h2>Alerts</h2>
      <Problem error={alerts.error} what="the alerts" />
      {alerts.data && alerts.data.length === 0 && <p className="empty">No alerts on this pair.</p>}
      <ul className="list">
        {(alerts.data ?? []).map((a) => (
          <li key={a.id}>
            <Chip status={a.state} /> <Time at={a.opened_at} /> {a.message}
          </li>
        ))}
      </ul>
    </section>
  );
}

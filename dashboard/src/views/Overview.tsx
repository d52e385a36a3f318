import { useApp } from "../app/context";
import { Charts } from "../components/Charts";
import { Chip } from "../components/Chip";
import { PairTable } from "../components/PairTable";
import { Time } from "../components/Time";
import { WindowPicker } from "../components/WindowPicker";
import { count, pairName, percent, successRate } from "../lib/format";
import { Link } from "../lib/router";

export function Overview() {
  const { live, window } = useApp();
  const pairs = Object.values(live.summary);
  const total = pairs.reduce(
    (t, p) => ({
      sent: t.sent + p.sms_sent,
      delivered: t.delivered + p.delivered,
      undelivered: t.undelivered + p.undelivered,
      failed: t.failed + p.failed,
    }),
    { sent: 0, delivered: 0, undelivered: 0, failed: 0 },
  );
  const rate = successRate(total.delivered, total.undelivered, total.failed);
  const alerts = Object.values(live.openAlerts).sort((a, b) => b.opened_at.localeCompare(a.opened_at));
  const running = Object.values(live.sessions).filter((s) => ["running", "starting", "paused"].includes(s.state));
  return (
    <section aria-labelledby="overview-title">
      <div className="heading">
        <h1 id="overview-title">Overview</h1>
        <WindowPicker />
      </div>
      <dl className="totals" id="totals">
        <div>
          <dt>Sent</dt>
          <dd>{count(total.sent)}</dd>
        </div>
        <div>
          <dt>Delivered</dt>
          <dd>{count(total.delivered)}</dd>
        </div>
        <div>
          <dt>Failed</dt>
          <dd>{count(total.failed + total.undelivered)}</dd>
        </div>
        <div>
          <dt>Success rate</dt>
          <dd>{percent(rate)}</dd>
        </div>
      </dl>
      <Charts scope="*" />
      <h2>Pairs, last {window}</h2>
      <PairTable rows={pairs} />
      <div className="columns">
        <div>
          <h2>
            Open alerts <Link to="/alerts">all alerts</Link>
          </h2>
          {alerts.length === 0 ? (
            <p className="empty">No open alerts.</p>
          ) : (
            <ul className="list" id="open-alerts">
              {alerts.map((a) => (
                <li key={a.id}>
                  <Chip status="open" /> <Time at={a.opened_at} /> {a.country ? <strong>{pairName(a)}</strong> : null}{" "}
                  {a.message}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h2>
            Running sessions <Link to="/sessions">all sessions</Link>
          </h2>
          {running.length === 0 ? (
            <p className="empty">No session is running.</p>
          ) : (
            <ul className="list" id="running-sessions">
              {running.map((s) => (
                <li key={s.id}>
                  <Chip status={s.state} /> <Link to={`/sessions/${s.id}`}>{pairName(s)}</Link>{" "}
                  <span className="num">{count(s.counters.accepted)}</span> accepted at{" "}
                  {s.effective_rate_per_minute.toFixed(1)}/min
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>
    </section>
  );
}

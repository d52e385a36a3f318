import { useState } from "react";
import { useApp } from "../app/context";
import { usePairs } from "../app/usePairs";
import { MessageTable } from "../components/MessageTable";
import { Pager } from "../components/Pager";
import { PairSelect } from "../components/PairSelect";
import { Loading, Problem } from "../components/Problem";
import { SendSms } from "../components/SendSms";
import { usePages } from "../lib/usePages";
import { useThrottled } from "../lib/useThrottled";
import { useLoad } from "../lib/useLoad";

const STATUSES = ["accepted", "queued", "sent", "delivered", "undelivered", "failed"];
const PAGE = 25;

export function Messages() {
  const { client, may, live } = useApp();
  const pairs = usePairs();
  const [pair, setPair] = useState("");
  const [status, setStatus] = useState("");
  const pages = usePages();
  const { token: page, onFirst } = pages;
  // The newest page follows the feed; an older page stays put while read.
  const follow = useThrottled(onFirst ? live.version : 0, 2000);
  const messages = useLoad(
    () =>
      client.call("get", "/api/v1/sms", {
        query: { page_size: PAGE, country_operator_id: pair, status, page_token: page },
      }),
    [client, pair, status, page, follow],
  );
  const filter = (set: () => void) => {
    set();
    pages.newest();
  };
  return (
    <section aria-labelledby="messages-title">
      <div className="heading">
        <h1 id="messages-title">Messages</h1>
      </div>
      <form id="sms-filter" className="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label>
          Pair
          <PairSelect pairs={pairs.data ?? []} name="filter-pair" value={pair} onChange={(v) => filter(() => setPair(v))} anyLabel="every pair" />
        </label>
        <label>
          Status
          <select name="status" value={status} onChange={(e) => filter(() => setStatus(e.target.value))}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <Pager {...pages} next={messages.data?.next_page_token} id="sms" />
      </form>
      <Problem error={messages.error} what="the messages" />
      {messages.data ? <MessageTable rows={messages.data.items} /> : messages.loading && <Loading />}
      {may.send && <SendSms pairs={pairs.data ?? []} onSent={() => (onFirst ? messages.reload() : pages.newest())} />}
      {!may.send && <p className="muted">Viewers see numbers masked and cannot send.</p>}
    </section>
  );
}

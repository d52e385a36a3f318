// The smsops dashboard: plain JavaScript over the gateway's REST API, the
// same calls any client makes. Text from the server is only ever set with
// textContent, never parsed as HTML.
"use strict";

const API = "/api/v1";
// Without the live feed the page polls; with it, it refreshes soon after
// something happened, and now and then in case the feed missed something.
const POLL_MS = 5000;
const LIVE_SETTLE_MS = 2000;
const LIVE_SAFETY_MS = 30000;
const LIVE_RETRY_MS = 5000;
let timer = null;
let lastRefresh = 0;
let live = null;
let liveUp = false;
let liveRefresh = null;
// Who is signed in (GET /auth/me): the page offers only what the API lets
// this role do, so no one is shown a button that can only answer 403.
let me = null;
const isAdmin = () => me !== null && me.role === "admin";
const maySend = () => me !== null && (me.role === "admin" || me.role === "operator");

const $ = (selector) => document.querySelector(selector);

// Tokens live for this tab only.
const tokens = {
  get access() { return sessionStorage.getItem("access_token"); },
  get refresh() { return sessionStorage.getItem("refresh_token"); },
  save(view) {
    sessionStorage.setItem("access_token", view.access_token);
    sessionStorage.setItem("refresh_token", view.refresh_token);
  },
  clear() { sessionStorage.clear(); },
};

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.message} (${body.code || status})` : `HTTP ${status}`);
    this.status = status;
  }
}

async function call(method, path, body, retried) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const sent = tokens.access;
  if (sent) headers["Authorization"] = `Bearer ${sent}`;
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // An expired access token is renewed once with the refresh token; a call
  // that went out with a token that another call has renewed since retries
  // with the new one and renews nothing.
  if (response.status === 401 && !retried && sent) {
    if (tokens.access && tokens.access !== sent) return call(method, path, body, true);
    if (tokens.refresh && await renew()) return call(method, path, body, true);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// One renewal at a time: a refresh token is single use, and the server takes
// a second use as theft and revokes the whole sign-in. So the calls that meet
// a 401 together all wait for the same renewal, and if it fails the person is
// signed out once, not once per call.
let renewing = null;

function renew() {
  if (renewing === null) {
    renewing = renewNow().finally(() => { renewing = null; });
  }
  return renewing;
}

async function renewNow() {
  const response = await fetch(`${API}/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  });
  if (!response.ok) {
    signedOut();
    return false;
  }
  tokens.save(await response.json());
  return true;
}

function showError(err) {
  const box = $("#error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}

function button(row, label, action) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", () => run(action));
  row.appendChild(b);
}

function fill(table, items, render) {
  const body = $(`${table} tbody`);
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    render(row, item);
    body.appendChild(row);
  }
  if (items.length === 0) {
    const row = document.createElement("tr");
    cell(row, "none").colSpan = $(`${table} thead tr`).children.length;
    body.appendChild(row);
  }
}

// Which messages the table shows: a filter, and the page tokens walked
// back through (the last one is the page on screen).
const smsView = { pair: "", status: "", pages: [""], next: null };

function smsQuery() {
  const query = new URLSearchParams({ page_size: "20" });
  if (smsView.pair) query.set("country_operator_id", smsView.pair);
  if (smsView.status) query.set("status", smsView.status);
  const token = smsView.pages[smsView.pages.length - 1];
  if (token) query.set("page_token", token);
  return query.toString();
}

const percent = (x) => (x === null || x === undefined ? "" : `${(x * 100).toFixed(1)} %`);
const pairName = (x) => `${x.country} / ${x.operator}`;

async function refresh() {
  lastRefresh = Date.now();
  const window = $("#window").value;
  const [metrics, alerts, sessions, pairs, messages] = await Promise.all([
    call("GET", `/metrics/summary?window=${encodeURIComponent(window)}`),
    call("GET", "/alerts?state=open"),
    call("GET", "/sessions?page_size=100"),
    call("GET", "/country-operators?page_size=100"),
    call("GET", `/sms?${smsQuery()}`),
  ]);
  // Signed out while the calls were out: nothing of theirs goes back in.
  if (me === null) return;
  fill("#metrics", metrics.items, (row, m) => {
    cell(row, m.country);
    cell(row, m.operator);
    cell(row, m.sms_sent);
    cell(row, m.delivered);
    cell(row, m.undelivered);
    cell(row, m.failed);
    cell(row, percent(m.success_rate));
    const top = (m.top_errors || [])[0];
    cell(row, top ? `${top.code} × ${top.count}` : "");
  });
  fill("#alerts", alerts.items, (row, a) => {
    cell(row, new Date(a.opened_at).toLocaleString());
    cell(row, a.rule);
    cell(row, a.country ? pairName(a) : "");
    cell(row, a.message);
    cell(row, a.delivery);
  });
  fill("#sessions", sessions.items, (row, s) => {
    cell(row, pairName(s));
    cell(row, s.state);
    cell(row, s.config.rate_per_minute);
    cell(row, s.counters.submitted);
    cell(row, s.counters.accepted);
    cell(row, s.counters.failed);
    // A paused session says what it waits for; it resumes by itself.
    cell(row, s.state === "paused" ? `waiting: ${s.paused_reason}` : s.last_error);
    const actions = cell(row, "");
    // A session is its starter's and an admin's; a high-priority pair's is
    // an admin's alone, who must confirm overriding its pin.
    const mine = maySend() && s.started_by === me.id && !s.is_high_priority;
    if (!mine && !isAdmin()) return;
    const id = encodeURIComponent(s.id);
    const force = s.is_high_priority;
    const confirmed = () => !force || confirm(`${pairName(s)} is high priority. Override its pin?`);
    if (s.state === "running" || s.state === "paused" || s.state === "starting") {
      button(actions, "Stop", () => (confirmed() ? call("POST", `/sessions/${id}/stop`, { force }) : null));
    }
    button(actions, "Restart", () => (confirmed() ? call("POST", `/sessions/${id}/restart`, { force }) : null));
  });
  fill("#pairs", pairs.items, (row, p) => {
    cell(row, p.country);
    cell(row, p.operator);
    cell(row, p.is_high_priority ? "yes" : "no");
    const actions = cell(row, "");
    if (!isAdmin()) return;
    button(actions, "Delete", () => {
      if (!confirm(`Delete ${pairName(p)}?`)) return null;
      return call("DELETE", `/country-operators/${encodeURIComponent(p.id)}`);
    });
  });
  fill("#messages", messages.items, (row, m) => {
    cell(row, new Date(m.created_at).toLocaleString());
    cell(row, pairName(m));
    cell(row, m.to);
    cell(row, m.segments);
    cell(row, m.status);
    cell(row, m.error_code ? `${m.error_code} ${m.error_message || ""}` : "");
    cell(row, m.session_id ? "yes" : "");
  });
  smsView.next = messages.next_page_token || null;
  $("#sms-older").disabled = smsView.next === null;
  $("#sms-latest").disabled = smsView.pages.length === 1;
  for (const select of document.querySelectorAll("select[name=pair]")) {
    const chosen = select.value;
    select.replaceChildren(...pairs.items.map((p) => new Option(pairName(p), p.id)));
    if (chosen) select.value = chosen;
  }
  const filter = $("#sms-filter select[name=filter-pair]");
  filter.replaceChildren(new Option("all pairs", ""), ...pairs.items.map((p) => new Option(pairName(p), p.id)));
  filter.value = smsView.pair;
}

// The alert rules as a form, one fieldset per rule, built from whatever the
// API returns: a field the API adds shows up without a change here.
async function loadRules() {
  const rules = await call("GET", "/alerts/rules");
  const form = $("#rules");
  const fields = [];
  for (const [name, value] of Object.entries(rules)) {
    if (value !== null && typeof value === "object") {
      const set = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = name.replaceAll("_", " ");
      set.appendChild(legend);
      for (const [field, inner] of Object.entries(value)) set.appendChild(ruleInput(`${name}.${field}`, field, inner));
      fields.push(set);
    } else {
      fields.push(ruleInput(name, name, value));
    }
  }
  const save = document.createElement("button");
  save.textContent = "Save rules";
  fields.push(save);
  form.replaceChildren(...fields);
}

function ruleInput(path, name, value) {
  const label = document.createElement("label");
  const input = document.createElement("input");
  input.dataset.path = path;
  if (typeof value === "boolean") {
    input.type = "checkbox";
    input.checked = value;
  } else {
    input.type = "number";
    input.step = "any";
    input.value = value;
    input.required = true;
  }
  label.append(input, name.replaceAll("_", " "));
  if (input.type === "number") label.prepend(label.lastChild);
  return label;
}

function rulesFromForm() {
  const rules = {};
  for (const input of document.querySelectorAll("#rules input[data-path]")) {
    const path = input.dataset.path.split(".");
    let target = rules;
    for (const key of path.slice(0, -1)) target = target[key] ??= {};
    target[path[path.length - 1]] = input.type === "checkbox" ? input.checked : Number(input.value);
  }
  return rules;
}

// Users and API keys: admins only, so loaded at sign-in and after changes
// here rather than with every refresh.
async function loadAdmin() {
  const [users, keys, invitations] = await Promise.all([
    call("GET", "/users?page_size=100"),
    call("GET", "/api-keys"),
    call("GET", "/invitations"),
  ]);
  fill("#users", users.items, (row, u) => {
    cell(row, u.email);
    cell(row, u.role);
    cell(row, new Date(u.created_at).toLocaleString());
    const actions = cell(row, "");
    // smsops's own service account is managed by its config, not here.
    if (u.role === "service") return;
    for (const role of ["admin", "operator", "viewer"].filter((r) => r !== u.role)) {
      button(actions, `Make ${role}`, () => adminAction(
        () => call("PATCH", `/users/${encodeURIComponent(u.id)}`, { role })));
    }
    button(actions, "Delete", () => {
      if (!confirm(`Delete ${u.email}?`)) return null;
      return adminAction(() => call("DELETE", `/users/${encodeURIComponent(u.id)}`));
    });
  });
  fill("#invitations", invitations.items, (row, i) => {
    cell(row, i.role);
    cell(row, i.email || "anyone");
    cell(row, i.state);
    cell(row, new Date(i.expires_at).toLocaleString());
    const actions = cell(row, "");
    if (i.state === "pending") {
      button(actions, "Withdraw", () => adminAction(
        () => call("DELETE", `/invitations/${encodeURIComponent(i.id)}`)));
    }
  });
  fill("#api-keys", keys.items, (row, k) => {
    cell(row, k.name);
    cell(row, `${k.prefix}…`);
    cell(row, new Date(k.created_at).toLocaleString());
    cell(row, k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "never");
    const actions = cell(row, k.revoked_at ? `revoked ${new Date(k.revoked_at).toLocaleString()}` : "");
    if (!k.revoked_at) {
      button(actions, "Revoke", () => {
        if (!confirm(`Revoke ${k.name}? Whoever uses it is refused from now on.`)) return null;
        return adminAction(() => call("DELETE", `/api-keys/${encodeURIComponent(k.id)}`));
      });
    }
  });
}

async function adminAction(action) {
  await action();
  await loadAdmin();
}

// Runs an action, shows its error if any, then shows the new state.
async function run(action) {
  try {
    await action();
    showError(null);
    await refresh();
  } catch (err) {
    showError(err);
  }
}

// Follows the gateway's live feed (GET /api/v1/live, a WebSocket): any SMS,
// session, alert or metrics change brings a refresh within LIVE_SETTLE_MS.
// The token goes in the first message, not the URL, which proxies log.
function follow() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${API}/live`);
  live = socket;
  socket.addEventListener("open", () => socket.send(JSON.stringify({ token: tokens.access })));
  socket.addEventListener("message", (event) => {
    let message = null;
    try { message = JSON.parse(event.data); } catch (_) { return; }
    if (message.type === "ready") { showLive(true); return; }
    if (message.type === "following" || message.type === "error") return;
    if (liveRefresh === null) {
      liveRefresh = setTimeout(() => {
        liveRefresh = null;
        refresh().catch(showError);
      }, LIVE_SETTLE_MS);
    }
  });
  socket.addEventListener("close", () => {
    if (live !== socket) return;
    live = null;
    showLive(false);
    // Again later, with whatever token polling has renewed meanwhile.
    if (tokens.access) setTimeout(() => { if (live === null && tokens.access) follow(); }, LIVE_RETRY_MS);
  });
}

function showLive(up) {
  liveUp = up;
  $("#freshness").textContent = up ? "live" : "refreshed every 5 s";
}

function unfollow() {
  const socket = live;
  live = null;
  showLive(false);
  if (socket) socket.close();
}

function tick() {
  const due = liveUp ? LIVE_SAFETY_MS : POLL_MS;
  if (Date.now() - lastRefresh >= due - 100) refresh().catch(showError);
}

// Shows each element marked `data-roles="admin operator"` to those roles only.
function showForRole() {
  for (const element of document.querySelectorAll("[data-roles]")) {
    element.hidden = me === null || !element.dataset.roles.split(" ").includes(me.role);
  }
}

function signedOut() {
  tokens.clear();
  me = null;
  // What the last person saw (numbers, users, keys) must not stay in the
  // page for the next one.
  showForRole();
  for (const body of document.querySelectorAll("#app-view tbody")) body.replaceChildren();
  $("#rules").replaceChildren();
  $("#new-key").textContent = "";
  $("#new-key").hidden = true;
  $("#new-invitation").textContent = "";
  $("#new-invitation").hidden = true;
  unfollow();
  clearInterval(timer);
  $("#app-view").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#sign-in-view").hidden = false;
}

async function signedIn() {
  me = await call("GET", "/auth/me");
  $("#who").textContent = `${me.email} (${me.role})`;
  // Only admins may read the alert rules, so only they are shown the editor
  // and only their page asks for the rules: other roles see no 403.
  const admin = isAdmin();
  showForRole();
  $("#sign-in-view").hidden = true;
  $("#app-view").hidden = false;
  $("#sign-out").hidden = false;
  await refresh().catch(showError);
  if (admin) {
    await loadRules().catch(showError);
    await loadAdmin().catch(showError);
  }
  clearInterval(timer);
  timer = setInterval(tick, POLL_MS);
  if (live === null) follow();
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { email, password } = formValues(event.target);
    try {
      tokens.save(await call("POST", "/auth/sign-in", { email, password }));
      // The password must not wait in the form for the next person.
      event.target.reset();
      showError(null);
      await signedIn();
    } catch (err) {
      showError(err);
    }
  });
  $("#sign-out").addEventListener("click", async () => {
    const refresh_token = tokens.refresh;
    await call("POST", "/auth/sign-out", { refresh_token }).catch(() => null);
    signedOut();
  });
  $("#new-pair").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const v = formValues(form);
    run(async () => {
      await call("POST", "/country-operators", {
        country: v.country.trim(),
        operator: v.operator.trim(),
        is_high_priority: form.high.checked,
      });
      form.reset();
    });
  });
  $("#new-session").addEventListener("submit", (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    run(() => call("POST", "/sessions", {
      country_operator_id: v.pair,
      rate_per_minute: Number(v.rate),
      recipients: { range: { first: v.first.trim(), count: Number(v.count) } },
      template: v.template,
    }));
  });
  $("#new-sms").addEventListener("submit", (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    run(() => call("POST", "/sms", {
      country_operator_id: v.pair,
      to: v.to.trim(),
      body: v.body,
    }));
  });
  $("#new-api-key").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    run(async () => {
      const created = await call("POST", "/api-keys", { name: formValues(form).name.trim() });
      // The key itself is shown once, now; the API keeps only its hash.
      $("#new-key").textContent = `New key for ${created.name} (copy it now, it is not shown again): ${created.key}`;
      $("#new-key").hidden = false;
      form.reset();
      await loadAdmin();
    });
  });
  $("#invite").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    run(async () => {
      const v = formValues(form);
      const body = { role: v.role };
      if (v.email.trim()) body.email = v.email.trim();
      const created = await call("POST", "/invitations", body);
      // Like a new key, the invitation is shown once, now.
      $("#new-invitation").textContent = `Invitation for a new ${created.role} (give it to them now, it is not shown again): ${created.token}`;
      $("#new-invitation").hidden = false;
      form.reset();
      await loadAdmin();
    });
  });
  $("#sms-filter").addEventListener("change", (event) => {
    const v = formValues(event.currentTarget);
    Object.assign(smsView, { pair: v["filter-pair"], status: v.status, pages: [""] });
    refresh().catch(showError);
  });
  $("#sms-older").addEventListener("click", () => {
    if (smsView.next === null) return;
    smsView.pages.push(smsView.next);
    refresh().catch(showError);
  });
  $("#sms-latest").addEventListener("click", () => {
    smsView.pages = [""];
    refresh().catch(showError);
  });
  $("#rules").addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      await call("PUT", "/alerts/rules", rulesFromForm());
      await loadRules();
    });
  });
  $("#window").addEventListener("change", () => refresh().catch(showError));
  if (tokens.access) {
    signedIn().catch(() => signedOut());
  } else {
    signedOut();
  }
});

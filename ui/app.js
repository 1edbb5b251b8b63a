// genledger dashboard (docs/dashboard.md): three views chosen by the URL's query,
//   ./                       workspace list and search   (GET /v1/workspaces?prefix=)
//   ./?workspace=ID          one workspace, its counter live (SSE, else polling every 1 s)
//   ./?view=server           health, WAL, charges/s and fsync latency (from /metrics)
// Every value shown is set with textContent: nothing from the server becomes markup.
import { ApiError, eventsUrl, getJson, getText, missingRoute, setToken, token } from './api.js';
import { hbars, line, vbars } from './chart.js';
import { Window, parseProm, sum } from './prom.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = 1000;          // fallback for the live counter when there is no SSE route
const REFRESH_MS = 10000;      // team, grants, usage, alerts
const METRICS_MS = 3000;       // server view
const WINDOW_S = 600;          // server view's rolling window

function fmt(n) { return n === null || n === undefined ? 'unlimited' : Number(n).toLocaleString('en-US'); }
function fmtTime(ms) { return ms === null || ms === undefined ? '—' : new Date(ms).toISOString().replace('.000Z', 'Z').replace('T', ' '); }
function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}
function notAvailable(container, why) {
  const p = document.createElement('p');
  p.className = 'na';
  p.textContent = why;
  container.replaceChildren(p);
}
function message(text) {
  $('message').hidden = !text;
  $('message').textContent = text || '';
}

// --- token -----------------------------------------------------------------------------------

let rerun = null;   // the current view's start function, run again when a token is entered

function showAuth(ok, text) {
  $('auth-state').textContent = text;
  $('auth-state').className = ok ? '' : 'bad';
}

function authFailed(e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    showAuth(false, e.status === 401 ? 'a token is needed' : 'this token may not read this');
    message(e.status === 401 ? 'Enter an API token (read role or higher) above.' : e.message);
    $('token').focus();
    return true;
  }
  return false;
}

function initToken() {
  showAuth(true, token() ? 'token set (this tab only)' : 'no token (open mode?)');
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token').value.trim());
    $('token').value = '';
    showAuth(true, token() ? 'token set (this tab only)' : 'no token');
    message('');
    if (rerun) rerun();
  });
  $('token-forget').addEventListener('click', () => {
    setToken('');
    showAuth(true, 'token forgotten');
    if (rerun) rerun();
  });
}

// --- workspace list ----------------------------------------------------------------------------

function startList() {
  $('view-list').hidden = false;
  $('search').value = params.get('prefix') || '';
  const load = async (cursor) => {
    const q = new URLSearchParams({ limit: '50' });
    if ($('search').value) q.set('prefix', $('search').value);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await getJson(`/v1/workspaces?${q}`);
      showAuth(true, token() ? 'token set (this tab only)' : 'open mode');
      message('');
      const rows = page.workspaces.map((w) => {
        const tr = document.createElement('tr');
        const td = document.createElement('td');
        const a = document.createElement('a');
        a.href = `./?workspace=${encodeURIComponent(w.workspace)}`;
        a.textContent = w.workspace;
        td.append(a);
        tr.append(td);
        cell(tr, fmt(w.remaining), 'num');
        cell(tr, fmt(w.used), 'num');
        cell(tr, fmt(w.limit), 'num');
        cell(tr, String(w.period), 'num');
        return tr;
      });
      if (!rows.length) {
        const tr = document.createElement('tr');
        cell(tr, 'no workspace matches').colSpan = 5;
        rows.push(tr);
      }
      $('ws-rows').replaceChildren(...rows);
      $('ws-next').disabled = !page.next_cursor;
      $('ws-next').dataset.cursor = page.next_cursor || '';
      $('ws-first').disabled = !cursor;
    } catch (e) {
      if (!authFailed(e)) message(`Workspaces: ${e.message}`);
    }
  };
  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); load(null); });
  $('ws-next').addEventListener('click', () => load($('ws-next').dataset.cursor));
  $('ws-first').addEventListener('click', () => load(null));
  rerun = () => load(null);
  load(null);
}

// --- one workspace -----------------------------------------------------------------------------

function startWorkspace(ws) {
  $('view-ws').hidden = false;
  $('ws-name').textContent = ws;
  document.title = `${ws} · genledger`;
  const base = `/v1/workspaces/${encodeURIComponent(ws)}`;
  let rev = -1;
  let source = null;
  let pollTimer = null;
  let refreshTimer = null;
  let teamCursors = [null];   // cursor of each page shown so far; the last is the current one
  let lastState = null;

  // Shows a workspace state (GET's answer or an SSE balance record); older revisions are ignored.
  const show = (w) => {
    if (typeof w.rev === 'number') {
      if (w.rev < rev) return;
      // A change: the team, grants and usage panels follow shortly (coalesced).
      if (rev >= 0 && w.rev > rev) scheduleRefresh(1500);
      rev = w.rev;
    }
    lastState = w;
    $('remaining').textContent = fmt(w.remaining);
    $('used').textContent = fmt(w.used);
    $('reserved').textContent = `${fmt(w.reserved)} held` + (w.overage ? ` · overage ${fmt(w.overage)}` : '');
    $('plan').textContent = w.limit === null ? 'unlimited' : `${fmt(w.limit)} / period`;
    const detail = [`${w.overage_mode || 'hard'} mode`, `plan priority ${w.plan_priority ?? 100}`];
    if (w.granted_remaining) detail.push(`grants ${fmt(w.granted_remaining)} left`);
    if (w.rollover) detail.push(`rollover ≤ ${fmt(w.rollover.max)} for ${w.rollover.periods}`);
    if (w.pending_limit !== undefined) detail.push(`→ ${fmt(w.pending_limit)} next period`);
    $('plan-detail').textContent = detail.join(' · ');
    const interval = w.schedule?.interval || 'none';
    $('period').textContent = `#${w.period} (${interval})`;
    $('next-reset').textContent = w.period_end ? `next reset ${fmtTime(w.period_end)}` : 'no schedule: manual reset only';
  };

  const fetchState = async () => {
    try {
      show(await getJson(base));
      message('');
      return true;
    } catch (e) {
      if (authFailed(e)) return false;
      if (e instanceof ApiError && e.code === 'unknown_workspace') message(`No workspace '${ws}'.`);
      else message(`Workspace: ${e.message}`);
      return false;
    }
  };

  // Live counter: the SSE route when the server has it, else GET every second. A 404 (no route
  // yet), 401 or 403 closes an EventSource for good (readyState CLOSED), which is the signal to
  // poll; a dropped stream reconnects by itself (EventSource's own retry, with Last-Event-ID).
  const poll = () => {
    $('live-mode').textContent = 'polling every 1 s (no live stream on this server)';
    const tick = async () => {
      await fetchState();
      pollTimer = setTimeout(tick, POLL_MS);
    };
    pollTimer = setTimeout(tick, POLL_MS);
  };
  const live = () => {
    if (typeof EventSource === 'undefined') return poll();
    let opened = false;
    source = new EventSource(eventsUrl(ws));
    const fallback = setTimeout(() => { if (!opened) { source.close(); source = null; poll(); } }, 3000);
    source.addEventListener('open', () => {
      opened = true;
      clearTimeout(fallback);
      $('live-mode').textContent = 'live (server-sent events)';
    });
    source.addEventListener('balance', (ev) => {
      try { show(JSON.parse(ev.data)); } catch (_) { /* a malformed record: wait for the next */ }
    });
    // The stream's first record is the current state; should it come without an event name
    // (a plain `data:` line is a "message"), it is shown all the same.
    source.addEventListener('message', (ev) => {
      try {
        const w = JSON.parse(ev.data);
        if (w && 'remaining' in w) show(w);
      } catch (_) { /* not a state */ }
    });
    source.addEventListener('alert', (ev) => {
      try { noteAlert(JSON.parse(ev.data)); } catch (_) { /* ignored */ }
      loadAlerts();
    });
    for (const kind of ['depleted', 'period_reset']) {
      source.addEventListener(kind, (ev) => {
        try { noteAlert(JSON.parse(ev.data)); } catch (_) { /* ignored */ }
        scheduleRefresh(500);
      });
    }
    source.addEventListener('error', () => {
      if (source && source.readyState === EventSource.CLOSED) {
        clearTimeout(fallback);
        source = null;
        poll();
      } else if (opened) {
        $('live-mode').textContent = 'live stream interrupted, reconnecting…';
      }
    });
  };

  const noteAlert = (a) => {
    const li = document.createElement('li');
    li.textContent = `${fmtTime(a.at_ms ?? Date.now())} ${a.event}${a.alert ? ` ${a.alert}` : ''}${a.state ? ` ${a.state}` : ''}` +
      (a.remaining !== undefined ? ` (remaining ${fmt(a.remaining)})` : '');
    $('alert-events').prepend(li);
    while ($('alert-events').children.length > 20) $('alert-events').lastChild.remove();
  };

  const loadTeam = async () => {
    const cursor = teamCursors[teamCursors.length - 1];
    const q = new URLSearchParams({ limit: '25' });
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await getJson(`${base}/users?${q}`);
      const total = lastState && lastState.used ? lastState.used : 0;
      const rows = page.users.map((u) => {
        const tr = document.createElement('tr');
        tr.dataset.user = u.user;
        cell(tr, u.user);
        cell(tr, fmt(u.used), 'num');
        cell(tr, fmt(u.reserved), 'num');
        cell(tr, u.limit === null ? 'none' : fmt(u.limit), 'num');
        const td = document.createElement('td');
        const box = document.createElement('span');
        box.className = 'share-box';
        const bar = document.createElement('span');
        bar.className = 'share';
        bar.style.width = `${total ? Math.min(100, (100 * u.used) / total) : 0}%`;   // CSSOM, not an inline style attribute
        box.append(bar);
        td.append(box);
        tr.append(td);
        return tr;
      });
      if (!rows.length) {
        const tr = document.createElement('tr');
        cell(tr, 'no users yet').colSpan = 5;
        rows.push(tr);
      }
      $('team-rows').replaceChildren(...rows);
      $('team-next').disabled = !page.next_cursor;
      $('team-next').dataset.cursor = page.next_cursor || '';
      $('team-first').disabled = teamCursors.length === 1;
      $('team-page').textContent = `page ${teamCursors.length}`;
    } catch (e) {
      if (!authFailed(e)) notAvailable($('team-rows'), `users: ${e.message}`);
    }
  };
  $('team-next').addEventListener('click', () => { teamCursors.push($('team-next').dataset.cursor); loadTeam(); });
  $('team-first').addEventListener('click', () => { teamCursors = [null]; loadTeam(); });

  const loadGrants = async () => {
    try {
      const { grants } = await getJson(`${base}/grants`);
      $('grant-rows').replaceChildren(...grants.map((g) => {
        const tr = document.createElement('tr');
        cell(tr, g.grant);
        cell(tr, g.source);
        cell(tr, fmt(g.amount), 'num');
        cell(tr, fmt(g.remaining), 'num');
        cell(tr, String(g.priority), 'num');
        cell(tr, g.expires_at === null ? 'never' : fmtTime(g.expires_at));
        return tr;
      }));
    } catch (e) {
      if (authFailed(e)) return;
      const tr = document.createElement('tr');
      cell(tr, missingRoute(e) ? 'grants: not available on this server' : `grants: ${e.message}`).colSpan = 6;
      $('grant-rows').replaceChildren(tr);
    }
  };

  const loadUsage = async () => {
    for (const key of ['model', 'category', 'day']) {
      const box = $(`usage-${key}`);
      try {
        const u = await getJson(`${base}/usage?period=current&group_by=${key}`);
        const rows = (u.rows || []).map((r) => ({ label: String(r[key]), value: Number(r.used) || 0 }));
        if (!rows.length) { notAvailable(box, 'no usage yet this period'); continue; }
        if (key === 'day') vbars(box, rows); else hbars(box, rows);
      } catch (e) {
        if (authFailed(e)) return;
        notAvailable(box, missingRoute(e) ? 'not available: this server has no usage history route' : `usage: ${e.message}`);
      }
    }
  };

  const loadAlerts = async () => {
    const box = $('alerts');
    try {
      const body = await getJson(`${base}/alerts`);
      const alerts = body.alerts || [];
      if (!alerts.length) return notAvailable(box, 'no alerts configured');
      const table = document.createElement('table');
      const head = document.createElement('tr');
      for (const h of ['alert', 'when', 'at', 'state']) {
        const th = document.createElement('th');
        th.textContent = h;
        head.append(th);
      }
      table.append(head);
      for (const a of alerts) {
        const tr = document.createElement('tr');
        cell(tr, a.name);
        cell(tr, a.when);
        cell(tr, a.when === 'used_percent' ? `${a.at}%` : fmt(a.at));
        cell(tr, a.state || '—', `state-${a.state || 'none'}`);
        table.append(tr);
      }
      box.replaceChildren(table);
    } catch (e) {
      if (authFailed(e)) return;
      notAvailable(box, missingRoute(e) ? 'not available: this server has no alerts route' : `alerts: ${e.message}`);
    }
  };

  const refreshAll = () => Promise.all([loadTeam(), loadGrants(), loadUsage(), loadAlerts()]);
  const scheduleRefresh = (ms) => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => { await refreshAll(); scheduleRefresh(REFRESH_MS); }, ms);
  };

  const start = async () => {
    if (source) { source.close(); source = null; }
    clearTimeout(pollTimer);
    clearTimeout(refreshTimer);
    rev = -1;
    if (!(await fetchState())) return;
    showAuth(true, token() ? 'token set (this tab only)' : 'open mode');
    live();
    await refreshAll();
    scheduleRefresh(REFRESH_MS);
  };
  rerun = start;
  start();
}

// --- the server --------------------------------------------------------------------------------

function startServer() {
  $('view-server').hidden = false;
  document.title = 'server · genledger';
  const rate = new Window(WINDOW_S);
  const fsync = new Window(WINDOW_S);
  let prev = null;   // {t, charges} of the previous sample
  let timer = null;

  const health = async () => {
    // /healthz answers 503 with a JSON body when failing or degraded: read it either way.
    try {
      const r = await fetch('/healthz', { cache: 'no-store' });
      const h = await r.json();
      $('health').textContent = h.status;
      $('health').className = `value ${h.status === 'ok' ? 'state-ok' : 'state-bad'}`;
      $('wal').textContent = h.wal;
      $('wal').className = `value ${h.wal === 'ok' || h.wal === 'off' ? 'state-ok' : 'state-bad'}`;
      $('health-detail').textContent = h.error || (h.unsynced_ms !== undefined ? `unsynced ${h.unsynced_ms} ms` : `HTTP ${r.status}`);
    } catch (e) {
      $('health').textContent = 'unreachable';
      $('health').className = 'value state-bad';
    }
  };

  const metrics = async () => {
    let samples;
    try {
      samples = parseProm(await getText('/metrics'));
    } catch (e) {
      if (authFailed(e)) return;
      $('rate').textContent = '—';
      notAvailable($('chart-rate'), missingRoute(e) ? 'not available: /metrics is served on another address (--metrics-listen)' : `metrics: ${e.message}`);
      return;
    }
    const t = Date.now();
    const charges = sum(samples, 'genledger_requests_total', { operation: 'charge', status: '200' }) ?? 0;
    if (prev && t > prev.t && charges >= prev.charges) rate.push(t, ((charges - prev.charges) * 1000) / (t - prev.t));
    prev = { t, charges };
    const last = rate.last();
    $('rate').textContent = last === null ? 'measuring…' : last.toFixed(last < 10 ? 1 : 0);
    line($('chart-rate'), rate.points, WINDOW_S * 1000);

    const fs = sum(samples, 'genledger_wal_last_fsync_microseconds');
    if (fs === null) {
      $('fsync').textContent = 'no WAL';
      notAvailable($('chart-fsync'), 'not available: this server keeps no write-ahead log');
    } else {
      fsync.push(t, fs);
      $('fsync').textContent = `${fmt(fs)} µs`;
      $('fsync-detail').textContent = `max since start ${fmt(sum(samples, 'genledger_wal_max_fsync_microseconds'))} µs`;
      line($('chart-fsync'), fsync.points, WINDOW_S * 1000, '');
    }
    const failed = sum(samples, 'genledger_wal_failed');
    const rounds = sum(samples, 'genledger_wal_rounds_total');
    $('wal-detail').textContent = failed === null ? 'in-memory server' : `${fmt(rounds)} rounds, ${fmt(sum(samples, 'genledger_wal_fsyncs_total'))} fsyncs${failed ? ' · FAILED' : ''}`;

    const gauges = [
      ['workspaces', 'genledger_workspaces'], ['users', 'genledger_users'],
      ['used generations', 'genledger_used_generations'], ['reserved generations', 'genledger_reserved_generations'],
      ['open reservations', 'genledger_open_reservations'], ['open connections', 'genledger_open_connections'],
      ['open WebSockets', 'genledger_open_websockets'], ['generations debited', 'genledger_generations_debited_total'],
      ['snapshots', 'genledger_snapshots_total'], ['WAL bytes', 'genledger_wal_bytes_total'],
    ];
    $('gauge-rows').replaceChildren(...gauges.filter(([, n]) => sum(samples, n) !== null).map(([label, n]) => {
      const tr = document.createElement('tr');
      cell(tr, label);
      cell(tr, fmt(sum(samples, n)), 'num');
      return tr;
    }));
  };

  const tick = async () => {
    await Promise.all([health(), metrics()]);
    timer = setTimeout(tick, METRICS_MS);
  };
  rerun = () => { clearTimeout(timer); tick(); };
  tick();
}

initToken();
const ws = params.get('workspace');
if (ws) startWorkspace(ws);
else if (params.get('view') === 'server') startServer();
else startList();

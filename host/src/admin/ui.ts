/**
 * The admin UI at /ui/: one page, plain DOM code, no framework. Live numbers come from the
 * event stream (`GET /api/v1/events`, read with fetch so the bearer token goes in a header);
 * buttons call the same API an operator would. Kept as strings so the single binary
 * carries it without extracting files.
 */

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weir admin</title>
<link rel="stylesheet" href="/ui/style.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header><h1>Weir</h1><span id="conn" class="badge">connecting</span><span id="generation"></span></header>
<form id="login" hidden><label>Admin token <input id="token" type="password" autocomplete="off"></label><button>Connect</button></form>
<p id="error" class="error" hidden></p>
<main>
<section><h2>Routes</h2>
<table id="routes"><thead><tr><th>Route</th><th>req/s</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>total</th></tr></thead><tbody></tbody></table></section>
<section><h2>Upstreams</h2><div id="upstreams"></div></section>
<section><h2>Plugins</h2>
<table id="plugins"><thead><tr><th>Plugin</th><th>Hook</th><th>calls</th><th>errors</th><th>fuel</th><th>mean µs</th><th>p99 µs</th></tr></thead><tbody></tbody></table></section>
<section><h2>Reloads</h2><ol id="reloads" reversed></ol></section>
<section><h2>Configuration</h2><div id="config"></div></section>
</main>
</body>
</html>
`;

const STYLE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { display: flex; gap: 1em; align-items: center; padding: .6em 1.2em; background: #1d232a; color: #fff; }
h1 { font-size: 1.2em; margin: 0; }
h2 { font-size: 1em; margin: 1.2em 0 .4em; }
main { padding: 0 1.2em 2em; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: .2em 1em 1em; margin-top: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #eef0f3; font-variant-numeric: tabular-nums; }
.badge { padding: .1em .6em; border-radius: 1em; background: #6b7785; font-size: .85em; }
.badge.live { background: #1f8a4c; }
.badge.down { background: #b3261e; }
.healthy { color: #1f8a4c; } .unhealthy { color: #b3261e; font-weight: 600; } .draining { color: #a15c00; }
.error { color: #b3261e; padding: 0 1.2em; }
input.weight { width: 4em; }
pre.kdl { background: #1d232a; color: #e6e6e6; padding: .8em; border-radius: 4px; overflow: auto; }
.kdl .c { color: #7f8c98; } .kdl .s { color: #a8d98a; } .kdl .n { color: #7cc4ff; } .kdl .k { color: #f5a97f; } .kdl .num { color: #e5c07b; }
`;

const APP_JS = `'use strict';
const $ = (s) => document.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { sessionStorage.setItem('weir-admin-token', fromHash); history.replaceState(null, '', location.pathname); }
let token = sessionStorage.getItem('weir-admin-token') || '';

function showError(msg) { const e = $('#error'); e.textContent = msg; e.hidden = !msg; }

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) { askToken(); throw new Error('unauthorized'); }
  if (!res.ok) throw new Error((json.error && json.error.code) + ': ' + ((json.error && json.error.detail && json.error.detail.reason) || (json.error && json.error.message) || res.status));
  return json;
}

function askToken() {
  $('#login').hidden = false;
  $('#conn').textContent = 'signed out';
  $('#conn').className = 'badge down';
}
$('#login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('#token').value;
  sessionStorage.setItem('weir-admin-token', token);
  $('#login').hidden = true;
  start();
});

const fmt = (v) => (v === undefined || v === null ? '–' : String(v));
const pct = (v) => (v * 100).toFixed(2) + '%';

function renderRoutes(routes) {
  const body = $('#routes tbody');
  body.replaceChildren(...routes.map((r) => el('tr', { 'data-route': r.route }, el('td', {}, r.route), el('td', { class: 'rps' }, r.rps.toFixed(2)), el('td', { class: 'err' }, pct(r.errorRate)), el('td', {}, fmt(r.p50)), el('td', {}, fmt(r.p90)), el('td', {}, fmt(r.p99)), el('td', { class: 'total' }, r.total))));
}

async function act(what, f) {
  try { showError(''); await f(); } catch (e) { showError(what + ': ' + e.message); }
}

function renderUpstreams(upstreams) {
  const box = $('#upstreams');
  // Keep a weight being edited: only rebuild a table whose numbers changed and that has no focus.
  box.replaceChildren(...upstreams.map((u) => {
    const rows = u.targets.map((t) => {
      const state = t.draining ? 'draining' : t.healthy ? 'healthy' : 'unhealthy';
      const weight = el('input', { class: 'weight', type: 'number', min: '0', value: String(t.weight), 'aria-label': 'weight of ' + t.address });
      const setWeight = el('button', { class: 'set-weight', onclick: () => act('weight', async () => {
        const targets = u.targets.map((x) => ({ address: x.address, weight: x.address === t.address ? Number(weight.value) : x.weight }));
        await api('PUT', '/api/v1/upstreams/' + encodeURIComponent(u.name) + '/targets', { targets });
      }) }, 'Set');
      const drain = el('button', { class: 'drain', onclick: () => act('drain', async () => {
        await api('POST', '/api/v1/upstreams/' + encodeURIComponent(u.name) + '/drain', { target: t.address, drain: !t.draining, 'timeout-ms': 10000 });
      }) }, t.draining ? 'Resume' : 'Drain');
      return el('tr', { 'data-target': t.address }, el('td', {}, t.address), el('td', { class: 'state ' + state }, state + (t.ejected ? ' (ejected)' : '')), el('td', { class: 'inflight' }, t.inFlight), el('td', {}, t.requests), el('td', {}, t.failures), el('td', {}, weight, setWeight), el('td', {}, drain));
    });
    return el('div', { class: 'upstream', 'data-upstream': u.name }, el('h3', {}, u.name),
      el('table', {}, el('thead', {}, el('tr', {}, ...['Target', 'state', 'in flight', 'requests', 'failures', 'weight', ''].map((h) => el('th', {}, h)))), el('tbody', {}, ...rows)));
  }));
}

function renderPlugins(hooks) {
  $('#plugins tbody').replaceChildren(...hooks.map((h) => el('tr', {}, el('td', {}, h.plugin), el('td', {}, h.hook), el('td', {}, h.calls), el('td', {}, h.errors), el('td', {}, h.fuel), el('td', {}, fmt(h.meanUs)), el('td', {}, fmt(h.p99Us)))));
}

function renderReloads(reloads) {
  $('#reloads').replaceChildren(...reloads.slice().reverse().map((r) => el('li', { class: r.ok ? 'healthy' : 'unhealthy' }, r.at + ' · ' + r.trigger + ' · ' + (r.ok ? 'generation ' + r.generation : 'failed: ' + (r.error || '')))));
}

/** KDL highlighting: comments, strings, keywords, numbers, node names. */
function highlight(text) {
  const pre = el('pre', { class: 'kdl' });
  const re = /(\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?\\*\\/)|("(?:[^"\\\\]|\\\\.)*")|(#true|#false|#null|\\btrue\\b|\\bfalse\\b|\\bnull\\b)|(\\b-?\\d+(?:\\.\\d+)?\\b)|(^[ \\t]*[A-Za-z][\\w.-]*)/gm;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    const cls = m[1] ? 'c' : m[2] ? 's' : m[3] ? 'k' : m[4] ? 'num' : 'n';
    pre.append(el('span', { class: cls }, m[0]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

let shownGeneration = -1;
async function renderConfig(generation) {
  if (generation === shownGeneration) return;
  shownGeneration = generation;
  const cfg = await api('GET', '/api/v1/config');
  $('#config').replaceChildren(...cfg.files.flatMap((f) => [el('h3', {}, f.path + (f.changedByApi ? ' (changed through the API, not persisted)' : '')), highlight(f.text)]));
}

function onStats(s) {
  $('#generation').textContent = 'generation ' + s.generation;
  renderRoutes(s.routes);
  if (!document.activeElement || !document.activeElement.classList.contains('weight')) renderUpstreams(s.upstreams);
  renderPlugins(s.plugins);
  renderReloads(s.reloads);
  renderConfig(s.generation).catch((e) => showError('config: ' + e.message));
}

/** Server-sent events read with fetch (EventSource cannot send an Authorization header). */
async function start() {
  if (!token) return askToken();
  for (;;) {
    try {
      const res = await fetch('/api/v1/events', { headers: { authorization: 'Bearer ' + token } });
      if (res.status === 401) return askToken();
      if (!res.ok || !res.body) throw new Error('events: HTTP ' + res.status);
      $('#conn').textContent = 'live'; $('#conn').className = 'badge live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          const data = chunk.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
          if (data) onStats(JSON.parse(data));
        }
      }
    } catch (e) {
      showError(e.message);
    }
    $('#conn').textContent = 'reconnecting'; $('#conn').className = 'badge down';
    await new Promise((r) => setTimeout(r, 2000));
  }
}
start();
`;

export const UI_FILES: Readonly<Record<string, { readonly type: string; readonly body: string }>> = {
  'index.html': { type: 'text/html; charset=utf-8', body: INDEX_HTML },
  'app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
  'style.css': { type: 'text/css; charset=utf-8', body: STYLE_CSS },
};

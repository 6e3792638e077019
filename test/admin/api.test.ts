// The admin API through real sockets: auth (401/403, read-only tokens), every endpoint, JSON
// errors with stable codes, persist against file-wins, drain, and the audit log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { loadConfigText } from '../../host/src/config/load.ts';
import { RO_TOKEN, TOKEN, eventually, startAdmin } from './helpers.ts';

async function origins(n: number): Promise<Origin[]> {
  return Promise.all(Array.from({ length: n }, () => startOrigin()));
}

test('admin API auth: 401 without or with a wrong token (constant-time compare), 403 for a read-only token on a write, reads allowed', async (t) => {
  const [o] = await origins(1);
  const a = await startAdmin([o!.port]);
  t.after(async () => {
    await a.close();
    await o!.close();
  });
  const none = await a.call('GET', '/api/v1/status', undefined, null);
  assert.equal(none.status, 401);
  assert.equal(none.json.error.code, 'WEIR_ERR_ADMIN_UNAUTHORIZED');
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.equal((await a.call('GET', '/api/v1/status', undefined, 'wrong')).status, 401);
  assert.equal((await a.call('GET', '/api/v1/status', undefined, `${TOKEN}x`)).status, 401, 'a longer token with the right prefix');
  const ro = await a.call('GET', '/api/v1/upstreams', undefined, RO_TOKEN);
  assert.equal(ro.status, 200);
  const denied = await a.call('PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: `127.0.0.1:${o!.port}`, weight: 2 }] }, RO_TOKEN);
  assert.equal(denied.status, 403);
  assert.equal(denied.json.error.code, 'WEIR_ERR_ADMIN_FORBIDDEN');
  assert.equal((await a.call('POST', '/api/v1/config/reload', undefined, RO_TOKEN)).status, 403);
  // Every call is audited: who (a token fingerprint, never the token), what, result.
  const lines = await eventually(() => {
    const l = a.audit().filter((x) => x['event'] === 'admin');
    return l.length >= 6 ? l : undefined;
  }, 'six audited admin calls');
  assert.deepEqual(lines.slice(0, 6).map((l) => [l['method'], l['path'], l['status'], l['access']]), [
    ['GET', '/api/v1/status', 401, 'none'],
    ['GET', '/api/v1/status', 401, 'none'],
    ['GET', '/api/v1/status', 401, 'none'],
    ['GET', '/api/v1/upstreams', 200, 'read-only'],
    ['PUT', '/api/v1/upstreams/origin/targets', 403, 'read-only'],
    ['POST', '/api/v1/config/reload', 403, 'read-only'],
  ]);
  assert.match(lines[3]!['who'], /^token:[0-9a-f]{8}$/);
  assert.ok(!readFileSync(a.auditFile, 'utf8').includes(TOKEN), 'the audit log never holds a token');
});

test('admin API errors: unknown path 404, wrong method 405 with Allow, bad JSON and unknown fields 400, unknown upstream 404, a change the config refuses 409', async (t) => {
  const [o] = await origins(1);
  const a = await startAdmin([o!.port]);
  t.after(async () => {
    await a.close();
    await o!.close();
  });
  const codes = async (method: string, path: string, body?: unknown): Promise<[number, string]> => {
    const r = await a.call(method, path, body);
    return [r.status, r.json.error?.code];
  };
  assert.deepEqual(await codes('GET', '/api/v1/nothing'), [404, 'WEIR_ERR_ADMIN_NOT_FOUND']);
  const m = await a.call('PATCH', '/api/v1/upstreams');
  assert.deepEqual([m.status, m.json.error.code, m.headers.get('allow')], [405, 'WEIR_ERR_METHOD_NOT_ALLOWED', 'GET, POST']);
  assert.deepEqual(await codes('PUT', '/api/v1/upstreams/origin/targets', '{"targets": ['), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  assert.deepEqual(await codes('PUT', '/api/v1/upstreams/origin/targets', { targets: [], extra: 1 }), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  assert.deepEqual(await codes('PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: 'no-port' }] }), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  assert.deepEqual(await codes('PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: '127.0.0.1:1', weight: -1 }] }), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  assert.deepEqual(await codes('PUT', '/api/v1/upstreams/nope/targets', { targets: [{ address: '127.0.0.1:1' }] }), [404, 'WEIR_ERR_ADMIN_NOT_FOUND']);
  assert.deepEqual(await codes('DELETE', '/api/v1/upstreams/origin'), [409, 'WEIR_ERR_ADMIN_CONFLICT'], 'a route uses it');
  assert.deepEqual(await codes('POST', '/api/v1/upstreams', { id: 'origin', targets: [{ address: '127.0.0.1:1' }] }), [409, 'WEIR_ERR_ADMIN_CONFLICT']);
  assert.deepEqual(await codes('PUT', '/api/v1/routes/none/enabled', { enabled: false }), [404, 'WEIR_ERR_ADMIN_NOT_FOUND']);
  assert.deepEqual(await codes('PUT', '/api/v1/routes/default/enabled', { enabled: 'no' }), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  assert.deepEqual(await codes('POST', '/api/v1/upstreams/origin/drain', { target: '10.9.9.9:1' }), [404, 'WEIR_ERR_ADMIN_NOT_FOUND']);
  assert.deepEqual(await codes('POST', '/api/v1/plugins/none/reload'), [404, 'WEIR_ERR_ADMIN_NOT_FOUND']);
  assert.deepEqual(await codes('POST', '/api/v1/cache/purge', { everything: true }), [400, 'WEIR_ERR_ADMIN_BAD_REQUEST']);
  // Nothing changed: the generation is the one the proxy started with.
  assert.equal((await a.call('GET', '/api/v1/status')).json.generation, a.weir.core.snapshot.generation);
  assert.equal(a.weir.core.snapshot.generation, 1);
});

test('upstreams: PUT targets, POST and DELETE apply at once, show in GET with health and in-flight, and are refused 409 when the result is invalid', async (t) => {
  const os = await origins(3);
  const a = await startAdmin([os[0]!.port]);
  t.after(async () => {
    await a.close();
    for (const o of os) await o.close();
  });
  const put = await a.call('PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: `127.0.0.1:${os[1]!.port}`, weight: 3 }, { address: `127.0.0.1:${os[2]!.port}`, weight: 1 }] });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.deepEqual([put.json.applied, put.json.persisted], [true, false]);
  assert.match(put.json.note, /next reload of the config file replaces this change/);
  // Requests go to the new targets in the weights' proportion.
  for (let i = 0; i < 8; i++) assert.equal((await fetch(`${a.proxy}/x`)).status, 200);
  assert.deepEqual([os[0]!.seen.length, os[1]!.seen.length, os[2]!.seen.length], [0, 6, 2]);
  const got = await a.call('GET', '/api/v1/upstreams');
  const origin = got.json.upstreams.find((u: { id: string }) => u.id === 'origin');
  assert.deepEqual(origin.targets.map((x: { address: string; weight: number; healthy: boolean; inFlight: number; requests: number }) => [x.address, x.weight, x.healthy, x.inFlight, x.requests]), [
    [`127.0.0.1:${os[1]!.port}`, 3, true, 0, 6],
    [`127.0.0.1:${os[2]!.port}`, 1, true, 0, 2],
  ]);
  const created = await a.call('POST', '/api/v1/upstreams', { id: 'extra', targets: [{ address: `127.0.0.1:${os[0]!.port}` }] });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  assert.ok(a.weir.config.upstreams.has('extra'));
  // The edit is in the running config text, and nothing was written to the file.
  const cfg = await a.call('GET', '/api/v1/config');
  const text: string = cfg.json.files[0].text;
  assert.match(text, /upstream "extra" \{\n\s+target "127\.0\.0\.1:\d+" weight=1\n\s+\}/);
  assert.match(text, /\/\/ the origin pool/);
  assert.equal(cfg.json.files[0].changedByApi, true);
  assert.match(text, /token "\(redacted\)"/);
  assert.ok(!text.includes(`"${TOKEN}"`) && !text.includes(`"${RO_TOKEN}"`), 'tokens written in the file are not shown');
  assert.doesNotMatch(readFileSync(a.file, 'utf8'), /extra/);
  const del = await a.call('DELETE', '/api/v1/upstreams/extra');
  assert.equal(del.status, 200, JSON.stringify(del.json));
  assert.equal(a.weir.config.upstreams.has('extra'), false);
  // /metrics shows every change as a reload.
  // Per-target series follow the change: the new targets are there, the replaced one is gone.
  const healthy = await a.weir.metrics.registry.getSingleMetricAsString('weir_upstream_target_healthy');
  for (const o of [os[1]!, os[2]!]) assert.match(healthy, new RegExp(`weir_upstream_target_healthy\\{upstream="origin",target="127\\.0\\.0\\.1:${o.port}"\\} 1`));
  assert.doesNotMatch(healthy, new RegExp(`target="127\\.0\\.0\\.1:${os[0]!.port}"\\}`));
  const reloads = (await a.weir.metrics.registry.getSingleMetricAsString('weir_config_reloads_total'));
  assert.match(reloads, /weir_config_reloads_total\{result="ok"\} 3/);
});

test('persist #true writes changes back keeping comments; with persist #false a reload of the file discards them and says so', async (t) => {
  const os = await origins(2);
  const persisted = await startAdmin([os[0]!.port], { admin: '    persist #true' });
  const volatile = await startAdmin([os[0]!.port]);
  t.after(async () => {
    await persisted.close();
    await volatile.close();
    for (const o of os) await o.close();
  });
  const body = { targets: [{ address: `127.0.0.1:${os[0]!.port}`, weight: 5 }, { address: `127.0.0.1:${os[1]!.port}`, weight: 1 }] };
  const p = await persisted.call('PUT', '/api/v1/upstreams/origin/targets', body);
  assert.equal(p.json.persisted, true);
  const written = readFileSync(persisted.file, 'utf8');
  assert.match(written, /\/\/ the test config/);
  assert.match(written, /\/\/ the origin pool/);
  assert.match(written, new RegExp(`target "127\\.0\\.0\\.1:${os[0]!.port}" weight=5 // first`), 'the kept target keeps its comment');
  assert.match(written, new RegExp(`target "127\\.0\\.0\\.1:${os[1]!.port}" weight=1\\n`));
  assert.ok((await loadConfigText(written, persisted.file, { skipFileChecks: true })).ok, 'the written file is valid');
  const off = await persisted.call('PUT', '/api/v1/routes/default/enabled', { enabled: false });
  assert.equal(off.status, 200);
  assert.match(readFileSync(persisted.file, 'utf8'), /route "default" \{\n\s+enabled #false\n\s+matches/);
  assert.equal((await fetch(`${persisted.proxy}/x`)).status, 404, 'a disabled route matches nothing');
  await persisted.call('PUT', '/api/v1/routes/default/enabled', { enabled: true });
  assert.doesNotMatch(readFileSync(persisted.file, 'utf8'), /enabled/);
  assert.equal((await fetch(`${persisted.proxy}/x`)).status, 200);
  // A reload of the file keeps what was persisted.
  assert.equal((await persisted.weir.reload()).ok, true);
  assert.equal(persisted.weir.config.upstreams.get('origin')!.targets.length, 2);

  const before = readFileSync(volatile.file, 'utf8');
  const v = await volatile.call('PUT', '/api/v1/upstreams/origin/targets', body);
  assert.equal(v.json.persisted, false);
  assert.equal(readFileSync(volatile.file, 'utf8'), before);
  assert.equal(volatile.weir.config.upstreams.get('origin')!.targets.length, 2);
  assert.equal((await volatile.call('GET', '/api/v1/status')).json.unpersistedChanges, true);
  const r = await volatile.call('POST', '/api/v1/config/reload');
  assert.deepEqual([r.status, r.json.applied, r.json.discardedChanges], [200, true, true]);
  assert.equal(volatile.weir.config.upstreams.get('origin')!.targets.length, 1, 'the file won');
  assert.equal((await volatile.call('GET', '/api/v1/status')).json.unpersistedChanges, false);
});

test('drain: no new request reaches the target, the call returns once the in-flight one finished; drain false sends traffic again', async (t) => {
  let release: (() => void) | undefined;
  const slow = await startOrigin((req, res) => {
    if (req.url === '/slow') release = () => res.writeHead(200).end('slow done');
    else res.writeHead(200).end('a');
  });
  const other = await startOrigin((_q, res) => res.writeHead(200).end('b'));
  const a = await startAdmin([slow.port, other.port]);
  t.after(async () => {
    await a.close();
    await slow.close();
    await other.close();
  });
  const target = `127.0.0.1:${slow.port}`;
  // Round robin starts on the first target: /slow lands on `slow` and is held there.
  const held = fetch(`${a.proxy}/slow`).then((r) => r.text());
  await eventually(() => release, 'the slow request to reach its origin');
  const drainCall = a.call('POST', '/api/v1/upstreams/origin/drain', { target, 'timeout-ms': 20_000 });
  await eventually(() => a.weir.core.isDraining('origin', target), 'the drain to start');
  for (let i = 0; i < 6; i++) assert.equal(await (await fetch(`${a.proxy}/x`)).text(), 'b', 'new requests avoid the draining target');
  let returned = false;
  void drainCall.then(() => (returned = true));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(returned, false, 'the drain waits for the request in flight');
  release!();
  assert.equal(await held, 'slow done', 'the in-flight request finished normally');
  const d = await drainCall;
  assert.equal(d.status, 200);
  assert.deepEqual([d.json.drained, d.json.targets[0].inFlight], [true, 0]);
  const state = await a.call('GET', '/api/v1/upstreams');
  assert.equal(state.json.upstreams[0].targets[0].draining, true);
  const drainingGauge = async (): Promise<string[]> => (await a.weir.metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('weir_upstream_target_draining{')).sort();
  assert.deepEqual(await drainingGauge(), [`weir_upstream_target_draining{upstream="origin",target="${target}"} 1`, `weir_upstream_target_draining{upstream="origin",target="127.0.0.1:${other.port}"} 0`].sort());
  // A drain that times out says so.
  const timedOut = await a.call('POST', '/api/v1/upstreams/origin/drain', { target: `127.0.0.1:${other.port}`, 'timeout-ms': 0 });
  assert.equal(timedOut.json.drained, true, 'nothing in flight: drained at once');
  const resume = await a.call('POST', '/api/v1/upstreams/origin/drain', { drain: false });
  assert.equal(resume.status, 200);
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add(await (await fetch(`${a.proxy}/x`)).text());
  assert.deepEqual([...bodies].sort(), ['a', 'b']);
  assert.ok((await drainingGauge()).every((l) => l.endsWith(' 0')), 'no target drained after drain false');
});

test('drain timeout: the call returns after timeout-ms with drained false and the count still in flight', async (t) => {
  let release: (() => void) | undefined;
  const slow = await startOrigin((_req, res) => (release = () => {
    release = undefined;
    res.writeHead(200).end('x');
  }));
  const a = await startAdmin([slow.port], { admin: '    drain-timeout-secs 0.2' });
  t.after(async () => {
    release?.();
    await a.close();
    await slow.close();
  });
  const held = fetch(`${a.proxy}/x`).then((r) => r.text());
  await eventually(() => release, 'the request to reach its origin');
  const d = await a.call('POST', '/api/v1/upstreams/origin/drain', {});
  assert.deepEqual([d.status, d.json.drained, d.json.targets[0].inFlight], [200, false, 1], 'drain-timeout-secs bounds a call without timeout-ms');
  release?.();
  await held;
});

test('routes, config validate, plugins, cache purge, status and the event stream', async (t) => {
  const o = await startOrigin((_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'pics' }).end('cached'));
  const a = await startAdmin([o.port], { routes: '    route "cached" { priority 10; matches { path-prefix "/c/" }; upstream "origin"; policies { cache {} } }' });
  t.after(async () => {
    await a.close();
    await o.close();
  });
  const routes = await a.call('GET', '/api/v1/routes');
  assert.deepEqual(routes.json.routes.map((r: { id: string; enabled: boolean; priority: number }) => [r.id, r.enabled, r.priority]), [['cached', true, 10], ['default', true, 0]]);
  const valid = await a.call('GET', '/api/v1/config/validate');
  assert.deepEqual([valid.status, valid.json.valid], [200, true]);
  writeFileSync(a.file, readFileSync(a.file, 'utf8').replace('upstream "origin"\n', 'upstream "missing"\n'));
  const invalid = await a.call('GET', '/api/v1/config/validate');
  assert.equal(invalid.json.valid, false);
  assert.equal(invalid.json.diagnostics[0].code, 'WEIR_ERR_CONFIG_REFERENCE');
  assert.match(invalid.json.diagnostics[0].at, /weir\.kdl:\d+:\d+$/);
  assert.equal(a.weir.core.snapshot.generation, 1, 'validate applies nothing');
  const refused = await a.call('POST', '/api/v1/config/reload');
  assert.deepEqual([refused.status, refused.json.error.code], [409, 'WEIR_ERR_ADMIN_CONFLICT']);
  // Cache: two URLs stored, one purged by URL, the other by tag.
  for (const p of ['/c/a', '/c/b']) await (await fetch(`${a.proxy}${p}`)).text();
  assert.equal((await fetch(`${a.proxy}/c/a`)).headers.get('x-cache'), 'HIT');
  const host = new URL(a.proxy).host;
  const byUrl = await a.call('POST', '/api/v1/cache/purge', { url: `http://${host}/c/a` });
  assert.deepEqual([byUrl.status, byUrl.json.purged], [200, 1]);
  assert.equal((await fetch(`${a.proxy}/c/a`)).headers.get('x-cache'), 'MISS');
  const byTag = await a.call('POST', '/api/v1/cache/purge', { tags: ['pics'] });
  assert.equal(byTag.json.purged, 2);
  assert.equal((await a.call('POST', '/api/v1/cache/purge', { all: true })).json.purged, 0);
  const plugins = await a.call('GET', '/api/v1/plugins');
  assert.equal(plugins.status, 200);
  assert.ok(Array.isArray(plugins.json.plugins));
  const status = await a.call('GET', '/api/v1/status');
  assert.deepEqual([status.json.ready, status.json.generation, status.json.unhealthyTargets], [true, 1, []]);
  assert.equal(status.json.reloads.at(-1).ok, false, 'the refused reload is in the list');
  // The event stream: a `stats` event with the routes' numbers.
  const ev = await new Promise<string>((resolve, reject) => {
    const req = http.get(`${a.base}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        const m = /event: stats\ndata: (.*)\n\n/.exec(buf);
        if (m) {
          req.destroy();
          resolve(m[1]!);
        }
      });
    });
    req.on('error', reject);
  });
  const stats = JSON.parse(ev);
  const cached = stats.routes.find((r: { route: string }) => r.route === 'cached');
  assert.ok(cached.total >= 4, JSON.stringify(stats.routes));
  assert.equal(stats.upstreams[0].name, 'origin');
});

test('audit-log: reloads (trigger, result, generation) and requests a filter denied with 403 are JSON lines beside the admin calls', async (t) => {
  const o = await startOrigin();
  const a = await startAdmin([o.port], { routes: '    route "cached" { priority 10; matches { path-prefix "/c/" }; upstream "origin"; policies { cache {} } }', top: 'cache { purge { allow "10.0.0.0/8"; } }' });
  t.after(async () => {
    await a.close();
    await o.close();
  });
  const purge = await fetch(`${a.proxy}/c/x`, { method: 'PURGE' });
  assert.equal(purge.status, 403);
  assert.equal((await a.weir.reload()).ok, true);
  await a.call('POST', '/api/v1/config/reload');
  const lines = await eventually(() => {
    const l = a.audit();
    const done = l.filter((x) => x['event'] === 'reload').length >= 2 && l.some((x) => x['event'] === 'denial') && l.some((x) => x['event'] === 'admin' && x['path'] === '/api/v1/config/reload');
    return done ? l : undefined;
  }, 'reload and denial audit lines');
  const denial = lines.find((x) => x['event'] === 'denial')!;
  assert.deepEqual([denial['type'], denial['status'], denial['route'], denial['method'], denial['path'], denial['client']], ['audit', 403, 'cached', 'PURGE', '/c/x', '127.0.0.1']);
  assert.match(denial['requestId'], /\S/);
  const reloads = lines.filter((x) => x['event'] === 'reload');
  assert.deepEqual(reloads.map((r) => [r['trigger'], r['ok'], r['generation']]), [['api', true, 2], ['admin-api', true, 3]]);
  const call = lines.find((x) => x['event'] === 'admin' && x['path'] === '/api/v1/config/reload')!;
  assert.deepEqual([call['status'], call['access'], call['change']], [200, 'full', { reload: true }]);
});

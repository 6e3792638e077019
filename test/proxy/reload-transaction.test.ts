/**
 * A reload is a transaction: whatever fails (a port in use, a bad certificate, a plugin, a
 * timeout constraint, the metrics listener), the old config, listeners and plugins keep
 * serving; a changed listener on the same address never goes through a refused connect.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { runWeir } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { createPki } from '../helpers/tls.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function origin(): Promise<Origin> {
  const o = await startOrigin((_req, res) => res.end('ok'));
  cleanups.push(() => o.close());
  return o;
}

const config = (originPort: number, listener: string, extra = ''): string => `schema-version "1.0"
listeners {
    listener "main" { ${listener} }
}
routes {
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "default" { matches { path-prefix "/"; }; upstream "origin"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}"; } }
system { graceful-shutdown-timeout-secs 2 }
${extra}
`;

/** Holds a port like another program would. */
async function holdPort(port: number): Promise<net.Server> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

async function get(url: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time (a refused connect would show), asking for keep-alive
    // so the response announces the listener's keep-alive timeout.
    const agent = new http.Agent({ keepAlive: true });
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        agent.destroy();
        resolve({ status: res.statusCode!, body, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      agent.destroy();
      reject(err);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

test('weir run: a reload onto a port in use fails, the old listener keeps serving, the process stays up', async () => {
  const o = await origin();
  const [a, b] = [await freePort(), await freePort()];
  await holdPort(b);
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, config(o.port, `address "127.0.0.1:${a}";`));
  const p = runWeir(['run', '-c', file]);
  cleanups.push(() => p.kill());
  await p.waitFor(/weir started/);
  assert.equal((await get(`http://127.0.0.1:${a}/x`)).body, 'ok');

  writeFileSync(file, config(o.port, `address "127.0.0.1:${b}";`));
  p.child.kill('SIGHUP');
  const line = JSON.parse((await p.waitFor(/^.*configuration reload failed.*$/m))[0]) as Record<string, string>;
  assert.equal(line['code'], 'WEIR_ERR_RELOAD');
  assert.equal(line['cause'], 'WEIR_ERR_LISTEN');
  assert.match(line['err']!, new RegExp(`127\\.0\\.0\\.1:${b}`));
  // Still up, still on the old port, and the failure is counted.
  assert.equal(p.child.exitCode, null);
  assert.equal((await get(`http://127.0.0.1:${a}/x`)).body, 'ok');
  const metrics = (await get(`http://127.0.0.1:${a}/_/metrics`)).body;
  assert.match(metrics, /weir_config_reloads_total\{result="error"\} 1/);
  assert.match(metrics, /weir_errors_total\{code="WEIR_ERR_RELOAD"\} 1/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited(), 0);
});

test('a reload that changes a listener on the same address: a fresh-connection loop sees no refused connect', async (t) => {
  const o = await origin();
  const port = await freePort();
  const listener = (ka: number, protocol: string): string => `address "127.0.0.1:${port}"; protocol "${protocol}"; keepalive-timeout-secs ${ka};`;
  const { weir, file } = await startWeirWith(config(o.port, listener(4, 'http')));
  cleanups.push(() => weir.close());
  let ok = 0;
  const failures: string[] = [];
  const timeouts = new Set<string>();
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const r = await get(`http://127.0.0.1:${port}/loop`);
        if (r.status === 200) ok++;
        else failures.push(String(r.status));
        timeouts.add(String(r.headers['keep-alive']));
      } catch (err) {
        failures.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
    }
  };
  const loops = Promise.all(Array.from({ length: 4 }, loop));
  try {
    // Each reload changes the listener's settings (protocol and keep-alive timeout) in place.
    for (let i = 0; i < 10; i++) {
      writeFileSync(file, config(o.port, listener(5 + i, i % 2 === 0 ? 'h2c' : 'http')));
      const r = await weir.reload();
      assert.ok(r.ok, r.error);
      await new Promise((r) => setTimeout(r, 60));
    }
  } finally {
    running = false;
    await loops;
  }
  t.diagnostic(`${ok} requests on fresh connections across 10 listener swaps, ${failures.length} failed`);
  assert.deepEqual(failures, [], `${failures.length} failed requests (${ok} ok)`);
  assert.ok(ok >= 40, `the loop ran (${ok} requests)`);
  // The new settings served: the keep-alive timeout the responses announced changed.
  assert.ok(timeouts.has('timeout=4') && timeouts.has('timeout=14'), [...timeouts].join(' '));
  assert.equal(weir.address().port, port);
});

test('a bad certificate on reload keeps the old listener and certificate serving', async () => {
  const o = await origin();
  const pki = createPki();
  const good = pki.server('good', ['127.0.0.1']);
  const dir = tmpDir();
  const cert = join(dir, 'server.crt');
  writeFileSync(cert, readFileSync(good.cert));
  const garbage = '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n';
  const tls = `address "127.0.0.1:0"; protocol "https"; tls { cert-file "${cert}"; key-file "${good.key}"; }`;
  const { weir, file } = await startWeirWith(config(o.port, tls));
  cleanups.push(() => weir.close());
  const { Agent } = await import('undici');
  const fresh = async (): Promise<string> => {
    const agent = new Agent({ connect: { ca: pki.caPem } });
    try {
      return await (await request(`${weir.url()}/x`, { dispatcher: agent })).body.text();
    } finally {
      await agent.close();
    }
  };
  const before = weir.address();
  // The certificate file goes bad; the listener's settings change too, then stay the same.
  writeFileSync(cert, garbage);
  for (const listener of [`keepalive-timeout-secs 9; ${tls}`, tls]) {
    writeFileSync(file, config(o.port, listener));
    const r = await weir.reload();
    assert.equal(r.ok, false);
    assert.match(r.error!, /certificate|PEM|asn1|no start line/i);
    assert.equal(weir.address().port, before.port);
    assert.equal(await fresh(), 'ok');
    // The listener still runs its old settings.
    assert.equal(weir.config.listeners[0]!.keepAliveTimeoutMs, 60_000);
  }
});

test('a reload with a new listener on a port in use binds nothing and keeps every old listener', async () => {
  const o = await origin();
  const taken = await freePort();
  await holdPort(taken);
  const two = `listener "second" { address "127.0.0.1:0"; }`;
  const { weir, file } = await startWeirWith(config(o.port, 'address "127.0.0.1:0";').replace('listeners {', `listeners {\n    ${two}`));
  cleanups.push(() => weir.close());
  const [main, second] = [weir.url('main'), weir.url('second')];
  // The new config adds a listener on a free port first, then one on the taken port.
  const extra = `listener "third" { address "127.0.0.1:0"; }\n    listener "fourth" { address "127.0.0.1:${taken}"; }`;
  writeFileSync(file, config(o.port, 'address "127.0.0.1:0";').replace('listeners {', `listeners {\n    ${extra}`));
  const r = await weir.reload();
  assert.equal(r.ok, false);
  assert.match(r.error!, new RegExp(`127\\.0\\.0\\.1:${taken}`));
  assert.throws(() => weir.address('third'));
  assert.equal((await get(`${main}/x`)).body, 'ok');
  assert.equal((await get(`${second}/x`)).body, 'ok');
});

test('a reload whose metrics listener cannot bind keeps the old metrics listener and proxy serving', async () => {
  const o = await origin();
  const taken = await freePort();
  await holdPort(taken);
  const metrics = (addr: string): string => `observability { metrics { address "${addr}"; } }`;
  const { weir, file, url } = await startWeirWith(config(o.port, 'address "127.0.0.1:0";', metrics('127.0.0.1:0')));
  cleanups.push(() => weir.close());
  const m = weir.metricsAddress()!;
  writeFileSync(file, config(o.port, 'address "127.0.0.1:0"; keepalive-timeout-secs 9;', metrics(`127.0.0.1:${taken}`)));
  const r = await weir.reload();
  assert.equal(r.ok, false);
  assert.match(r.error!, /metrics listener cannot bind/);
  assert.deepEqual(weir.metricsAddress(), m);
  assert.equal((await get(`${url}/x`)).body, 'ok');
  assert.match((await get(`http://127.0.0.1:${m.port}/metrics`)).body, /weir_config_reloads_total\{result="error"\} 1/);
});

test('a reload with request-timeout shorter than header-timeout is refused; the old listener keeps serving', async () => {
  const o = await origin();
  const { weir, file, url } = await startWeirWith(config(o.port, 'address "127.0.0.1:0";'));
  cleanups.push(() => weir.close());
  writeFileSync(file, config(o.port, 'address "127.0.0.1:0"; request-timeout-secs 1;', 'limits { header-timeout-ms 5000 }'));
  const r = await weir.reload();
  assert.equal(r.ok, false);
  assert.match(r.error!, /timeout/i);
  assert.equal(weir.url(), url);
  assert.equal((await get(`${url}/x`)).body, 'ok');
});

test('a reload that reads the config file empty (caught mid-write) is refused; the listeners and routes keep serving (found by the chaos reload storm)', async () => {
  const o = await origin();
  const { weir, file, url } = await startWeirWith(config(o.port, 'address "127.0.0.1:0";'));
  cleanups.push(() => weir.close());
  for (const empty of ['', '\n  \n']) {
    writeFileSync(file, empty);
    const r = await weir.reload();
    assert.equal(r.ok, false);
    assert.match(r.error!, /is empty/);
    assert.equal(weir.url(), url);
    assert.equal((await get(`${url}/x`)).body, 'ok');
  }
});

test('a reload whose plugin fails to load or to configure keeps the running plugin instances; nothing of the refused config stays loaded', async () => {
  const { buildOnce } = await import('../examples/build.ts');
  const o = await origin();
  const dir = tmpDir();
  const good = join(dir, 'add-header.wasm');
  writeFileSync(good, readFileSync(await buildOnce('examples/add-header/as')));
  const garbage = join(dir, 'garbage.wasm');
  writeFileSync(garbage, 'not a component');
  const withPlugins = (plugins: string, filters: string): string => config(o.port, 'address "127.0.0.1:0";')
    .replace('upstream "origin"; }\n}', `upstream "origin"; filters ${filters}; }\n}`)
    .replace('system {', `plugins {\n${plugins}\n}\nfilters {\n${filters.split(' ').map((f) => `filter ${f} { type "wasm"; plugin ${f}; }`).join('\n')}\n}\nsystem {`);
  const tag = (value: string, extra = '', path = good): string => `plugin "tag" { path "${path}"; ${extra} config { header "x-gen" "${value}"; } }`;
  const { weir, file, url } = await startWeirWith(withPlugins(tag('one'), '"tag"'));
  cleanups.push(() => weir.close());
  const internals = weir.plugins as unknown as { plugins: Map<string, unknown>; workers: Map<string, unknown> };
  const instance = [...internals.plugins.values()][0];
  const gen = async (): Promise<string> => String((await get(`${url}/x`)).headers['x-gen']);
  assert.equal(await gen(), 'one');

  const refused = [
    // The plugin's file is not a component.
    withPlugins(tag('two', '', garbage), '"tag"'),
    // Its configure refuses the new config block (no header).
    withPlugins(`plugin "tag" { path "${good}"; config { } }`, '"tag"'),
    // A worker-isolated version loads (its threads start), then another plugin fails.
    withPlugins(`${tag('three', 'isolation "worker";')}\nplugin "broken" { path "${garbage}"; }`, '"tag" "broken"'),
  ];
  for (const text of refused) {
    writeFileSync(file, text);
    const r = await weir.reload();
    assert.equal(r.ok, false);
    assert.equal(await gen(), 'one');
    assert.equal(internals.plugins.size, 1, 'only the running plugin stays loaded');
    assert.equal([...internals.plugins.values()][0], instance, 'the same plugin object serves');
    assert.equal(internals.workers.size, 0, 'no worker threads of the refused config remain');
  }
  writeFileSync(file, withPlugins(tag('four'), '"tag"'));
  assert.ok((await weir.reload()).ok);
  assert.equal(await gen(), 'four');
});

test('worker-threads 2: every thread prepares before any commits; a port in use aborts the reload in every thread', async () => {
  const { startCluster } = await import('../../host/src/cluster/supervisor.ts');
  const o = await origin();
  const [a, b] = [await freePort(), await freePort()];
  const holder = await holdPort(b);
  const file = join(tmpDir(), 'weir.kdl');
  const text = (port: number): string => config(o.port, `address "127.0.0.1:${port}";`, 'observability { logging { level "silent"; access-log #false; }; }').replace('system {', 'system { worker-threads 2;');
  writeFileSync(file, text(a));
  const cluster = await startCluster({ configPath: file, watch: false });
  cleanups.push(() => cluster.close());
  assert.equal((await get(`http://127.0.0.1:${a}/x`)).body, 'ok');

  writeFileSync(file, text(b));
  const failed = await cluster.reload();
  assert.equal(failed.ok, false);
  assert.deepEqual(failed.threads.map((t) => t.ok), [false, false]);
  for (const t of failed.threads) assert.match(t.error!, new RegExp(`127\\.0\\.0\\.1:${b}`));
  for (let i = 0; i < 6; i++) assert.equal((await get(`http://127.0.0.1:${a}/x`)).body, 'ok');
  assert.match((await get(`http://127.0.0.1:${a}/_/metrics`)).body, /weir_config_reloads_total\{result="error"\} 2/);

  await new Promise<void>((r) => holder.close(() => r()));
  const ok = await cluster.reload();
  assert.equal(ok.ok, true, JSON.stringify(ok));
  for (let i = 0; i < 6; i++) assert.equal((await get(`http://127.0.0.1:${b}/x`)).body, 'ok');
  await assert.rejects(get(`http://127.0.0.1:${a}/x`));
});

test('a listener a reload removes finishes its request in flight, then closes its kept-alive connection', async () => {
  let release: (() => void) | undefined;
  const o = await startOrigin((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('ok');
  });
  cleanups.push(() => o.close());
  const two = 'listener "second" { address "127.0.0.1:0"; keepalive-timeout-secs 60; }';
  const { weir, file } = await startWeirWith(config(o.port, 'address "127.0.0.1:0";').replace('listeners {', `listeners {\n    ${two}`));
  cleanups.push(() => weir.close());
  const { port } = weir.address('second');
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise((r) => sock.once('connect', r));
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  for (let i = 0; i < 200 && !release; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(release, 'the request reached the origin');

  writeFileSync(file, config(o.port, 'address "127.0.0.1:0";'));
  assert.ok((await weir.reload()).ok);
  await assert.rejects(get(`http://127.0.0.1:${port}/x`), 'the removed listener accepts nothing new');
  release!();
  // The response completes on the kept-alive connection, which is then closed (well before 60 s).
  const started = Date.now();
  await closed;
  assert.match(got, /^HTTP\/1\.1 200[^]*slow$/);
  assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
});

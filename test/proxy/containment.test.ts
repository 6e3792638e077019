/**
 * No async error ends the process: a real `weir run` keeps answering while failures are
 * injected into each of its sinks and sources, one after another: clients that reset on the
 * proxy and metrics listeners, Redis and memcached backends that reset or answer garbage, a
 * plugin file that turns into garbage, vanishes, and loses its directory during hot swap, a
 * reload whose metrics listener cannot bind, and a config directory that is deleted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { buildOnce } from '../examples/build.ts';
import { startOrigin } from '../helpers/origin.ts';
import { runWeir } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { tmpDir } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A TCP server for the store clients: resets every connection, or answers it with garbage. */
async function badServer(kind: 'reset' | 'garbage'): Promise<number> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    if (kind === 'reset') return void c.resetAndDestroy();
    c.on('data', () => c.end(Buffer.from('-ERR \u0000\u00ff garbage\r\n\u0081\u0000\u0000\u0004not-a-frame', 'latin1')));
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return (s.address() as net.AddressInfo).port;
}

function get(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/** Opens `n` connections that send half a request (HTTP/1.1, or HTTP/2 after its preface) and reset (RST). */
async function resets(port: number, n: number): Promise<void> {
  const half = ['GET /metrics HTTP/1.1\r\nHost: x\r\nX-Half: ', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0012\u0004'];
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(half[i % 2]!, 'latin1');
      setImmediate(() => {
        s.resetAndDestroy();
        resolve();
      });
    });
    s.on('error', () => resolve());
  })));
}

test('weir run stays up and keeps answering while every sink and source fails', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('ok'));
  cleanups.push(() => origin.close());
  const [redisReset, memcachedGarbage, redisGarbage, memcachedReset] = [await badServer('reset'), await badServer('garbage'), await badServer('garbage'), await badServer('reset')];
  const pluginDir = tmpDir('weir-plugin-');
  const plugin = join(pluginDir, 'add-header.wasm');
  copyFileSync(await buildOnce('examples/add-header/as'), plugin);
  const [port, metricsPort, taken] = [await freePort(), await freePort(), await freePort()];
  const holder = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((r) => holder.close(() => r())));

  const limiter = (name: string, backend: string, p: number): string => `filter "${name}" { type "rate-limit"; max-rps 1000; backend "${backend}"; ${backend}-url "${backend === 'redis' ? 'redis' : 'memcache'}://127.0.0.1:${p}"; ${backend}-timeout-ms 50; }`;
  const route = (name: string, filter: string): string => `route "${name}" { priority 5; matches { path-prefix "/${name}/"; }; upstream "origin"; filters "${filter}"; }`;
  const config = (metricsAddress: string): string => `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; protocol "h2c"; } }
plugins { plugin "add-header" { path "${plugin}"; config { header "x-served-by" "weir"; } } }
filters {
    filter "add-header" { type "wasm"; plugin "add-header"; }
    ${limiter('redis-reset', 'redis', redisReset)}
    ${limiter('redis-garbage', 'redis', redisGarbage)}
    ${limiter('memcached-reset', 'memcached', memcachedReset)}
    ${limiter('memcached-garbage', 'memcached', memcachedGarbage)}
}
routes {
    ${route('redis-reset', 'redis-reset')}
    ${route('redis-garbage', 'redis-garbage')}
    ${route('memcached-reset', 'memcached-reset')}
    ${route('memcached-garbage', 'memcached-garbage')}
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "plain" { matches { path-prefix "/"; }; upstream "origin"; filters "add-header"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}"; } }
observability { metrics { address "${metricsAddress}"; }; logging { access-log #false; }; }
system { graceful-shutdown-timeout-secs 2 }
`;
  const configDir = tmpDir('weir-config-');
  const file = join(configDir, 'weir.kdl');
  writeFileSync(file, config(`127.0.0.1:${metricsPort}`));
  const p = runWeir(['run', '-c', file]);
  cleanups.push(() => p.kill());
  await p.waitFor(/weir started/, 30_000);

  const alive = async (): Promise<void> => {
    assert.equal(p.child.exitCode, null, p.output());
    const r = await get(port, '/plain/x');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-served-by'], 'weir');
    assert.match((await get(metricsPort, '/metrics')).body, /weir_requests_total/);
  };
  await alive();

  await t.test('clients that reset on the proxy (HTTP/1.1 and h2c) and the metrics listeners', async () => {
    await resets(port, 50);
    await resets(metricsPort, 50);
    await alive();
  });

  await t.test('Redis and memcached backends that reset or answer garbage', async () => {
    for (const name of ['redis-reset', 'redis-garbage', 'memcached-reset', 'memcached-garbage']) {
      for (let i = 0; i < 5; i++) {
        const r = await get(port, `/${name}/${i}`);
        // The store fails; the filter's failure mode answers (open: forwarded): never a dead socket.
        assert.ok(r.status === 200 || r.status === 503, `${name}: ${r.status}`);
      }
    }
    await alive();
  });

  await t.test('the plugin file becomes garbage, vanishes, loses its directory', async () => {
    writeFileSync(plugin, 'not a wasm component');
    await p.waitFor(/plugin reload failed/);
    await alive();
    rmSync(plugin);
    await alive();
    rmSync(pluginDir, { recursive: true });
    await alive();
    // And the directory comes back with a good file: no crash either.
    mkdirSync(pluginDir);
    copyFileSync(await buildOnce('examples/add-header/as'), plugin);
    await alive();
  });

  await t.test('a reload whose metrics listener cannot bind', async () => {
    writeFileSync(file, config(`127.0.0.1:${taken}`));
    p.child.kill('SIGHUP');
    await p.waitFor(/configuration reload failed.*metrics listener cannot bind|metrics listener cannot bind.*configuration reload failed/);
    await alive();
  });

  await t.test('the config directory is deleted; then SIGHUP', async () => {
    rmSync(configDir, { recursive: true });
    await alive();
    const failures = (p.output().match(/configuration reload failed/g) ?? []).length;
    p.child.kill('SIGHUP');
    await p.waitFor(new RegExp(`(?:configuration reload failed[^]*){${failures + 1}}`));
    await alive();
  });

  p.child.kill('SIGTERM');
  assert.equal(await p.exited(), 0);
  assert.doesNotMatch(p.output(), /Unhandled 'error' event|uncaught/i);
});

test("the config watcher and the plugin worker pool take 'error' events instead of throwing them", async () => {
  const { watchConfigFiles } = await import('../../host/src/config/watch.ts');
  const { WorkerPool } = await import('../../plugin-abi/src/runtime/worker-phase.ts');
  const { createLogger } = await import('../../host/src/observability/logger.ts');
  const dir = tmpDir();
  writeFileSync(join(dir, 'weir.kdl'), '');
  const watchers = watchConfigFiles([join(dir, 'weir.kdl')], () => {}, createLogger({ level: 'silent', format: 'json', sync: true }));
  assert.ok(watchers.length > 0);
  for (const w of watchers) {
    assert.doesNotThrow(() => w.emit('error', new Error('the directory went away')));
    w.close();
  }
  const seen: string[] = [];
  const logger = createLogger({ level: 'error', format: 'json', sync: true });
  logger.error = ((obj: { err?: string }) => void seen.push(String(obj.err))) as typeof logger.error;
  const pool = new WorkerPool(1, logger);
  pool.start();
  try {
    const threads = (pool as unknown as { threads: Array<{ pool: { emit(e: string, err: Error): boolean } }> }).threads;
    assert.doesNotThrow(() => threads[0]!.pool.emit('error', new Error('worker failed while idle')));
    assert.deepEqual(seen, ['worker failed while idle']);
  } finally {
    await pool.close();
  }
});

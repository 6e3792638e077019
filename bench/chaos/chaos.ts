/**
 * Chaos: faults injected into a running Weir, each scenario with its expected outcome
 * asserted, the outcomes written to docs/reliability.md. Every scenario starts its own `weir
 * run` process (the thread-crash scenario runs the supervisor in this process to reach a
 * thread) and stops everything it started by PID.
 *
 *   node bench/chaos/chaos.ts [--only=origin-killed,...] [--no-docs]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { startCluster } from '../../host/src/cluster/supervisor.ts';
import { createLogger } from '../../host/src/observability/logger.ts';
import { startRedis } from '../../test/helpers/servers.ts';
import { createPki } from '../../test/helpers/tls.ts';
import { writeProbe } from '../../test/helpers/probe.ts';
import { flags, metricSum, scrape, startEnduranceOrigin, startWeirProcess, writeReliabilitySection } from '../lib/endurance.ts';
import { freePort, runHarness, stop, stopAll, type Started } from '../lib/proc.ts';
import { Load, ok, one, tally, type Outcome } from './load.ts';

const args = flags(process.argv.slice(2));
const only = args.get('only')?.split(',');
const work = mkdtempSync(join(tmpdir(), 'weir-chaos-'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Result {
  readonly name: string;
  readonly fault: string;
  readonly expected: string;
  readonly observed: string;
  readonly pass: boolean;
}

interface Scenario {
  readonly name: string;
  readonly fault: string;
  readonly expected: string;
  run(): Promise<{ observed: string; pass: boolean }>;
}

/** The config pieces every scenario shares: metrics and status routes, quiet logs. */
function config(port: number, body: { routes: string; upstreams: string; filters?: string; plugins?: string; listener?: string; top?: string; logging?: string }): string {
  return `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; ${body.listener ?? 'protocol "http";'} } }
${body.plugins ? `plugins { ${body.plugins} }` : ''}
${body.filters ? `filters { ${body.filters} }` : ''}
routes {
    route "metrics" { priority 100; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "status" { priority 100; matches { path "/_/status"; }; builtin-handler "status"; }
    ${body.routes}
}
upstreams { ${body.upstreams} }
observability { logging { level "warn"; ${body.logging ?? 'access-log #false;'} } }
system { graceful-shutdown-timeout-secs 1; }
${body.top ?? ''}
`;
}

let seq = 0;
async function weirOn(text: (port: number) => string, opts: { ulimit?: string; probe?: string } = {}): Promise<{ port: number; url: string; proc: Started; file: string }> {
  const port = await freePort();
  const file = join(work, `weir-${++seq}.kdl`);
  writeFileSync(file, text(port));
  const url = `http://127.0.0.1:${port}`;
  const proc = await startWeirProcess(file, `${url}${opts.probe ?? '/_/status'}`, { ulimit: opts.ulimit });
  return { port, url, proc, file };
}

/** Waits until `f` holds (polling), up to `ms`; returns whether it did. */
async function until(f: () => Promise<boolean> | boolean, ms: number, every = 100): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await sleep(every);
  }
  return f();
}

/** A GET on a new connection (the kernel picks the thread), its body as text. */
function fresh(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

const codes = (os: readonly Outcome[]): Set<string> => new Set(os.filter((o) => o.status !== 200).map((o) => o.code ?? String(o.status)));

const SCENARIOS: Scenario[] = [
  {
    name: 'origin-killed',
    fault: 'the origin process is SIGKILLed while 8 requests wait on it (3 s responses), then restarted on the same ports',
    expected: 'every request in flight gets 502 with a WEIR_ERR_UPSTREAM_* code within 2 s of the kill (none hangs); 200 again within 15 s of the restart; Weir keeps running',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const w = await weirOn((p) => config(p, { routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }', upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }` }));
      const inFlight = Array.from({ length: 8 }, () => one(`${w.url}/slow?ms=3000`));
      await sleep(500);
      const killedAt = Date.now();
      process.kill(origin.proc.pid, 'SIGKILL');
      const got = await Promise.all(inFlight);
      const late = got.filter((o) => o.at - killedAt > 2000).length;
      const all502 = got.every((o) => o.status === 502 && /^WEIR_ERR_UPSTREAM_/.test(o.code ?? ''));
      await sleep(300);
      const restarted = await startEnduranceOrigin({ ports: origin.ports });
      const t0 = Date.now();
      const back = await until(async () => (await one(`${w.url}/small`)).status === 200, 15_000, 200);
      const recovery = Date.now() - t0;
      const alive = !w.proc.exited();
      await stop(w.proc);
      await restarted.stop();
      return { observed: `in flight: ${tally(got)} (${late} later than 2 s after the kill); 200 again ${back ? `${recovery} ms` : 'not within 15 s'} after the restart; Weir ${alive ? 'running' : 'exited'}`, pass: all502 && late === 0 && back && alive };
    },
  },
  {
    name: 'origin-never-answers',
    fault: 'a target accepts connections and never answers (upstream `timeouts request 2`), beside a healthy route under load',
    expected: 'requests to it get 504 WEIR_ERR_UPSTREAM_TIMEOUT after about 2 s (under 4 s); the healthy route under load answers every request with 200',
    run: async () => {
      const held = new Set<net.Socket>();
      const silent = net.createServer((s) => {
        held.add(s);
        s.on('error', () => {});
        s.resume();
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const origin = await startEnduranceOrigin({ count: 1 });
      const w = await weirOn((p) => config(p, {
        routes: 'route "silent" { matches { path-prefix "/silent"; }; upstream "silent"; }\n    route "all" { matches { path-prefix "/"; }; upstream "o"; }',
        upstreams: `upstream "silent" { target "127.0.0.1:${(silent.address() as net.AddressInfo).port}"; timeouts { request 2; } }\n    upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      }));
      const load = new Load(`${w.url}/small`, { concurrency: 4 });
      const stuck = await Promise.all(Array.from({ length: 6 }, () => one(`${w.url}/silent`)));
      const healthy = await load.stop();
      const pass = stuck.every((o) => o.status === 504 && o.code === 'WEIR_ERR_UPSTREAM_TIMEOUT' && o.ms >= 1900 && o.ms < 4000) && ok(healthy) === healthy.length && healthy.length > 0;
      await stop(w.proc);
      await origin.stop();
      for (const s of held) s.destroy();
      silent.close();
      return { observed: `silent target: ${tally(stuck)} in ${Math.min(...stuck.map((o) => o.ms)).toFixed(0)}–${Math.max(...stuck.map((o) => o.ms)).toFixed(0)} ms; healthy route: ${tally(healthy)}`, pass };
    },
  },
  {
    name: 'origin-resets-after-head',
    fault: 'the origin sends `200` with `content-length: 100000` and 10 body bytes, then resets the connection',
    expected: 'the client never receives a complete 200: the response is cut off (an aborted body, the connection closed); Weir counts WEIR_ERR_UPSTREAM_RESET and keeps serving',
    run: async () => {
      const bad = net.createServer((s) => {
        s.on('error', () => {});
        s.once('data', () => {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ncontent-type: text/plain\r\n\r\n0123456789');
          setTimeout(() => s.resetAndDestroy(), 50);
        });
      });
      await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
      const w = await weirOn((p) => config(p, { routes: 'route "all" { matches { path-prefix "/"; }; upstream "bad"; }', upstreams: `upstream "bad" { target "127.0.0.1:${(bad.address() as net.AddressInfo).port}"; }` }));
      const got = await Promise.all(Array.from({ length: 5 }, () => one(`${w.url}/x`)));
      const m = await scrape(`${w.url}/_/metrics`);
      const resets = metricSum(m, 'weir_errors_total', 'code="WEIR_ERR_UPSTREAM_RESET"');
      const alive = (await one(`${w.url}/_/status`)).status === 200;
      await stop(w.proc);
      bad.close();
      const pass = got.every((o) => o.status !== 200) && resets >= got.length && alive;
      return { observed: `client: ${tally(got)}; weir_errors_total{WEIR_ERR_UPSTREAM_RESET} ${resets}; Weir ${alive ? 'serving' : 'not serving'}`, pass };
    },
  },
  {
    name: 'origin-slow-5s',
    fault: 'the origin takes 5 s to answer; one route waits (default timeouts), one has `policies { timeout-secs 2 }`; a fast route under load beside them',
    expected: 'the waiting route answers 200 after 5 s; the 2 s route answers 504 WEIR_ERR_UPSTREAM_TIMEOUT after about 2 s; every fast request is 200',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const w = await weirOn((p) => config(p, {
        routes: 'route "short" { matches { path-prefix "/short"; }; upstream "o"; policies { timeout-secs 2; } }\n    route "all" { matches { path-prefix "/"; }; upstream "o"; }',
        upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      }));
      const load = new Load(`${w.url}/small`, { concurrency: 4 });
      const [waited, cut] = await Promise.all([
        Promise.all(Array.from({ length: 4 }, () => one(`${w.url}/slow?ms=5000`))),
        Promise.all(Array.from({ length: 4 }, () => one(`${w.url}/short/slow?ms=5000`))),
      ]);
      const fast = await load.stop();
      await stop(w.proc);
      await origin.stop();
      const pass = waited.every((o) => o.status === 200 && o.ms >= 4900) && cut.every((o) => o.status === 504 && o.code === 'WEIR_ERR_UPSTREAM_TIMEOUT' && o.ms < 4000) && ok(fast) === fast.length;
      return { observed: `waiting route: ${tally(waited)} after ${Math.min(...waited.map((o) => o.ms)).toFixed(0)} ms or more; 2 s route: ${tally(cut)} after ${Math.max(...cut.map((o) => o.ms)).toFixed(0)} ms at most; fast route: ${tally(fast)}`, pass };
    },
  },
  {
    name: 'all-targets-down',
    fault: 'both targets of an upstream stop (the origin process is killed) under load, then come back',
    expected: 'requests in flight at the kill 502 WEIR_ERR_UPSTREAM_RESET, new ones 502 WEIR_ERR_UPSTREAM_CONNECT, then, once both targets are ejected, 503 WEIR_ERR_CIRCUIT_OPEN answered fast (p50 under 20 ms); 200 again once the origin is back and the ejection has expired (under 30 s)',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 2 });
      const w = await weirOn((p) => config(p, { routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }', upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; target "127.0.0.1:${origin.ports[1]}"; }` }));
      const load = new Load(`${w.url}/small`, { concurrency: 4, pauseMs: 20 });
      await sleep(1000);
      process.kill(origin.proc.pid, 'SIGKILL');
      const downAt = Date.now();
      const opened = await until(() => load.outcomes.some((o) => o.at > downAt && o.code === 'WEIR_ERR_CIRCUIT_OPEN'), 10_000);
      await sleep(2000);
      const restarted = await startEnduranceOrigin({ ports: origin.ports });
      const upAt = Date.now();
      const back = await until(() => load.outcomes.some((o) => o.at > upAt && o.status === 200), 30_000);
      await sleep(1000);
      const all = await load.stop();
      const down = all.filter((o) => o.at > downAt && o.at < upAt);
      const open = down.filter((o) => o.code === 'WEIR_ERR_CIRCUIT_OPEN').map((o) => o.ms).sort((a, b) => a - b);
      const p50 = open[Math.floor(open.length / 2)] ?? Infinity;
      const firstOk = all.find((o) => o.at > upAt && o.status === 200);
      // Requests in flight when the origin died see it reset; later ones cannot connect.
      const unexpected = [...codes(down)].filter((c) => c !== 'WEIR_ERR_UPSTREAM_CONNECT' && c !== 'WEIR_ERR_CIRCUIT_OPEN' && c !== 'WEIR_ERR_UPSTREAM_RESET');
      await stop(w.proc);
      await restarted.stop();
      return {
        observed: `while down: ${tally(down)}; circuit-open p50 ${p50.toFixed(1)} ms; 200 again ${firstOk ? `${firstOk.at - upAt} ms` : 'never'} after the origin was back`,
        pass: opened && back && p50 < 20 && unexpected.length === 0,
      };
    },
  },
  {
    name: 'redis-killed',
    fault: 'the Redis behind a rate-limit filter (`redis-fallback #true`) is SIGKILLed under load for 4 s, then restarted on its port',
    expected: 'every request is answered 200 throughout (local counters while Redis is down); after the restart the counters are in Redis again',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const redis = await startRedis();
      const w = await weirOn((p) => config(p, {
        filters: `filter "limit" { type "rate-limit"; max-rps 100000; backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 50; redis-fallback #true; redis-prefix "chaos:"; }`,
        routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; filters "limit"; }',
        upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      }));
      const load = new Load(`${w.url}/small`, { concurrency: 4 });
      await sleep(1500);
      const keysBefore = Number(execFileSync('redis-cli', ['-p', String(redis.port), 'DBSIZE']).toString().trim());
      await redis.stop();
      await sleep(4000);
      const again = await startRedis(redis.port);
      const back = await until(() => Number(execFileSync('redis-cli', ['-p', String(again.port), 'DBSIZE']).toString().trim()) > 0, 30_000, 250);
      const all = await load.stop();
      await stop(w.proc);
      await again.stop();
      await origin.stop();
      return { observed: `${tally(all)}; Redis keys before the kill ${keysBefore}, counters back in the restarted Redis: ${back ? 'yes' : 'no'}`, pass: ok(all) === all.length && all.length > 0 && keysBefore > 0 && back };
    },
  },
  {
    name: 'proxy-thread-crash',
    fault: 'with `worker-threads 2`, proxy thread 1 is terminated (Worker.terminate: its isolate ends at once) while 8 clients send keep-alive requests',
    expected: 'only requests that thread held fail (at most one per client); every other request is 200; the supervisor replaces the thread (weir_thread_restarts_total 1) and both threads serve again',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const port = await freePort();
      const file = join(work, 'cluster.kdl');
      writeFileSync(file, config(port, { routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }', upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`, top: 'system { worker-threads 2; }' }).replace('system { graceful-shutdown-timeout-secs 1; }', ''));
      const cluster = await startCluster({ configPath: file, logger: createLogger({ level: 'silent', format: 'json', sync: true }), watch: false });
      const url = `http://127.0.0.1:${port}`;
      const load = new Load(`${url}/small`, { concurrency: 8 });
      await sleep(1500);
      const victim = cluster.threads[1]!;
      const old = victim.worker;
      await old.terminate();
      const replaced = await until(() => victim.worker !== old && victim.worker.threadId !== -1, 15_000);
      await victim.ready;
      await sleep(1500);
      const all = await load.stop();
      const threads = new Set<number>();
      await until(async () => {
        threads.add((JSON.parse(await fresh(`${url}/_/status`)) as { thread: number }).thread);
        return threads.size === 2;
      }, 10_000, 20);
      const m = await (await fetch(`${url}/_/metrics`)).text();
      const restarts = /weir_thread_restarts_total\{thread="1"\} (\d+)/.exec(m)?.[1];
      await cluster.close();
      await origin.stop();
      const failed = all.length - ok(all);
      return { observed: `${tally(all)}; thread replaced: ${replaced ? 'yes' : 'no'}, weir_thread_restarts_total{thread="1"} ${restarts ?? 'absent'}; threads answering afterwards: ${[...threads].sort().join(', ')}`, pass: failed <= 8 && replaced && restarts === '1' && threads.size === 2 };
    },
  },
  {
    name: 'plugin-trap-storm',
    fault: 'a wasm plugin (the Rust probe, `mode "trap"`) traps on every request of one route, 8 clients hammering it, beside a route without it under load',
    expected: 'the trapping route answers 503 WEIR_ERR_PLUGIN_TRAP, then, once the plugin backs off (5 traps in 10 s), 503 WEIR_ERR_PLUGIN_UNAVAILABLE; the other route answers every request 200; Weir keeps running',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const probe = await writeProbe(work);
      const w = await weirOn((p) => config(p, {
        plugins: `plugin "trap" { path "${probe}"; config { mode "trap"; } }`,
        filters: 'filter "trap" { type "wasm"; plugin "trap"; failure-mode "closed"; }',
        routes: 'route "trap" { matches { path-prefix "/trap"; }; upstream "o"; filters "trap"; }\n    route "all" { matches { path-prefix "/"; }; upstream "o"; }',
        upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      }));
      const storm = new Load(`${w.url}/trap`, { concurrency: 8, headers: { 'x-trap': '1' } });
      const calm = new Load(`${w.url}/small`, { concurrency: 4 });
      await sleep(5000);
      const traps = await storm.stop();
      const others = await calm.stop();
      const alive = !w.proc.exited();
      await stop(w.proc);
      await origin.stop();
      const c = codes(traps);
      return { observed: `trapping route: ${tally(traps)}; other route: ${tally(others)}; Weir ${alive ? 'running' : 'exited'}`, pass: c.has('WEIR_ERR_PLUGIN_TRAP') && c.has('WEIR_ERR_PLUGIN_UNAVAILABLE') && ok(traps) === 0 && ok(others) === others.length && others.length > 0 && alive };
    },
  },
  {
    name: 'certificate-rotated',
    fault: 'the certificate and key files of an HTTPS listener are replaced by a new pair (same CA) while 8 clients open a new TLS connection per request',
    expected: 'no request fails; new handshakes present the new certificate within 5 s (the file watch), without a reload',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const pki = createPki('Weir Chaos CA');
      const first = pki.server('first', ['127.0.0.1']);
      const second = pki.server('second', ['127.0.0.1']);
      const dir = join(work, 'certs');
      mkdirSync(dir, { recursive: true });
      const cert = join(dir, 'server.crt');
      const key = join(dir, 'server.key');
      copyFileSync(first.cert, cert);
      copyFileSync(first.key, key);
      const port = await freePort();
      const file = join(work, 'tls.kdl');
      writeFileSync(file, config(port, {
        listener: `protocol "https"; tls { cert-file "${cert}"; key-file "${key}"; }`,
        routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }',
        upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      }));
      const { start } = await import('../lib/proc.ts');
      const proc = start('weir', process.execPath, [join(import.meta.dirname, '..', '..', 'host', 'bin', 'weir.ts'), 'run', '-c', file]);
      const url = `https://127.0.0.1:${port}`;
      await until(async () => (await one(`${url}/small`, { ca: pki.caPem })).status === 200, 30_000, 100);
      const serial = (): Promise<string> => new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem }, () => {
          resolve(s.getPeerX509Certificate()?.serialNumber ?? '');
          s.destroy();
        });
        s.on('error', () => resolve(''));
      });
      const wanted = new X509Certificate(readFileSync(second.cert)).serialNumber;
      const load = new Load(`${url}/small`, { concurrency: 8, fresh: true, ca: pki.caPem });
      await sleep(1500);
      const before = await serial();
      // Key first, then the certificate, as a renewal tool writes them.
      writeFileSync(key, readFileSync(second.key));
      writeFileSync(cert, readFileSync(second.cert));
      const rotatedAt = Date.now();
      const seen = await until(async () => (await serial()) === wanted, 5_000, 100);
      const ms = Date.now() - rotatedAt;
      await sleep(1500);
      const all = await load.stop();
      await stop(proc);
      await origin.stop();
      return { observed: `${tally(all)}; new certificate served ${seen ? `${ms} ms` : 'not within 5 s'} after the files changed (before: serial ${before.slice(0, 8)}…)`, pass: ok(all) === all.length && all.length > 0 && seen };
    },
  },
  {
    name: 'reload-storm',
    fault: '50 reloads in 10 s (the config rewritten each time: a response header value and a route timeout, then SIGHUP) while 8 clients send requests',
    expected: '0 failed requests; every reload succeeds (weir_config_reloads_total{result="error"} 0); the last config serves',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const text = (g: number) => (p: number): string => config(p, {
        filters: `filter "gen" { type "headers"; response { set "x-generation" "${g}"; } }`,
        routes: `route "all" { matches { path-prefix "/"; }; upstream "o"; filters "gen"; policies { timeout-secs ${10 + (g % 5)}; } }`,
        upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
      });
      const w = await weirOn(text(0));
      const load = new Load(`${w.url}/small`, { concurrency: 8 });
      await sleep(500);
      for (let g = 1; g <= 50; g++) {
        writeFileSync(w.file, text(g)(w.port));
        process.kill(w.proc.pid, 'SIGHUP');
        await sleep(200);
      }
      const last = await until(async () => {
        const r = await fetch(`${w.url}/small`);
        await r.text();
        return r.headers.get('x-generation') === '50';
      }, 10_000);
      const all = await load.stop();
      const m = await scrape(`${w.url}/_/metrics`);
      const okReloads = metricSum(m, 'weir_config_reloads_total', 'result="ok"');
      const errReloads = metricSum(m, 'weir_config_reloads_total', 'result="error"');
      await stop(w.proc);
      await origin.stop();
      return { observed: `${tally(all)}; reloads ok ${okReloads}, failed ${errReloads} (SIGHUP and the file watch both reload); last config serving: ${last ? 'yes' : 'no'}`, pass: ok(all) === all.length && all.length > 0 && errReloads === 0 && okReloads >= 50 && last };
    },
  },
  {
    name: 'access-log-disk-full',
    fault: 'the access log is on a 1 MiB tmpfs that fills up under load (`mount -t tmpfs -o size=1m`; where mounting is not allowed, `ulimit -f 1024` on the proxy process: writes past 1 MiB fail with EFBIG)',
    expected: 'every request is answered 200; the failing sink is counted in weir_log_sink_errors_total{sink="access"} and Weir keeps running',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const dir = join(work, 'full');
      mkdirSync(dir, { recursive: true });
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status === 0;
      try {
        const w = await weirOn((p) => config(p, {
          routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }',
          upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }`,
          logging: `access-log "${join(dir, 'access.log')}";`,
        }), mounted ? {} : { ulimit: '-f 2048' }); // ulimit -f counts 512-byte blocks in sh: 1 MiB
        const load = new Load(`${w.url}/small`, { concurrency: 8 });
        const counted = await until(async () => metricSum(await scrape(`${w.url}/_/metrics`), 'weir_log_sink_errors_total', 'sink="access"') > 0, 60_000, 500);
        await sleep(2000);
        const all = await load.stop();
        const errors = metricSum(await scrape(`${w.url}/_/metrics`), 'weir_log_sink_errors_total', 'sink="access"');
        const alive = !w.proc.exited();
        await stop(w.proc);
        return { observed: `${mounted ? 'tmpfs of 1 MiB' : 'ulimit -f (mount not allowed)'}: ${tally(all)}; weir_log_sink_errors_total{sink="access"} ${errors}; Weir ${alive ? 'running' : 'exited'}`, pass: counted && ok(all) === all.length && all.length > 0 && alive };
      } finally {
        if (mounted) spawnSync('umount', [dir]);
        await origin.stop();
      }
    },
  },
  {
    name: 'fd-exhaustion',
    fault: 'the proxy runs under `ulimit -n 256`; a keep-alive client is connected, then 400 idle connections are opened, requests are sent meanwhile, then the idle connections close',
    expected: 'Weir keeps running; a connection that finds no descriptor free is reset at once (libuv\'s EMFILE handling: Weir never sees it); the keep-alive client keeps being answered (200, or a WEIR_ERR_* status if no upstream socket can be opened); 200 on new connections within 10 s once the idle ones close',
    run: async () => {
      const origin = await startEnduranceOrigin({ count: 1 });
      const w = await weirOn((p) => config(p, { routes: 'route "all" { matches { path-prefix "/"; }; upstream "o"; }', upstreams: `upstream "o" { target "127.0.0.1:${origin.ports[0]}"; }` }), { ulimit: '-n 256' });
      const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const first = await one(`${w.url}/small`, { agent: keep });
      const idle: net.Socket[] = [];
      for (let i = 0; i < 400; i++) {
        const s = net.connect({ host: '127.0.0.1', port: w.port });
        s.on('error', () => {});
        idle.push(s);
      }
      await sleep(2000);
      const during = await Promise.all(Array.from({ length: 10 }, () => one(`${w.url}/small`, { timeoutMs: 5000 })));
      const kept = [];
      for (let i = 0; i < 5; i++) kept.push(await one(`${w.url}/small`, { agent: keep, timeoutMs: 5000 }));
      for (const s of idle) s.destroy();
      keep.destroy();
      const t0 = Date.now();
      const back = await until(async () => (await one(`${w.url}/small`, { timeoutMs: 2000 })).status === 200, 10_000, 200);
      const recovered = Date.now() - t0;
      const alive = !w.proc.exited();
      await stop(w.proc);
      await origin.stop();
      const keptOk = kept.every((o) => o.status === 200 || (o.code ?? '').startsWith('WEIR_ERR_'));
      return { observed: `new connections while exhausted: ${tally(during)}; the keep-alive client: ${tally(kept)}; 200 on new connections ${back ? `${recovered} ms` : 'not within 10 s'} after the idle connections closed; Weir ${alive ? 'running' : 'exited'}`, pass: alive && back && first.status === 200 && keptOk && during.every((o) => o.status === 200 || o.status === 0 || (o.code ?? '').startsWith('WEIR_ERR_')) };
    },
  },
];

async function main(): Promise<void> {
  const load = loadavg()[0]!.toFixed(1);
  const results: Result[] = [];
  for (const s of SCENARIOS.filter((x) => !only || only.includes(x.name))) {
    let r: { observed: string; pass: boolean };
    const t0 = performance.now();
    try {
      r = await s.run();
    } catch (e) {
      r = { observed: `the scenario failed: ${(e as Error).message.split('\n')[0]}`, pass: false };
    }
    await stopAll();
    const res = { name: s.name, fault: s.fault, expected: s.expected, ...r };
    console.log(`${res.pass ? 'PASS' : 'FAIL'} ${s.name} (${((performance.now() - t0) / 1000).toFixed(0)} s): ${res.observed}`);
    results.push(res);
  }
  if (!args.has('no-docs') && !only) {
    const rows = ['| Scenario | Fault | Expected | Observed | Result |', '| --- | --- | --- | --- | --- |'];
    for (const r of results) rows.push(`| ${r.name} | ${r.fault} | ${r.expected} | ${r.observed.replace(/\|/g, '\\|')} | ${r.pass ? 'pass' : '**fail**'} |`);
    writeReliabilitySection('chaos', '## Chaos', `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run chaos\` (bench/chaos/chaos.ts), load average ${load} at start (2 cores, shared). ${results.filter((r) => r.pass).length} of ${results.length} scenarios pass.\n\n${rows.join('\n')}`);
  }
  if (results.some((r) => !r.pass)) process.exitCode = 1;
}

runHarness(main);

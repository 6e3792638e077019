/**
 * Soak: `weir run` under a steady mixed load for a long time, watching its memory.
 *
 * Load (open loop at `--load` of the rate a 10 s closed-loop calibration reached, 50 % by
 * default): HTTP/1.1 keep-alive and new-connection GETs, HTTP/2 (h2c) GETs and POSTs, 1 MiB
 * downloads and uploads over both, and WebSocket echo streams, through routes with the
 * first-party plugins on (rate-limit, geo, the lb balancer over two targets) and a wasm
 * plugin (examples/add-header). Every `--period` minutes (5; shorter runs scale it down to a
 * sixth of the run) the plugin file is replaced by a new build (hot swap) and, half a period
 * later, the config is rewritten and reloaded with SIGHUP.
 *
 * Every 10 s: RSS (/proc), heap, handles, event-loop delay p99 (Weir's metrics endpoint),
 * requests, failures, p50/p99. At the end: the least-squares RSS slope after warm-up (MB/h)
 * with R², and a table per interval written to docs/reliability.md.
 *
 * Fails on any failed request or WebSocket message, on a hot swap or reload that did not
 * succeed, on RSS after warm-up growing more than 20 %, and, when at least 20 minutes follow
 * the warm-up, on a slope over 0.5 MB/h (a shorter window's slope is mostly GC noise and is
 * reported only).
 *
 *   node bench/soak/soak.ts [--minutes=60] [--period=5] [--warmup=M] [--load=0.5] [--no-docs]
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
import { ROOT, flags, metricSum, percentile, rssOf, scrape, startEnduranceOrigin, startWeirProcess, writeReliabilitySection } from '../lib/endurance.ts';
import { freePort, runHarness, stop } from '../lib/proc.ts';
import { BIG_BYTES, SMALL_BODY } from './origin.ts';

const args = flags(process.argv.slice(2));
const minutes = Number(args.get('minutes') ?? 60);
const durationMs = minutes * 60_000;
const periodMs = Math.min(Number(args.get('period') ?? 5) * 60_000, durationMs / 6);
const warmupMs = Number(args.get('warmup') ?? Math.min(10, minutes / 3)) * 60_000;
const loadFraction = Number(args.get('load') ?? 0.5);
const writeDocs = !args.has('no-docs');
const SAMPLE_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const SLOPE_LIMIT_MB_H = 0.5;
const SLOPE_MIN_WINDOW_MS = 20 * 60_000;
const GROWTH_LIMIT = 0.2;
const WS_STREAMS = 4;
const loadAtStart = loadavg().map((l) => l.toFixed(1)).join(' / ');

type Kind = 'h1-keepalive' | 'h1-new-connection' | 'h2' | 'h1-big-get' | 'h1-big-post' | 'h2-big-get' | 'h2-small-post';
/** The request mix: weights out of 100. 1 MiB bodies are 6 % of requests (about 6 MB/s at 100 requests/s). */
const MIX: ReadonlyArray<[Kind, number]> = [['h1-keepalive', 40], ['h1-new-connection', 10], ['h2', 34], ['h2-small-post', 10], ['h1-big-get', 2], ['h1-big-post', 2], ['h2-big-get', 2]];
const bigUpload = Buffer.alloc(BIG_BYTES, 'u');

interface Interval {
  requests: number;
  failed: number;
  small: number[];
  big: number[];
  wsMessages: number;
}
const fresh = (): Interval => ({ requests: 0, failed: 0, small: [], big: [], wsMessages: 0 });

interface Sample {
  readonly t: number;
  /** The lowest of the 1 s RSS reads in the sample's 10 s: the baseline a leak raises, without the 1 MiB bodies in flight. */
  readonly rss: number;
  /** RSS at the sample's instant. */
  readonly rssNow: number;
  readonly heap: number;
  readonly handles: number;
  readonly eldP99: number;
  readonly requests: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly bigP99: number;
  readonly wsMessages: number;
  readonly weirErrors: number;
}

const failures: string[] = [];
let failedTotal = 0;
let current = fresh();
function fail(what: string): void {
  failedTotal++;
  current.failed++;
  const line = `${new Date().toISOString().slice(11, 19)} ${what}`;
  if (failures.length < 30) failures.push(line);
  console.log(`failure: ${line}`);
}

class Client {
  readonly pool: Pool;
  private session: http2.ClientHttp2Session | undefined;
  readonly port: number;
  constructor(port: number) {
    this.port = port;
    this.pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  }

  private h2(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const s = http2.connect(`http://127.0.0.1:${this.port}`);
      s.on('error', () => {});
      // A GOAWAY (a reload swapping the listener's stack) ends this session for new streams.
      s.on('goaway', () => {
        if (this.session === s) this.session = undefined;
      });
      s.on('close', () => {
        if (this.session === s) this.session = undefined;
      });
      this.session = s;
    }
    return this.session;
  }

  /** One request of `kind`; resolves to its latency, throws with what went wrong. */
  async one(kind: Kind): Promise<number> {
    const t0 = performance.now();
    switch (kind) {
      case 'h1-keepalive':
        await this.h1('GET', '/small', undefined, SMALL_BODY.length);
        break;
      case 'h1-big-get':
        await this.h1('GET', '/big', undefined, BIG_BYTES);
        break;
      case 'h1-big-post':
        await this.h1('POST', '/upload', bigUpload, -1);
        break;
      case 'h1-new-connection':
        await this.h1Fresh();
        break;
      case 'h2':
        await this.h2Request('GET', '/small', undefined, SMALL_BODY.length);
        break;
      case 'h2-big-get':
        await this.h2Request('GET', '/big', undefined, BIG_BYTES);
        break;
      case 'h2-small-post':
        await this.h2Request('POST', '/upload', Buffer.from('{"soak":true}'), -1);
        break;
    }
    return performance.now() - t0;
  }

  private async h1(method: 'GET' | 'POST', path: string, body: Buffer | undefined, expect: number): Promise<void> {
    const res = await this.pool.request({ method, path, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    check(res.statusCode, res.headers['x-soak-plugin'], bytes, expect, body?.length);
  }

  private h1Fresh(): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/small', agent: false, headers: { connection: 'close' }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            check(res.statusCode ?? 0, res.headers['x-soak-plugin'], Buffer.concat(chunks), SMALL_BODY.length);
            resolve();
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  private h2Request(method: string, path: string, body: Buffer | undefined, expect: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.h2().request({ ':method': method, ':path': path, ...(body ? { 'content-type': 'application/json' } : {}) }, { endStream: !body });
      const t = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), REQUEST_TIMEOUT_MS);
      let status = 0;
      let plugin: string | string[] | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = Number(h[':status']);
        plugin = h['x-soak-plugin'];
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        clearTimeout(t);
        try {
          check(status, plugin, Buffer.concat(chunks), expect, body?.length);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
      stream.on('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      if (body) stream.end(body);
    });
  }

  close(): void {
    this.session?.close();
    void this.pool.close();
  }
}

/** A response is good when it is 200, went through the wasm plugin and has the right body. */
function check(status: number, plugin: string | string[] | undefined, body: Buffer, expect: number, uploaded?: number): void {
  if (status !== 200) throw new Error(`status ${status}: ${body.toString('utf8').slice(0, 200)}`);
  if (plugin !== 'on') throw new Error('response lacks the wasm plugin\'s header');
  if (expect >= 0 && body.length !== expect) throw new Error(`body of ${body.length} bytes, expected ${expect}`);
  if (uploaded !== undefined && JSON.parse(body.toString()).bytes !== uploaded) throw new Error(`origin saw ${body.toString()}, sent ${uploaded} bytes`);
}

function pick(): Kind {
  let r = Math.random() * 100;
  for (const [k, w] of MIX) if ((r -= w) < 0) return k;
  return 'h1-keepalive';
}

/** WebSocket echo streams: each sends a numbered message every 100 ms and expects it back in order. */
class EchoStreams {
  private sockets: WebSocket[] = [];
  private stopped = false;
  private readonly port: number;
  constructor(port: number) {
    this.port = port;
  }

  start(): void {
    for (let i = 0; i < WS_STREAMS; i++) this.open(i);
  }

  private open(i: number): void {
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/ws/${i}`);
    this.sockets[i] = ws;
    let next = 0;
    let expected = 0;
    let lastEcho = performance.now();
    let timer: NodeJS.Timeout | undefined;
    ws.on('open', () => {
      lastEcho = performance.now();
      timer = setInterval(() => {
        // At most 20 messages in flight; an echo stream silent as long as a request may take has failed.
        if (next - expected >= 20) {
          if (performance.now() - lastEcho > REQUEST_TIMEOUT_MS) {
            fail(`websocket ${i}: no echo for ${REQUEST_TIMEOUT_MS / 1000} s`);
            ws.terminate();
          }
          return;
        }
        ws.send(`soak ${i} ${next++}`);
      }, 100);
    });
    ws.on('message', (data) => {
      lastEcho = performance.now();
      const want = `soak ${i} ${expected++}`;
      if (data.toString() !== want) fail(`websocket ${i}: got "${data.toString().slice(0, 40)}", expected "${want}"`);
      else current.wsMessages++;
    });
    ws.on('error', (e) => fail(`websocket ${i}: ${e.message}`));
    ws.on('close', (code) => {
      clearInterval(timer);
      if (this.stopped) return;
      if (code !== 1006 || performance.now() - lastEcho <= REQUEST_TIMEOUT_MS) fail(`websocket ${i} closed (${code})`);
      setTimeout(() => this.open(i), 1000);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const ws of this.sockets) ws.close();
  }
}

function config(port: number, targets: readonly number[], plugin: string, generation: number): string {
  return `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; protocol "h2c"; } }
plugins { plugin "add-header" { path "${plugin}"; config { header "x-soak-plugin" "on"; } } }
filters {
    filter "plugin" { type "wasm"; plugin "add-header"; failure-mode "closed"; }
    filter "limit" { type "rate-limit"; max-rps 1000000; key "client-ip"; }
    filter "geo" { type "geo"; action "log-only"; }
    filter "generation" { type "headers"; response { set "x-soak-generation" "${generation}"; } }
}
routes {
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "ws" { priority 5; matches { path-prefix "/ws/"; }; upstream "origin"; filters "limit" "geo"; policies { websocket #true; } }
    route "all" { matches { path-prefix "/"; }; upstream "origin"; filters "limit" "geo" "plugin" "generation"; }
}
upstreams { upstream "origin" { ${targets.map((t) => `target "127.0.0.1:${t}"`).join('; ')}; load-balancing "p2c"; } }
observability { logging { level "warn"; access-log #false; } }
`;
}

/** A copy of a component with one more custom section: a new build with a new sha256, same behaviour. */
function variant(component: Buffer, n: number): Buffer {
  const name = Buffer.from('weir-soak-build');
  const payload = Buffer.from(String(n));
  const content = Buffer.concat([leb(name.length), name, payload]);
  return Buffer.concat([component, Buffer.from([0]), leb(content.length), content]);
}

function leb(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}

/** Least squares of y on x: slope, intercept and R². */
export function fit(xs: readonly number[], ys: readonly number[]): { slope: number; r2: number } {
  const n = xs.length;
  if (n < 3) return { slope: 0, r2: 0 };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxx ? sxy / sxx : 0;
  return { slope, r2: sxx && syy ? (sxy * sxy) / (sxx * syy) : 0 };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'weir-soak-'));
  console.log(`soak: ${minutes} min, warm-up ${warmupMs / 60_000} min, hot swap and reload every ${periodMs / 60_000} min; work dir ${work}`);
  const built = await buildPlugin(join(ROOT, 'examples', 'add-header', 'as'), { out: join(work, 'add-header-build.wasm') });
  const component = readFileSync(built.outFile);
  const plugin = join(work, 'add-header.wasm');
  copyFileSync(built.outFile, plugin);
  const origin = await startEnduranceOrigin({ count: 2 });
  const port = await freePort();
  const conf = join(work, 'weir.kdl');
  let generation = 0;
  writeFileSync(conf, config(port, origin.ports, plugin, generation));
  const weir = await startWeirProcess(conf, `http://127.0.0.1:${port}/small`);
  const metricsUrl = `http://127.0.0.1:${port}/_/metrics`;
  const client = new Client(port);

  // Calibration: a closed loop of 16 workers for 10 s gives the rate this machine reaches now.
  let calibrated = 0;
  const calEnd = performance.now() + 10_000;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (performance.now() < calEnd) {
      try {
        await client.one(pick());
        calibrated++;
      } catch (e) {
        fail(`calibration: ${(e as Error).message}`);
      }
    }
  }));
  const maxRate = calibrated / 10;
  const rate = Math.max(10, Math.round(maxRate * loadFraction));
  console.log(`calibration: ${maxRate.toFixed(0)} requests/s closed loop; soak rate ${rate}/s`);
  current = fresh();

  const ws = new EchoStreams(port);
  ws.start();
  const samples: Sample[] = [];
  const events: string[] = [];
  const t0 = performance.now();
  let stopLoad = false;
  let swaps = 0;
  let reloads = 0;

  // Open loop: requests start on a 10 ms tick whatever the previous ones are doing.
  const loadDone = (async () => {
    let owed = 0;
    const inFlight = new Set<Promise<void>>();
    while (!stopLoad) {
      owed += rate / 100;
      while (owed >= 1) {
        owed--;
        const kind = pick();
        const p: Promise<void> = client.one(kind).then(
          (ms) => {
            current.requests++;
            (kind.includes('big') ? current.big : current.small).push(ms);
          },
          (e: Error) => {
            current.requests++;
            fail(`${kind}: ${e.message}`);
          },
        ).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(10);
    }
    await Promise.all(inFlight);
  })();

  let rssMin = Infinity;
  const rssTicker = setInterval(() => (rssMin = Math.min(rssMin, rssOf(weir.pid))), 1000);
  const sampler = async (): Promise<void> => {
    const iv = current;
    current = fresh();
    const m = await scrape(metricsUrl);
    const rssNow = rssOf(weir.pid);
    const s: Sample = {
      t: performance.now() - t0,
      rss: Math.min(rssMin, rssNow),
      rssNow,
      heap: metricSum(m, 'weir_process_nodejs_heap_size_used_bytes'),
      handles: metricSum(m, 'weir_process_nodejs_active_handles_total'),
      eldP99: metricSum(m, 'weir_process_nodejs_eventloop_lag_p99_seconds') * 1000,
      requests: iv.requests,
      failed: iv.failed,
      p50: percentile(iv.small, 50),
      p99: percentile(iv.small, 99),
      bigP99: percentile(iv.big, 99),
      wsMessages: iv.wsMessages,
      weirErrors: metricSum(m, 'weir_errors_total'),
    };
    samples.push(s);
    rssMin = Infinity;
    console.log(JSON.stringify({ min: +(s.t / 60_000).toFixed(2), rssMinMB: +(s.rss / 1e6).toFixed(1), rssMB: +(s.rssNow / 1e6).toFixed(1), heapMB: +(s.heap / 2 ** 20).toFixed(1), handles: s.handles, eldP99ms: +s.eldP99.toFixed(1), requests: s.requests, failed: s.failed, p50: s.p50, p99: s.p99, bigP99: s.bigP99, ws: s.wsMessages }));
  };

  let nextSample = SAMPLE_MS;
  let nextSwap = periodMs;
  let nextReload = periodMs / 2;
  while (performance.now() - t0 < durationMs) {
    if (weir.exited()) throw new Error(`weir exited during the soak:\n${weir.output()}`);
    const now = performance.now() - t0;
    if (now >= nextSample) {
      nextSample += SAMPLE_MS;
      await sampler();
    }
    if (now >= nextSwap) {
      nextSwap += periodMs;
      swaps++;
      const tmp = `${plugin}.new`;
      writeFileSync(tmp, variant(component, swaps));
      renameSync(tmp, plugin);
      events.push(`${(now / 60_000).toFixed(1)} min: plugin hot swap ${swaps}`);
    }
    if (now >= nextReload) {
      nextReload += periodMs;
      reloads++;
      generation++;
      writeFileSync(conf, config(port, origin.ports, plugin, generation));
      process.kill(weir.pid, 'SIGHUP');
      events.push(`${(now / 60_000).toFixed(1)} min: config reload ${reloads}`);
    }
    await sleep(200);
  }
  stopLoad = true;
  await loadDone;
  clearInterval(rssTicker);
  ws.stop();
  await sampler();
  const m = await scrape(metricsUrl);
  const swapOk = metricSum(m, 'weir_plugin_reloads_total', 'result="ok"');
  const swapErrors = metricSum(m, 'weir_plugin_reloads_total', 'result="error"');
  // Each rewrite is seen twice (the config file watch and SIGHUP): both reload.
  const reloadOk = metricSum(m, 'weir_config_reloads_total', 'result="ok"');
  const reloadErrors = metricSum(m, 'weir_config_reloads_total', 'result="error"');
  client.close();
  await stop(weir);
  await origin.stop();

  // The verdict.
  const after = samples.filter((s) => s.t >= warmupMs);
  const xs = after.map((s) => s.t / 3_600_000);
  const ys = after.map((s) => s.rss / 1e6);
  const { slope, r2 } = fit(xs, ys);
  const raw = fit(xs, after.map((s) => s.rssNow / 1e6));
  const base = after[0]?.rss ?? 0;
  const growth = base ? (after.at(-1)!.rss - base) / base : 0;
  const windowMs = after.length ? after.at(-1)!.t - after[0]!.t : 0;
  const slopeGated = windowMs >= SLOPE_MIN_WINDOW_MS;
  const problems: string[] = [];
  if (failedTotal) problems.push(`${failedTotal} failed requests or WebSocket messages`);
  if (swapOk < swaps || swapErrors) problems.push(`${swapOk} of ${swaps} plugin hot swaps succeeded, ${swapErrors} failed`);
  if (reloadOk < reloads || reloadErrors) problems.push(`${reloadOk} reloads succeeded for ${reloads} config rewrites, ${reloadErrors} failed`);
  if (growth > GROWTH_LIMIT) problems.push(`RSS grew ${(growth * 100).toFixed(1)} % after warm-up`);
  if (slopeGated && slope > SLOPE_LIMIT_MB_H) problems.push(`RSS slope ${slope.toFixed(2)} MB/h after warm-up (limit ${SLOPE_LIMIT_MB_H})`);
  const totalRequests = samples.reduce((a, s) => a + s.requests, 0);
  const wsTotal = samples.reduce((a, s) => a + s.wsMessages, 0);
  const summary = {
    minutes, rate, maxRate: Math.round(maxRate), requests: totalRequests, wsMessages: wsTotal, failed: failedTotal, swaps, swapOk, swapErrors, reloads, reloadOk, reloadErrors,
    slopeMBh: +slope.toFixed(3), r2: +r2.toFixed(3), rawSlopeMBh: +raw.slope.toFixed(3), rawR2: +raw.r2.toFixed(3), growthPct: +(growth * 100).toFixed(2), slopeGated, loadAtStart, loadAtEnd: loadavg().map((l) => l.toFixed(1)).join(' / '),
  };
  console.log(JSON.stringify(summary));
  if (writeDocs) writeReliabilitySection('soak', '## Soak', report(summary, samples, events, problems));
  if (problems.length) {
    console.error(`soak FAILED: ${problems.join('; ')}`);
    process.exitCode = 1;
  } else console.log('soak passed');
}

function report(s: Record<string, unknown> & { minutes: number; rate: number; maxRate: number; requests: number; wsMessages: number; failed: number; swaps: number; swapOk: number; swapErrors: number; reloads: number; reloadOk: number; reloadErrors: number; slopeMBh: number; r2: number; rawSlopeMBh: number; rawR2: number; growthPct: number; slopeGated: boolean; loadAtStart: string; loadAtEnd: string }, samples: readonly Sample[], events: readonly string[], problems: readonly string[]): string {
  // One row per reporting interval: a tenth of the run (6 min for 60 min), whole samples.
  const per = Math.max(1, Math.round(samples.length / 10));
  const rows: string[] = ['| Minutes | Requests | Failed | p50 / p99 small (ms) | p99 1 MiB (ms) | RSS, lowest (MB) | Heap used (MB) | Handles | Event-loop delay p99 (ms) | WebSocket echoes |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (let i = 0; i < samples.length; i += per) {
    const g = samples.slice(i, i + per);
    const last = g.at(-1)!;
    const from = i === 0 ? 0 : samples[i - 1]!.t;
    const med = (f: (x: Sample) => number): number => percentile(g.map(f), 50);
    rows.push(`| ${(from / 60_000).toFixed(1)}–${(last.t / 60_000).toFixed(1)} | ${g.reduce((a, x) => a + x.requests, 0)} | ${g.reduce((a, x) => a + x.failed, 0)} | ${med((x) => x.p50)} / ${Math.max(...g.map((x) => x.p99))} | ${Math.max(...g.map((x) => x.bigP99))} | ${(last.rss / 1e6).toFixed(1)} | ${(last.heap / 1e6).toFixed(1)} | ${last.handles} | ${Math.max(...g.map((x) => x.eldP99)).toFixed(1)} | ${g.reduce((a, x) => a + x.wsMessages, 0)} |`);
  }
  const verdict = problems.length ? `**Failed**: ${problems.join('; ')}.` : '**Passed.**';
  return `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run soak -- --minutes=${s.minutes}\` (bench/soak/soak.ts). Load average at start ${s.loadAtStart}, at end ${s.loadAtEnd} (1 / 5 / 15 min; 2 cores shared with other work).

${verdict} ${s.requests} requests at ${s.rate} requests/s (half of the ${s.maxRate}/s a closed-loop calibration reached), ${s.wsMessages} WebSocket echoes over ${WS_STREAMS} streams, ${s.failed} failed; ${s.swapOk} of ${s.swaps} plugin hot swaps succeeded (${s.swapErrors} failed); ${s.reloads} config rewrites made ${s.reloadOk} successful reloads (each is seen by the file watch and by SIGHUP) and ${s.reloadErrors} failed ones. RSS after warm-up: slope ${s.slopeMBh} MB/h, R² ${s.r2} (least squares over the 10 s samples, each the lowest of its ten 1 s reads; at the sample instants alone: ${s.rawSlopeMBh} MB/h, R² ${s.rawR2}), ${s.growthPct} % from the first sample to the last.${s.slopeGated ? '' : ` The window after warm-up is under ${SLOPE_MIN_WINDOW_MS / 60_000} minutes, so the slope is reported and only the 20 % growth bound is enforced.`}

${rows.join('\n')}

Events: ${events.join('; ') || 'none'}.`;
}

runHarness(main);

/**
 * Micro-benchmarks of Weir's hot-path pieces (no sockets): one on-request-headers call with
 * 10 headers through our codec vs jco's transpiled glue vs a piscina round trip vs the worker channel; the same
 * call as the proxy makes it (a WASM Phase: head conversion + validated mutations); the
 * route matcher with 1,000 routes; path normalisation; the rate-limit token bucket of the local store.
 *
 *   node bench/micro.ts [--quick]          (WEIR_MICRO_CPU=1: CPU time instead of wall time)
 *
 * Each figure is the median per-operation time over batches after warm-up (plain hrtime
 * loops: every case is a synchronous function, so a harness adds nothing but noise).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { bindCoreInstance, callOnRequestHeaders, hostImports, type CoreInstance } from '../plugin-abi/generated/codec.ts';
import { GuestMemory } from '../plugin-abi/src/abi/guest-memory.ts';
import { wasm } from '../plugin-abi/src/abi/wasm.ts';
import { loadComponent } from '../plugin-abi/src/loader/load-component.ts';
import { execFileSync } from 'node:child_process';
import { findRustToolchain } from '../host/src/plugin-tool/rust.ts';
import type { WireRequestHead as RequestHead } from '../plugin-abi/src/runtime/exchange.ts';
import { RecordingHost, codecEcho, jcoEcho } from '../test/plugin-abi/harness.ts';
import { Router } from '../host/src/router/router.ts';
import type { RouteConfig } from '../host/src/config/types.ts';
import { LocalStore } from '../host/src/store/local.ts';
import { normalizePath } from '../host/src/edge/path.ts';
import { createLogger } from '../host/src/observability/logger.ts';
import { WorkerThread } from '../plugin-abi/src/runtime/worker-thread.ts';

export interface MicroResult {
  readonly name: string;
  readonly medianNs: number;
  readonly note?: string;
}

class QuietHost extends RecordingHost {
  override counterAdd(): bigint { return 1n; }
  override geoCountry(): string | undefined { return 'NZ'; }
}

const HEADERS: Array<[string, string]> = [
  ['host', 'api.example.com'], ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) Weir/0.1'], ['accept', 'application/json'],
  ['accept-encoding', 'gzip, br'], ['accept-language', 'en-NZ,en;q=0.9'], ['x-request-id', '7f0c1e2a-95b4-4c55-b1f2-0d7e1a6c3b21'],
  ['authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3ZWlyIn0.sig'], ['content-type', 'application/json'],
  ['x-forwarded-for', '203.0.113.7'], ['cookie', 'session=abc123; theme=dark'],
];

function head(path: string): RequestHead {
  return {
    method: 'GET', scheme: 'https', authority: 'api.example.com', path, query: 'page=2&limit=50',
    headers: HEADERS.map(([name, value]) => ({ name, value })),
    clientAddress: '203.0.113.7', clientPort: 51234, routeName: 'api', properties: [], httpVersion: '1.1',
  };
}

/**
 * Median per-call time over batches. With `WEIR_MICRO_CPU=1` it is the process's CPU time
 * (user + system) instead of wall time: on a machine whose cores other work shares, wall time
 * counts the waits for a core and CPU time does not.
 */
function measure(fn: () => unknown, batches: number, per: number): number {
  for (let i = 0; i < per * 20; i++) fn();
  const samples: number[] = [];
  const cpu = process.env['WEIR_MICRO_CPU'] === '1';
  for (let b = 0; b < batches; b++) {
    if (cpu) {
      const u0 = process.cpuUsage();
      for (let i = 0; i < per; i++) fn();
      const u = process.cpuUsage(u0);
      samples.push(((u.user + u.system) * 1000) / per);
      continue;
    }
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / per);
  }
  samples.sort((x, y) => x - y);
  return samples[samples.length >> 1]!;
}

async function measureAsync(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0));
  }
  samples.sort((x, y) => x - y);
  return samples[samples.length >> 1]!;
}

function routes(n: number): RouteConfig[] {
  const loc = { file: 'bench', line: 0, column: 0 };
  const policies = { timeoutMs: undefined, failureMode: 'closed' as const, retry: { maxAttempts: 1, backoffMs: 0, maxBackoffMs: 0, retryOn: [], budgetPercent: 20, minRetryConcurrency: 3 }, maxBodySize: undefined, allowWebsocket: false, requestDecompression: undefined };
  return Array.from({ length: n }, (_, i) => ({
    name: `r${i}`, priority: 0, enabled: true, upstream: 'u', filters: [], builtinHandler: undefined, policies, loc,
    matches: [{ hosts: [`svc${i % 50}.example.com`], paths: [], pathPrefixes: [`/api/v${i % 7}/service-${i}/`], pathRegexes: [], methods: i % 3 === 0 ? ['GET', 'POST'] : [], headers: [], query: [] }],
  }));
}

/**
 * Builds a bench plugin project (bench/plugins/NAME) with `weir plugin build` in a child
 * process (the compilers' heaps and threads would slow every figure measured after them),
 * and instantiates it like the proxy does (no metering).
 */
async function benchPlugin(name: string, host: QuietHost): Promise<CoreInstance> {
  const out = join(mkdtempSync(join(tmpdir(), 'weir-micro-')), `${name}.wasm`);
  execFileSync(process.execPath, [new URL('../host/bin/weir.ts', import.meta.url).pathname, 'plugin', 'build', new URL(`./plugins/${name}/`, import.meta.url).pathname, '--out', out], { stdio: 'ignore' });
  const loaded = await loadComponent(readFileSync(out));
  const mem = new GuestMemory();
  const instance = await wasm.instantiate(loaded.core, hostImports(host, mem));
  return bindCoreInstance(mem, instance.exports);
}

/** One on-request-headers call of a real SDK plugin that reads one header and sets one (the ABI's per-hook floor). */
async function readSetCase(name: string, lang: string, B: number, P: number): Promise<MicroResult> {
  const host = new QuietHost();
  const inst = await benchPlugin(name, host);
  const h = head('/pass');
  // The exchange the hook reads (the proxy sets the request's context the same way).
  host.setExchange(h);
  let ctx = 0n;
  const d = callOnRequestHeaders(inst, ++ctx);
  if (d.tag !== 'mutate' || d.val[0]?.tag !== 'set-header' || d.val[0].val.value !== HEADERS[5]![1]) throw new Error(`read-set (${lang}): wrong decision ${JSON.stringify(d)}`);
  return { name: `read 1 header + set 1, 10 headers: ${lang} SDK plugin (inline)`, medianNs: measure(() => callOnRequestHeaders(inst, ++ctx), B, P), note: 'target ≤ 1 µs' };
}

export async function runMicro(quick = false): Promise<MicroResult[]> {
  const B = quick ? 40 : 200;
  const P = quick ? 200 : 500;
  const out: MicroResult[] = [];
  const oursHost = new QuietHost();
  const refHost = new QuietHost();
  const ours = await codecEcho(oursHost);
  const ref = await jcoEcho(refHost);
  const h = head('/pass');
  oursHost.setExchange(h);
  refHost.setExchange(h);
  let ctx = 0n;
  out.push({ name: 'on-request-headers, 10 headers, guest reads the path: our codec (inline)', medianNs: measure(() => callOnRequestHeaders(ours, ++ctx), B, P), note: 'target ≤ 1.5 µs' });
  out.push(await readSetCase('read-set', 'AssemblyScript', B, P));
  if (await findRustToolchain()) out.push(await readSetCase('read-set-rust', 'Rust', B, P));
  else out.push({ name: 'read 1 header + set 1, 10 headers: Rust SDK plugin (inline)', medianNs: NaN, note: 'n/a: no wasm32 Rust toolchain' });
  out.push({ name: 'on-request-headers, 10 headers, guest reads the path: jco transpiled glue', medianNs: measure(() => ref['onRequestHeaders']!(++ctx), B, P) });
  // A piscina round trip carrying the same head: the floor of isolation "worker".
  const pool = new Piscina({ filename: new URL('./echo-worker.mjs', import.meta.url).href, minThreads: 1, maxThreads: 1 });
  out.push({ name: 'piscina round trip with the same head (no plugin)', medianNs: await measureAsync(() => pool.run(h), quick ? 500 : 3000), note: 'a phase of isolation "worker" before the channel' });
  await pool.destroy();
  // The same head over the SharedArrayBuffer channel worker plugins use (piscina owns the thread).
  const thread = new WorkerThread({ filename: new URL('./channel-echo-worker.ts', import.meta.url).href, workerData: {}, logger: createLogger({ level: 'silent', format: 'json', sync: true }), loads: () => [] });
  out.push({ name: 'worker channel round trip with the same head (no plugin)', medianNs: await measureAsync(() => thread.call(h, [1000]), quick ? 500 : 3000), note: 'a phase of isolation "worker"' });
  await thread.close();

  const router = new Router(routes(1000));
  const last = { method: 'GET', host: 'svc49.example.com', path: '/api/v5/service-999/users', query: '', headers: {} };
  const miss = { method: 'GET', host: 'nowhere.example.com', path: '/nothing', query: '', headers: {} };
  if (router.match(last)?.config.name !== 'r999') throw new Error('router bench: wrong match');
  out.push({ name: 'route match, 1,000 routes, last route matches', medianNs: measure(() => router.match(last), B, quick ? 20 : 50) });
  out.push({ name: 'route match, 1,000 routes, no match', medianNs: measure(() => router.match(miss), B, quick ? 20 : 50) });

  // Path normalisation: the fast check returns typical paths untouched; the rest do the full pass.
  const plain = '/api/v5/service-999/users/12345';
  if (normalizePath(plain) !== plain || normalizePath('/api/./v1/%7euser//../x') !== '/api/v1/~user/x') throw new Error('path bench: wrong result');
  out.push({ name: 'path normalise, 31-char path, nothing to do (fast check)', medianNs: measure(() => normalizePath(plain), B, P * 4) });
  out.push({ name: 'path normalise, dot segments, escapes, //', medianNs: measure(() => normalizePath('/api/./v1/%7euser//../x'), B, P * 4) });

  const store = new LocalStore();
  let k = 0;
  out.push({ name: 'rate-limit token bucket take (local store, 1,000 keys)', medianNs: measure(() => store.tokenBucketTake(`ip:${k++ % 1000}`, 100, 20, 1), B, P * 4) });
  store.close();
  return out;
}

export function formatNs(ns: number): string {
  return ns < 1000 ? `${ns.toFixed(0)} ns` : ns < 1e6 ? `${(ns / 1000).toFixed(2)} µs` : `${(ns / 1e6).toFixed(2)} ms`;
}

if (import.meta.main) {
  for (const r of await runMicro(process.argv.includes('--quick'))) console.log(`${r.name.padEnd(60)} ${formatNs(r.medianNs).padStart(10)}${r.note ? `   (${r.note})` : ''}`);
}

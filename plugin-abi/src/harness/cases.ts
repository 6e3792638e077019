/**
 * `weir plugin test PLUGIN.wasm CASES`: runs a plugin against request/response fixtures
 * with no network — the unit-test harness plugin authors use in their own CI, and the
 * format of the SDK conformance suite. Each case simulates one exchange the way the proxy
 * runs it: on-request-headers → (local reply | request body → select-upstream → the case's
 * upstream response → on-response-headers → response body) → on-log, with the host's own
 * mutation validation.
 *
 * The case file format is docs/plugin-testing.md; case-schema.ts checks it strictly (unknown
 * keys are errors). Header expectations compare lowercased names; a value of null means
 * "absent". The guest's log lines of a failing case are shown with its problems.
 */
import { readFile } from 'node:fs/promises';
import { Registry } from 'prom-client';
import type { ConfigNode, PluginConfig } from '../../../host/src/config/types.ts';
import { parseKdl } from '../../../host/src/config/kdl.ts';
import { WeirError, isWeirError } from '../../../host/src/errors.ts';
import { createLogger } from '../../../host/src/observability/logger.ts';
import { runBodyHooks, runHeaderHooks, runSelectUpstream, buildChain } from '../../../host/src/pipeline/chain.ts';
import type { HeaderMap, LocalReply, RequestContext, TargetStats } from '../../../host/src/pipeline/phases.ts';
import { LocalStore } from '../../../host/src/store/local.ts';
import { HostServices } from '../runtime/host-services.ts';
import { PluginMetrics } from '../runtime/metrics.ts';
import { WasmPlugin } from '../runtime/plugin.ts';
import { wasmPhase } from '../runtime/wasm-phase.ts';
import { valueFromWire, valueToWire } from '../runtime/convert.ts';
import { caseFileProblems } from './case-schema.ts';
import pino from 'pino';

type Headers = Record<string, string | string[] | null>;

export interface CaseRequest { method?: string; path?: string; query?: string; headers?: Headers; body?: string; client?: string; scheme?: string; authority?: string }
export interface CaseUpstream { status?: number; headers?: Headers; body?: string }
export interface CaseExpect {
  local?: boolean;
  error?: string;
  /** The upstream the request goes to after the request hooks (set-upstream); the harness's default is test-upstream. */
  upstream?: string;
  upstreamRequest?: { method?: string; path?: string; query?: string; headers?: Headers; absentHeaders?: string[]; presentHeaders?: string[]; headerMatches?: Record<string, string>; body?: string };
  response?: { status?: number; headers?: Headers; absentHeaders?: string[]; presentHeaders?: string[]; headerMatches?: Record<string, string>; body?: string; bodyContains?: string };
  target?: number | null;
  /** The hold the request headers hooks decided (`pause`), in ms, summed and capped as the proxy does; 0: none. */
  pauseMs?: number;
  properties?: Record<string, string | null>;
  /** Substrings that must each appear in one of the guest's log lines during the case. */
  logs?: string[];
}
/** A fixed clock for the case: now-ms returns `nowMs`, monotonic-ns nowMs × 10⁶, and the store's TTLs and windows use it. */
export interface CaseClock { nowMs: number }
export interface PluginCase {
  name: string;
  clock?: CaseClock;
  /** Store entries set before the case runs (kv: key → UTF-8 value), as the plugin's own keys. */
  store?: { kv?: Record<string, string> };
  /** A comment: why the case exists. */
  why?: string;
  config?: string;
  request?: CaseRequest;
  upstream?: CaseUpstream;
  targets?: Array<Partial<TargetStats> & { address: string }>;
  expect: CaseExpect;
}
export interface CaseFile {
  config?: string;
  /** The clock of every case without its own. */
  clock?: CaseClock;
  cases: PluginCase[];
}

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly problems: string[];
  /** The guest's log lines during the case (`level: message`). */
  readonly logs?: readonly string[];
}

/** A guest log line as the harness keeps it. */
interface GuestLine { requestId: string | undefined; text: string }

/** The name the plugin under test runs as. */
const TESTED_PLUGIN = 'plugin-under-test';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

const quiet = createLogger({ level: (process.env['WEIR_TEST_LOG'] as 'info') ?? 'silent', format: 'json', sync: true });

function configNodes(kdl: string | undefined): ConfigNode[] {
  if (!kdl || !kdl.trim()) return [];
  const r = parseKdl(kdl, '<case config>');
  if (!r.ok) throw new Error(`case config is not valid KDL: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return [...r.nodes];
}

/** Case headers as they would arrive from a socket: values as wire bytes (latin1 strings). */
function headerMap(h: Headers | undefined): HeaderMap {
  const out: HeaderMap = Object.create(null);
  for (const [k, v] of Object.entries(h ?? {})) if (v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.map(valueToWire) : valueToWire(v);
  return out;
}

/** A header as the plugin sees it (wire bytes decoded as UTF-8 where they are UTF-8). */
function one(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : valueFromWire(Array.isArray(v) ? v.join(', ') : v);
}

interface HeaderExpect { headers?: Headers; absentHeaders?: string[]; presentHeaders?: string[]; headerMatches?: Record<string, string> }

function checkHeaders(where: string, got: HeaderMap, x: HeaderExpect, problems: string[]): void {
  const { headers: want, absentHeaders: absent } = x;
  for (const k of x.presentHeaders ?? []) if (got[k.toLowerCase()] === undefined) problems.push(`${where} header ${k} should be present, it is absent`);
  for (const [k, re] of Object.entries(x.headerMatches ?? {})) {
    const g = one(got[k.toLowerCase()]);
    let rx: RegExp;
    try {
      rx = new RegExp(re);
    } catch (err) {
      problems.push(`${where} headerMatches ${k}: invalid regular expression ${JSON.stringify(re)}: ${(err as Error).message}`);
      continue;
    }
    if (g === undefined || !rx.test(g)) problems.push(`${where} header ${k}: expected a match of /${re}/, got ${JSON.stringify(g ?? null)}`);
  }
  for (const [k, v] of Object.entries(want ?? {})) {
    const g = one(got[k.toLowerCase()]);
    const w = v === null ? undefined : Array.isArray(v) ? v.join(', ') : v;
    if (g !== w) problems.push(`${where} header ${k}: expected ${JSON.stringify(w ?? null)}, got ${JSON.stringify(g ?? null)}`);
  }
  for (const k of absent ?? []) if (got[k.toLowerCase()] !== undefined) problems.push(`${where} header ${k} should be absent, got ${JSON.stringify(one(got[k.toLowerCase()]))}`);
}

/** Loads and runs one case file against a plugin component. */
export class PluginTester {
  private readonly path: string;
  private readonly services: HostServices;
  private readonly metrics: PluginMetrics;
  private readonly store = new LocalStore();
  private readonly plugins = new Map<string, Promise<WasmPlugin>>();
  /** The running case's fixed clock (ms since the epoch), if it has one. */
  private clockMs: number | undefined;
  /** Every guest log line, tagged with the request (case) that logged it. */
  private readonly lines: GuestLine[] = [];

  constructor(wasmPath: string) {
    this.path = wasmPath;
    const registry = new Registry();
    const guestLog = pino({ level: 'trace' }, {
      write: (l: string) => {
        const o = JSON.parse(l) as { level: number; msg: string; requestId?: string; plugin?: string };
        // Only the guest's own lines (the host's log import tags them with the plugin).
        if (o.plugin !== undefined) this.lines.push({ requestId: o.requestId, text: `${LEVELS[o.level] ?? o.level}: ${o.msg}` });
      },
    });
    const real = this.store.now;
    this.store.now = () => this.clockMs ?? real();
    const clock = {
      nowMs: () => BigInt(this.clockMs ?? Date.now()),
      monotonicNs: () => (this.clockMs === undefined ? process.hrtime.bigint() : BigInt(this.clockMs) * 1_000_000n),
    };
    this.services = new HostServices({ logger: guestLog, registry, store: this.store, clock });
    this.metrics = new PluginMetrics(registry);
  }

  private plugin(configKdl: string | undefined): Promise<WasmPlugin> {
    const key = configKdl ?? '';
    let p = this.plugins.get(key);
    if (!p) {
      const cfg: PluginConfig = {
        name: TESTED_PLUGIN, path: this.path, isolation: 'inline', fuel: 100_000_000, memoryLimitBytes: 64 * 1024 * 1024,
        timeoutMs: 1000, poolSize: 4, config: configNodes(configKdl), loc: { file: '<test>', line: 0, column: 0 },
      };
      p = WasmPlugin.load(cfg, { services: this.services, metrics: this.metrics, logger: quiet });
      this.plugins.set(key, p);
    }
    return p;
  }

  async run(file: CaseFile): Promise<CaseResult[]> {
    const out: CaseResult[] = [];
    for (const c of file.cases) {
      this.clockMs = (c.clock ?? file.clock)?.nowMs;
      // Store fixtures are the plugin's own keys (the host namespaces keys by plugin name).
      for (const [k, v] of Object.entries(c.store?.kv ?? {})) {
        const key = `${TESTED_PLUGIN}\u0000${k}`;
        this.store.kvCas(key, Buffer.from(v, 'utf8'), this.store.kvGet(key)?.version, 0);
      }
      out.push(await this.runCase(c, c.config ?? file.config));
    }
    this.clockMs = undefined;
    return out;
  }

  private async runCase(c: PluginCase, configKdl: string | undefined): Promise<CaseResult> {
    const from = this.lines.length;
    const r = await this.runCaseInner(c, configKdl);
    const id = `case-${c.name}`;
    const logs = this.lines.slice(from).filter((l) => l.requestId === id || l.requestId === undefined).map((l) => l.text);
    for (const want of c.expect.logs ?? []) if (!logs.some((l) => l.includes(want))) r.problems.push(`guest log: no line contains ${JSON.stringify(want)}`);
    return { name: r.name, ok: r.problems.length === 0, problems: r.problems, logs };
  }

  private async runCaseInner(c: PluginCase, configKdl: string | undefined): Promise<CaseResult> {
    const problems: string[] = [];
    const e = c.expect;
    let plugin: WasmPlugin;
    try {
      plugin = await this.plugin(configKdl);
    } catch (err) {
      const code = isWeirError(err) ? err.code : String(err);
      if (e.error !== undefined && code === e.error) return { name: c.name, ok: true, problems };
      return { name: c.name, ok: false, problems: [`loading with this config failed: ${(err as Error).message}`] };
    }
    const phase = wasmPhase({ name: 'under-test', type: 'wasm', failureMode: 'closed', plugin: plugin.name, settings: { name: 'filter', args: [], props: {}, children: [], loc: { file: '', line: 0, column: 0 } }, loc: { file: '', line: 0, column: 0 } }, plugin);
    const chain = buildChain([phase]);
    const rq = c.request ?? {};
    const ctx: RequestContext = {
      id: `case-${c.name}`,
      startTime: performance.now(),
      client: { address: rq.client ?? '203.0.113.7', port: 40000, certSubject: undefined, tls: (rq.scheme ?? 'http') === 'https' },
      routeName: 'test',
      routePrefix: undefined,
      request: {
        method: rq.method ?? 'GET', scheme: rq.scheme ?? 'http', authority: rq.authority ?? 'example.test', path: rq.path ?? '/', query: rq.query ?? '',
        headers: headerMap({ host: rq.authority ?? 'example.test', ...rq.headers }), httpVersion: '1.1',
      },
      response: undefined,
      upstream: { name: 'test-upstream', target: undefined },
      properties: new Map(),
      filterState: new Map(),
      error: undefined,
      bytesIn: 0,
      bytesOut: 0,
      attempts: 0,
      previousTarget: undefined,
      upstreamMs: undefined,
      pauseMs: 0,
    };
    let local: LocalReply | undefined;
    let upstreamBody = Buffer.from(rq.body ?? '');
    let responseBody = Buffer.from(c.upstream?.body ?? '');
    let chosen: number | undefined;
    let pausedMs = 0;
    let error: WeirError | undefined;
    try {
      const r = await runHeaderHooks(chain.onRequestHeaders, 'onRequestHeaders', ctx, quiet);
      // The proxy holds the request here; the harness records the hold instead of waiting.
      pausedMs = ctx.pauseMs;
      if (r) local = r;
      if (!local && chain.onRequestBody.length) {
        const out = await runBodyHooks(chain.onRequestBody, 'onRequestBody', ctx, { data: upstreamBody, end: true }, quiet);
        if (out instanceof Uint8Array) upstreamBody = Buffer.from(out);
        else local = out;
      }
      if (!local && chain.selectUpstream.length && c.targets) {
        const ts: TargetStats[] = c.targets.map((t, i) => ({
          index: i, address: t.address, host: t.address.split(':')[0]!, port: Number(t.address.split(':')[1] ?? 80), weight: t.weight ?? 1, zone: t.zone ?? '',
          healthy: t.healthy ?? true, inFlight: t.inFlight ?? 0, ewmaLatencyMs: t.ewmaLatencyMs ?? 0, totalRequests: t.totalRequests ?? 0,
          totalFailures: t.totalFailures ?? 0, consecutiveFailures: t.consecutiveFailures ?? 0, lastFailureMs: t.lastFailureMs ?? 0,
        }));
        chosen = await runSelectUpstream(chain.selectUpstream, ctx, ts, quiet);
      }
      if (local) {
        responseBody = Buffer.from(local.body ?? '');
        ctx.response = { status: local.status, headers: { ...(local.headers as HeaderMap) } };
      } else {
        ctx.response = { status: c.upstream?.status ?? 200, headers: headerMap(c.upstream?.headers) };
      }
      const rr = await runHeaderHooks(chain.onResponseHeaders, 'onResponseHeaders', ctx, quiet);
      if (rr) {
        ctx.response = { status: rr.status, headers: { ...(rr.headers as HeaderMap) } };
        responseBody = Buffer.from(rr.body ?? '');
      } else if (chain.onResponseBody.length && !local) {
        const out = await runBodyHooks(chain.onResponseBody, 'onResponseBody', ctx, { data: responseBody, end: true }, quiet);
        if (out instanceof Uint8Array) responseBody = Buffer.from(out);
      }
    } catch (err) {
      error = isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error).message);
      ctx.error = error;
    }
    // The proxy does not wait for on-log; the harness does, so its effects are checked too.
    for (const p of chain.onLog) await p.onLog!(ctx);

    if (e.error !== undefined) {
      if (error?.code !== e.error) problems.push(`expected error ${e.error}, got ${error ? `${error.code}: ${error.message}${guestStack(error)}` : 'no error'}`);
      return { name: c.name, ok: problems.length === 0, problems };
    }
    if (error) problems.push(`unexpected error ${error.code}: ${error.message}${guestStack(error)}`);
    if (e.local !== undefined && e.local !== (local !== undefined)) problems.push(e.local ? 'expected a local reply, the request went upstream' : `expected the request to go upstream, got a local reply ${local?.status}`);
    const u = e.upstreamRequest;
    if (u) {
      if (local) problems.push('expected an upstream request, but the plugin replied locally');
      const q = ctx.request;
      if (u.method !== undefined && q.method !== u.method) problems.push(`upstream method: expected ${u.method}, got ${q.method}`);
      if (u.path !== undefined && q.path !== u.path) problems.push(`upstream path: expected ${u.path}, got ${q.path}`);
      if (u.query !== undefined && q.query !== u.query) problems.push(`upstream query: expected ${u.query}, got ${q.query}`);
      checkHeaders('upstream request', q.headers, u, problems);
      if (u.body !== undefined && upstreamBody.toString() !== u.body) problems.push(`upstream body: expected ${JSON.stringify(u.body.slice(0, 200))}, got ${JSON.stringify(upstreamBody.toString().slice(0, 200))}`);
    }
    const r = e.response;
    if (r && ctx.response) {
      if (r.status !== undefined && ctx.response.status !== r.status) problems.push(`response status: expected ${r.status}, got ${ctx.response.status}`);
      checkHeaders('response', ctx.response.headers, r, problems);
      if (r.body !== undefined && responseBody.toString() !== r.body) problems.push(`response body: expected ${JSON.stringify(r.body.slice(0, 200))}, got ${JSON.stringify(responseBody.toString().slice(0, 200))}`);
      if (r.bodyContains !== undefined && !responseBody.toString().includes(r.bodyContains)) problems.push(`response body should contain ${JSON.stringify(r.bodyContains)}, got ${JSON.stringify(responseBody.toString().slice(0, 200))}`);
    }
    if (e.upstream !== undefined && ctx.upstream?.name !== e.upstream) problems.push(`upstream: expected ${e.upstream}, got ${ctx.upstream?.name ?? 'none'}`);
    if (e.pauseMs !== undefined && pausedMs !== e.pauseMs) problems.push(pausedMs === 0 ? `pause: expected ${e.pauseMs} ms, the request was not paused` : `pause: expected ${e.pauseMs} ms, got ${pausedMs} ms`);
    if (e.target !== undefined && (chosen ?? null) !== e.target) problems.push(`select-upstream: expected ${e.target}, got ${chosen ?? null}`);
    for (const [k, v] of Object.entries(e.properties ?? {})) {
      if ((ctx.properties.get(k) ?? null) !== v) problems.push(`property ${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(ctx.properties.get(k) ?? null)}`);
    }
    return { name: c.name, ok: problems.length === 0, problems };
  }

  close(): void {
    this.store.close();
  }
}

export async function loadCaseFile(path: string): Promise<CaseFile> {
  const text = await readFile(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  const problems = caseFileProblems(parsed);
  if (problems.length > 0) throw new Error(`${path}: not a valid case file (docs/plugin-testing.md):\n  ${problems.join('\n  ')}`);
  return parsed as CaseFile;
}

/** Runs a case file, prints TAP-style lines and the closing "N passed, M failed" line; returns failures. */
export async function runPluginTests(wasmPath: string, casesPath: string, write: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const tester = new PluginTester(wasmPath);
  try {
    const results = await tester.run(await loadCaseFile(casesPath));
    let failed = 0;
    results.forEach((r, i) => {
      write(`${r.ok ? 'ok' : 'not ok'} ${i + 1} - ${r.name}\n`);
      for (const p of r.problems) write(`    ${p}\n`);
      if (!r.ok && r.logs && r.logs.length > 0) {
        write('    guest log:\n');
        for (const l of r.logs) write(`      ${l}\n`);
      }
      if (!r.ok) failed++;
    });
    write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed;
  } finally {
    tester.close();
  }
}

/** The guest's stack of a failed call (innermost first), as lines under a problem. */
function guestStack(err: WeirError): string {
  const stack = (err.detail as { stack?: readonly string[] } | undefined)?.stack;
  return stack?.length ? `\n  guest stack:${stack.map((f) => `\n    at ${f}`).join('')}` : '';
}

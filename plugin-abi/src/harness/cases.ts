/**
 * `weir plugin test PLUGIN.wasm CASES`: runs a plugin against request/response fixtures
 * with no network — the unit-test harness plugin authors use in their own CI, and the
 * format of the SDK conformance suite. Each case simulates one exchange the way the proxy
 * runs it: on-request-headers → (local reply | request body → select-upstream → the case's
 * upstream response → on-response-headers → response body) → on-log, with the host's own
 * mutation validation.
 *
 * Case file (JSON):
 *   { "config": "<KDL of the plugin's config block>",          // default for every case
 *     "cases": [ { "name", "config"?, "request": {method, path, query, headers, body, client},
 *                  "upstream": {status, headers, body}, "targets": [{address, weight, zone, healthy, inFlight, ewmaLatencyMs}],
 *                  "expect": { "local"?: bool, "error"?: "WEIR_ERR_…",
 *                              "upstreamRequest"?: {method, path, query, headers, absentHeaders, body},
 *                              "response"?: {status, headers, absentHeaders, body, bodyContains},
 *                              "target"?: n, "properties"?: {k: v} } } ] }
 * Header expectations compare lowercased names; a value of null means "absent".
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

type Headers = Record<string, string | string[] | null>;

export interface CaseRequest { method?: string; path?: string; query?: string; headers?: Headers; body?: string; client?: string; scheme?: string; authority?: string }
export interface CaseUpstream { status?: number; headers?: Headers; body?: string }
export interface CaseExpect {
  local?: boolean;
  error?: string;
  upstreamRequest?: { method?: string; path?: string; query?: string; headers?: Headers; absentHeaders?: string[]; body?: string };
  response?: { status?: number; headers?: Headers; absentHeaders?: string[]; body?: string; bodyContains?: string };
  target?: number | null;
  properties?: Record<string, string | null>;
}
export interface PluginCase {
  name: string;
  config?: string;
  request?: CaseRequest;
  upstream?: CaseUpstream;
  targets?: Array<Partial<TargetStats> & { address: string }>;
  expect: CaseExpect;
}
export interface CaseFile {
  config?: string;
  cases: PluginCase[];
}

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly problems: string[];
}

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

function checkHeaders(where: string, got: HeaderMap, want: Headers | undefined, absent: string[] | undefined, problems: string[]): void {
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

  constructor(wasmPath: string) {
    this.path = wasmPath;
    const registry = new Registry();
    this.services = new HostServices({ logger: quiet, registry, store: this.store });
    this.metrics = new PluginMetrics(registry);
  }

  private plugin(configKdl: string | undefined): Promise<WasmPlugin> {
    const key = configKdl ?? '';
    let p = this.plugins.get(key);
    if (!p) {
      const cfg: PluginConfig = {
        name: 'plugin-under-test', path: this.path, isolation: 'inline', fuel: 100_000_000, memoryLimitBytes: 64 * 1024 * 1024,
        timeoutMs: 1000, poolSize: 4, config: configNodes(configKdl), loc: { file: '<test>', line: 0, column: 0 },
      };
      p = WasmPlugin.load(cfg, { services: this.services, metrics: this.metrics, logger: quiet });
      this.plugins.set(key, p);
    }
    return p;
  }

  async run(file: CaseFile): Promise<CaseResult[]> {
    const out: CaseResult[] = [];
    for (const c of file.cases) out.push(await this.runCase(c, c.config ?? file.config));
    return out;
  }

  private async runCase(c: PluginCase, configKdl: string | undefined): Promise<CaseResult> {
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
    };
    let local: LocalReply | undefined;
    let upstreamBody = Buffer.from(rq.body ?? '');
    let responseBody = Buffer.from(c.upstream?.body ?? '');
    let chosen: number | undefined;
    let error: WeirError | undefined;
    try {
      const r = await runHeaderHooks(chain.onRequestHeaders, 'onRequestHeaders', ctx, quiet);
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
      if (error?.code !== e.error) problems.push(`expected error ${e.error}, got ${error ? `${error.code}: ${error.message}` : 'no error'}`);
      return { name: c.name, ok: problems.length === 0, problems };
    }
    if (error) problems.push(`unexpected error ${error.code}: ${error.message}`);
    if (e.local !== undefined && e.local !== (local !== undefined)) problems.push(e.local ? 'expected a local reply, the request went upstream' : `expected the request to go upstream, got a local reply ${local?.status}`);
    const u = e.upstreamRequest;
    if (u) {
      if (local) problems.push('expected an upstream request, but the plugin replied locally');
      const q = ctx.request;
      if (u.method !== undefined && q.method !== u.method) problems.push(`upstream method: expected ${u.method}, got ${q.method}`);
      if (u.path !== undefined && q.path !== u.path) problems.push(`upstream path: expected ${u.path}, got ${q.path}`);
      if (u.query !== undefined && q.query !== u.query) problems.push(`upstream query: expected ${u.query}, got ${q.query}`);
      checkHeaders('upstream request', q.headers, u.headers, u.absentHeaders, problems);
      if (u.body !== undefined && upstreamBody.toString() !== u.body) problems.push(`upstream body: expected ${JSON.stringify(u.body.slice(0, 200))}, got ${JSON.stringify(upstreamBody.toString().slice(0, 200))}`);
    }
    const r = e.response;
    if (r && ctx.response) {
      if (r.status !== undefined && ctx.response.status !== r.status) problems.push(`response status: expected ${r.status}, got ${ctx.response.status}`);
      checkHeaders('response', ctx.response.headers, r.headers, r.absentHeaders, problems);
      if (r.body !== undefined && responseBody.toString() !== r.body) problems.push(`response body: expected ${JSON.stringify(r.body.slice(0, 200))}, got ${JSON.stringify(responseBody.toString().slice(0, 200))}`);
      if (r.bodyContains !== undefined && !responseBody.toString().includes(r.bodyContains)) problems.push(`response body should contain ${JSON.stringify(r.bodyContains)}, got ${JSON.stringify(responseBody.toString().slice(0, 200))}`);
    }
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
  const parsed = JSON.parse(text) as CaseFile;
  if (!Array.isArray(parsed.cases)) throw new Error(`${path}: expected { "cases": [...] }`);
  return parsed;
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
      if (!r.ok) failed++;
    });
    write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed;
  } finally {
    tester.close();
  }
}

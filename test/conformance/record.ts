/**
 * Records what a plugin did in one case, so the suite can compare the Rust and the
 * AssemblyScript fixture output by output (the case runner only says pass/fail). It drives
 * an exchange the way plugin-abi/src/harness/cases.ts does, with the same host pieces, and
 * keeps everything observable: reply, forwarded request, chosen target, properties, error.
 */
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { parseKdl } from '../../host/src/config/kdl.ts';
import type { ConfigNode, PluginConfig } from '../../host/src/config/types.ts';
import { isWeirError } from '../../host/src/errors.ts';
import { createLogger } from '../../host/src/observability/logger.ts';
import { buildChain, runBodyHooks, runHeaderHooks, runSelectUpstream } from '../../host/src/pipeline/chain.ts';
import type { HeaderMap, LocalReply, RequestContext, TargetStats } from '../../host/src/pipeline/phases.ts';
import { LocalStore } from '../../host/src/store/local.ts';
import type { CaseFile, PluginCase } from '../../plugin-abi/src/harness/cases.ts';
import { HostServices } from '../../plugin-abi/src/runtime/host-services.ts';
import { PluginMetrics } from '../../plugin-abi/src/runtime/metrics.ts';
import { WasmPlugin } from '../../plugin-abi/src/runtime/plugin.ts';
import { wasmPhase } from '../../plugin-abi/src/runtime/wasm-phase.ts';

const quiet = createLogger({ level: 'silent', format: 'json', sync: true });
const LOC = { file: '<conformance>', line: 0, column: 0 };

export interface Outcome {
  error?: string;
  local?: boolean;
  upstreamRequest?: { method: string; path: string; query: string; authority: string; headers: HeaderMap; body: string };
  target?: number | null;
  response?: { status: number; headers: HeaderMap; body: string };
  properties?: Record<string, string>;
}

/** Bodies over 256 bytes are summarised: the outcomes are compared and printed. */
function body(b: Uint8Array): string {
  const buf = Buffer.from(b);
  return buf.length <= 256 ? buf.toString() : `<${buf.length} bytes sha256:${createHash('sha256').update(buf).digest('hex')}>`;
}

function headers(h: Record<string, string | string[] | null> | undefined): HeaderMap {
  const out: HeaderMap = Object.create(null);
  for (const [k, v] of Object.entries(h ?? {})) if (v !== null) out[k.toLowerCase()] = v;
  return out;
}

function sorted(h: HeaderMap): HeaderMap {
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b))) as HeaderMap;
}

export class Recorder {
  private readonly store = new LocalStore();
  private readonly services: HostServices;
  private readonly metrics: PluginMetrics;
  private readonly plugins = new Map<string, Promise<WasmPlugin>>();

  private readonly wasm: string;

  constructor(wasm: string) {
    this.wasm = wasm;
    const registry = new Registry();
    this.services = new HostServices({ logger: quiet, registry, store: this.store });
    this.metrics = new PluginMetrics(registry);
  }

  private plugin(kdl: string): Promise<WasmPlugin> {
    let p = this.plugins.get(kdl);
    if (!p) {
      const parsed = kdl.trim() ? parseKdl(kdl, '<case config>') : { ok: true as const, nodes: [] };
      if (!parsed.ok) throw new Error('bad case config');
      const cfg: PluginConfig = {
        name: 'conformance', path: this.wasm, isolation: 'inline', fuel: 100_000_000, memoryLimitBytes: 64 * 1024 * 1024,
        timeoutMs: 1000, poolSize: 4, config: [...parsed.nodes] as ConfigNode[], loc: LOC,
      };
      p = WasmPlugin.load(cfg, { services: this.services, metrics: this.metrics, logger: quiet });
      this.plugins.set(kdl, p);
    }
    return p;
  }

  async run(file: CaseFile): Promise<Outcome[]> {
    const out: Outcome[] = [];
    for (const c of file.cases) out.push(await this.record(c, c.config ?? file.config ?? ''));
    return out;
  }

  private async record(c: PluginCase, kdl: string): Promise<Outcome> {
    let plugin: WasmPlugin;
    try {
      plugin = await this.plugin(kdl);
    } catch (err) {
      return { error: isWeirError(err) ? err.code : String(err) };
    }
    const settings = { name: 'filter', args: [], props: {}, children: [], loc: LOC };
    const chain = buildChain([wasmPhase({ name: 'conformance', type: 'wasm', failureMode: 'closed', plugin: plugin.name, settings, loc: LOC }, plugin)]);
    const rq = c.request ?? {};
    const ctx: RequestContext = {
      id: `conformance-${c.name}`, startTime: performance.now(),
      client: { address: rq.client ?? '203.0.113.7', port: 40000, certSubject: undefined, tls: false },
      routeName: 'test', routePrefix: undefined,
      request: {
        method: rq.method ?? 'GET', scheme: 'http', authority: rq.authority ?? 'example.test', path: rq.path ?? '/', query: rq.query ?? '',
        headers: headers({ host: rq.authority ?? 'example.test', ...rq.headers }), httpVersion: '1.1',
      },
      response: undefined, upstream: { name: 'test-upstream', target: undefined },
      properties: new Map(), filterState: new Map(), error: undefined, bytesIn: 0, bytesOut: 0, attempts: 0, previousTarget: undefined, upstreamMs: undefined, pauseMs: 0,
    };
    const o: Outcome = {};
    let local: LocalReply | undefined;
    let up: Uint8Array = Buffer.from(rq.body ?? '');
    let down: Uint8Array = Buffer.from(c.upstream?.body ?? '');
    try {
      local = (await runHeaderHooks(chain.onRequestHeaders, 'onRequestHeaders', ctx, quiet)) ?? undefined;
      if (!local && chain.onRequestBody.length) {
        const r = await runBodyHooks(chain.onRequestBody, 'onRequestBody', ctx, { data: up, end: true }, quiet);
        if (r instanceof Uint8Array) up = r;
        else local = r;
      }
      if (!local && chain.selectUpstream.length && c.targets) {
        const ts: TargetStats[] = c.targets.map((t, i) => ({
          index: i, address: t.address, host: t.address.split(':')[0]!, port: Number(t.address.split(':')[1] ?? 80), weight: t.weight ?? 1, zone: t.zone ?? '',
          healthy: t.healthy ?? true, inFlight: t.inFlight ?? 0, ewmaLatencyMs: t.ewmaLatencyMs ?? 0, totalRequests: 0, totalFailures: 0, consecutiveFailures: 0, lastFailureMs: 0,
        }));
        o.target = (await runSelectUpstream(chain.selectUpstream, ctx, ts, quiet)) ?? null;
      }
      o.local = local !== undefined;
      if (!local) {
        const q = ctx.request;
        o.upstreamRequest = { method: q.method, path: q.path, query: q.query, authority: q.authority, headers: sorted(q.headers), body: body(up) };
      }
      if (local) down = Buffer.from(local.body ?? '');
      ctx.response = local ? { status: local.status, headers: headers(local.headers as Record<string, string>) } : { status: c.upstream?.status ?? 200, headers: headers(c.upstream?.headers) };
      const rr = await runHeaderHooks(chain.onResponseHeaders, 'onResponseHeaders', ctx, quiet);
      if (rr) {
        ctx.response = { status: rr.status, headers: headers(rr.headers as Record<string, string>) };
        down = Buffer.from(rr.body ?? '');
      } else if (!local && chain.onResponseBody.length) {
        const r = await runBodyHooks(chain.onResponseBody, 'onResponseBody', ctx, { data: down, end: true }, quiet);
        if (r instanceof Uint8Array) down = r;
      }
      o.response = { status: ctx.response.status, headers: sorted(ctx.response.headers), body: body(down) };
    } catch (err) {
      o.error = isWeirError(err) ? err.code : String(err);
      if (isWeirError(err)) ctx.error = err;
    }
    for (const p of chain.onLog) await p.onLog!(ctx);
    o.properties = Object.fromEntries([...ctx.properties].sort(([a], [b]) => a.localeCompare(b)));
    return o;
  }

  close(): void {
    this.store.close();
  }
}

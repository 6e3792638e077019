/**
 * Service discovery: each upstream with a `discovery` block gets a source that finds its
 * targets (DNS A/AAAA, DNS SRV, Consul's health API, Kubernetes EndpointSlices, a watched file). A changed set is handed to `onChange`, which
 * reloads through the same transaction as the admin API's target changes: a new snapshot
 * with the new targets, while requests in flight finish on the old one. A source that fails
 * (no answer, no records, an unreadable file) keeps its last good set.
 */
import { Resolver } from 'node:dns/promises';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { request } from 'undici';
import { parseKdl } from '../config/kdl.ts';
import type { DiscoveryConfig, TargetConfig, WeirConfig } from '../config/types.ts';
import { parseAddress } from '../config/values.ts';
import { watchConfigFiles } from '../config/watch.ts';
import { kubernetesLoop } from './kubernetes.ts';
import type { Logger } from '../observability/logger.ts';

/** One discovered target (structured-clone safe: cluster threads get these). */
export interface FoundTarget {
  readonly address: string;
  readonly weight: number;
}

/** Upstream name → its discovered targets. */
export type Discovered = Readonly<Record<string, readonly FoundTarget[]>>;

/** Resolutions are at least this far apart, whatever the TTL says. */
const MIN_REFRESH_MS = 1_000;
/** How long a start or reload waits for a new source's first answer. */
const FIRST_ANSWER_MS = 5_000;

/** `config` with each discovering upstream's targets set to what was found. */
export function withDiscovered(config: WeirConfig, found: Discovered): WeirConfig {
  if (![...config.upstreams.values()].some((u) => u.discovery)) return config;
  const upstreams = new Map(config.upstreams);
  for (const [name, u] of upstreams) {
    if (!u.discovery) continue;
    const targets: TargetConfig[] = (found[name] ?? []).map((t) => {
      const a = parseAddress(t.address)!;
      return { address: t.address, host: a.host, port: a.port, weight: t.weight, zone: undefined };
    });
    upstreams.set(name, { ...u, targets });
  }
  return { ...config, upstreams };
}

interface Answer {
  readonly targets: FoundTarget[];
  /** When to ask again. */
  readonly nextMs: number;
}

interface Source {
  readonly key: string;
  /** Settles after the first answer or failure. */
  readonly first: Promise<void>;
  stop(): void;
}

export interface DiscoveryOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** A set changed: apply `current()` (a reload). */
  readonly onChange: () => void;
}

/** Discovery's metrics on `registry` (also build/metrics-doc.ts's full registry). */
export function discoveryMetrics(registry: Registry): { updates: Counter<'upstream' | 'kind'>; errors: Counter<'upstream' | 'kind'>; targets: Gauge<'upstream'> } {
  const registers = [registry];
  return {
    updates: new Counter({ name: 'weir_discovery_updates_total', help: 'Changed target sets found by discovery', labelNames: ['upstream', 'kind'], registers }),
    errors: new Counter({ name: 'weir_discovery_errors_total', help: 'Failed discovery attempts (the last good targets kept serving)', labelNames: ['upstream', 'kind'], registers }),
    targets: new Gauge({ name: 'weir_discovery_targets', help: 'Targets discovery found for the upstream', labelNames: ['upstream'], registers }),
  };
}

export class Discovery {
  private readonly sources = new Map<string, Source>();
  private found: Record<string, readonly FoundTarget[]> = {};
  private readonly opts: DiscoveryOptions;
  private readonly updates: Counter<'upstream' | 'kind'>;
  private readonly errors: Counter<'upstream' | 'kind'>;
  private readonly targets: Gauge<'upstream'>;
  private pending = false;
  private closed = false;

  constructor(opts: DiscoveryOptions) {
    this.opts = opts;
    ({ updates: this.updates, errors: this.errors, targets: this.targets } = discoveryMetrics(opts.registry));
  }

  /** The targets found so far. */
  current(): Discovered {
    return this.found;
  }

  /**
   * Runs a source for each discovering upstream of `config` (a changed block restarts its
   * source, a removed one stops); resolves once every new source answered or failed (at
   * most FIRST_ANSWER_MS).
   */
  async sync(config: WeirConfig): Promise<void> {
    if (this.closed) return;
    const fresh: Promise<void>[] = [];
    const wanted = new Map<string, DiscoveryConfig>();
    for (const [name, u] of config.upstreams) if (u.discovery) wanted.set(name, u.discovery);
    for (const [name, s] of this.sources) {
      if (wanted.get(name) === undefined || JSON.stringify(wanted.get(name)) !== s.key) {
        s.stop();
        this.sources.delete(name);
      }
    }
    for (const name of Object.keys(this.found)) {
      if (!wanted.has(name) || !this.sources.has(name)) {
        const { [name]: _gone, ...rest } = this.found;
        this.found = rest;
        this.targets.remove(name);
      }
    }
    for (const [name, d] of wanted) {
      if (this.sources.has(name)) continue;
      const s = this.start(name, d);
      this.sources.set(name, s);
      fresh.push(s.first);
    }
    if (fresh.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(fresh), new Promise<void>((r) => (timer = setTimeout(r, FIRST_ANSWER_MS)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.closed = true;
    for (const s of this.sources.values()) s.stop();
    this.sources.clear();
  }

  private start(upstream: string, d: DiscoveryConfig): Source {
    const key = JSON.stringify(d);
    const log = this.opts.logger.child({ upstream, discovery: d.kind });
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let watchers: FSWatcher[] = [];
    let settle!: () => void;
    const first = new Promise<void>((r) => (settle = r));
    const stop = (): void => {
      stopped = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    };
    const record = (targets: FoundTarget[]): void => {
      const before = this.found[upstream] ?? [];
      const was = new Map(before.map((t) => [t.address, t.weight]));
      const now = new Map(targets.map((t) => [t.address, t.weight]));
      const added = targets.filter((t) => !was.has(t.address)).map((t) => t.address);
      const removed = before.filter((t) => !now.has(t.address)).map((t) => t.address);
      const reweighted = targets.filter((t) => was.has(t.address) && was.get(t.address) !== t.weight).map((t) => t.address);
      if (added.length + removed.length + reweighted.length === 0 && upstream in this.found) return;
      this.found = { ...this.found, [upstream]: targets };
      this.updates.labels(upstream, d.kind).inc();
      this.targets.labels(upstream).set(targets.length);
      log.info({ added, removed, reweighted, targets: targets.length }, 'discovered targets changed');
      this.changed();
    };
    const failed = (err: Error): void => {
      this.errors.labels(upstream, d.kind).inc();
      log.warn({ code: 'WEIR_ERR_DISCOVERY', err: err.message, kept: (this.found[upstream] ?? []).length }, 'discovery failed; the last good targets keep serving');
    };
    if (d.kind === 'file') {
      const read = async (): Promise<void> => {
        try {
          const targets = parseTargetsFile(await readFile(d.path, 'utf8'), d.path);
          if (!stopped) record(targets);
        } catch (err) {
          if (!stopped) failed(err as Error);
        }
        settle();
      };
      watchers = watchConfigFiles([d.path], () => void read(), log);
      void read();
      return { key, first, stop };
    }
    if (d.kind === 'kubernetes') {
      const ac = new AbortController();
      void kubernetesLoop(d, ac.signal, () => stopped, record, failed, settle);
      return { key, first, stop: () => (stop(), ac.abort()) };
    }
    if (d.kind === 'consul') {
      const ac = new AbortController();
      void consulLoop(d, ac.signal, () => stopped, record, failed, settle);
      return { key, first, stop: () => (stop(), ac.abort()) };
    }
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    if (d.nameservers.length) resolver.setServers([...d.nameservers]);
    const ask = async (): Promise<void> => {
      let next = d.refreshMs;
      try {
        const a = d.kind === 'dns' ? await resolveHost(resolver, d.hostname, d.port, 1, d.refreshMs) : await resolveSrv(resolver, d.service, d.refreshMs);
        if (a.targets.length === 0) throw new Error('no records');
        next = a.nextMs;
        if (!stopped) record(a.targets);
      } catch (err) {
        if (!stopped) failed(err as Error);
      }
      settle();
      if (stopped) return;
      timer = setTimeout(() => void ask(), Math.max(MIN_REFRESH_MS, next));
      timer.unref();
    };
    void ask();
    return { key, first, stop: () => (stop(), resolver.cancel()) };
  }

  /** Coalesces changes found together into one reload. */
  private changed(): void {
    if (this.pending || this.closed) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      if (!this.closed) this.opts.onChange();
    });
  }
}

type ConsulConfig = Extract<DiscoveryConfig, { kind: 'consul' }>;

/** Consul's shape of `/v1/health/service/:name` entries (the fields read). */
interface ConsulEntry {
  readonly Node?: { readonly Address?: string };
  readonly Service?: { readonly Address?: string; readonly Port?: number; readonly Weights?: { readonly Passing?: number } };
}

/**
 * Blocking queries on Consul's health API: each asks with the last `X-Consul-Index`, so
 * Consul holds it until the service changes or `wait` passes. An index that goes backwards
 * (Consul restarted, state restored) starts over from 0, as Consul's docs say.
 */
async function consulLoop(d: ConsulConfig, signal: AbortSignal, stopped: () => boolean, record: (t: FoundTarget[]) => void, failed: (e: Error) => void, settle: () => void): Promise<void> {
  let index = 0;
  const waitS = Math.ceil(d.refreshMs / 1000);
  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
  while (!stopped()) {
    const started = Date.now();
    let sameIndex = false;
    try {
      const url = new URL(`/v1/health/service/${encodeURIComponent(d.service)}`, d.address);
      url.searchParams.set('wait', `${waitS}s`);
      if (index > 0) url.searchParams.set('index', String(index));
      if (d.datacenter !== undefined) url.searchParams.set('dc', d.datacenter);
      if (d.tag !== undefined) url.searchParams.set('tag', d.tag);
      if (d.onlyPassing) url.searchParams.set('passing', 'true');
      // Consul may add up to wait/16 of jitter; a query longer than that is stuck.
      const r = await request(url, { signal, headersTimeout: d.refreshMs * 2 + 5_000, bodyTimeout: 30_000 });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`Consul answered ${r.statusCode}: ${text.slice(0, 200)}`);
      const next = Number(r.headers['x-consul-index']);
      if (!Number.isFinite(next) || next < index) index = 0;
      else {
        sameIndex = next === index;
        index = next;
      }
      const entries = JSON.parse(text) as ConsulEntry[];
      if (!Array.isArray(entries)) throw new Error('Consul\'s answer is not an array');
      const byAddress = new Map<string, FoundTarget>();
      for (const e of entries) {
        const host = e.Service?.Address || e.Node?.Address;
        const port = e.Service?.Port;
        if (!host || !port) continue;
        const address = join(host, port);
        if (!byAddress.has(address)) byAddress.set(address, { address, weight: Math.max(0, e.Service?.Weights?.Passing ?? 1) });
      }
      if (byAddress.size === 0) throw new Error(`no ${d.onlyPassing ? 'passing ' : ''}instance of ${d.service}`);
      if (!stopped()) record([...byAddress.values()]);
    } catch (err) {
      if (stopped()) break;
      failed(err as Error);
      settle();
      await pause(Math.min(d.refreshMs, 5_000));
      continue;
    }
    settle();
    // A server that answers at once without a new index would make this a busy loop.
    if (sameIndex && Date.now() - started < 100) await pause(1_000);
  }
}

/** A or AAAA records of `host` (either may be missing); every address one target. */
async function resolveHost(resolver: Resolver, host: string, port: number, weight: number, refreshMs: number): Promise<Answer> {
  if (isIP(host)) return { targets: [{ address: join(host, port), weight }], nextMs: refreshMs };
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host, { ttl: true }), resolver.resolve6(host, { ttl: true })]);
  const records = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  if (records.length === 0) {
    const reason = v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : new Error(`no A or AAAA records for ${host}`);
    throw reason instanceof Error ? reason : new Error(String(reason));
  }
  const ttlMs = Math.min(...records.map((r) => r.ttl * 1000));
  return { targets: records.map((r) => ({ address: join(r.address, port), weight })), nextMs: Math.min(refreshMs, ttlMs) };
}

/** SRV records of `service`: those of the lowest priority, each host resolved to its addresses. */
async function resolveSrv(resolver: Resolver, service: string, refreshMs: number): Promise<Answer> {
  const records = await resolver.resolveSrv(service);
  if (records.length === 0) return { targets: [], nextMs: refreshMs };
  const lowest = Math.min(...records.map((r) => r.priority));
  const byAddress = new Map<string, FoundTarget>();
  let nextMs = refreshMs;
  for (const r of records.filter((x) => x.priority === lowest)) {
    const a = await resolveHost(resolver, r.name, r.port, Math.max(1, r.weight), refreshMs);
    nextMs = Math.min(nextMs, a.nextMs);
    for (const t of a.targets) if (!byAddress.has(t.address)) byAddress.set(t.address, t);
  }
  return { targets: [...byAddress.values()], nextMs };
}

function join(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A targets file: JSON (`[{"address","weight"}]` or `{"targets":[…]}`) or KDL
 * (`target "host:port" weight=2` lines). Throws on anything else, so the last good set stays.
 */
export function parseTargetsFile(text: string, file: string): FoundTarget[] {
  const out: FoundTarget[] = [];
  const add = (address: unknown, weight: unknown, where: string): void => {
    const a = typeof address === 'string' ? parseAddress(address) : undefined;
    if (!a || a.port === 0) throw new Error(`${where}: the address must be "host:port"`);
    const w = weight ?? 1;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) throw new Error(`${where}: the weight must be an integer ≥ 0`);
    if (out.some((t) => t.address === address)) throw new Error(`${where}: ${String(address)} is listed twice`);
    out.push({ address: address as string, weight: w });
  };
  const t = text.trimStart();
  if (t.startsWith('[') || t.startsWith('{')) {
    const json: unknown = JSON.parse(text);
    const list = Array.isArray(json) ? json : (json as { targets?: unknown }).targets;
    if (!Array.isArray(list)) throw new Error(`${file}: expected an array of targets or {"targets": […]}`);
    list.forEach((e: unknown, i) => {
      const o = typeof e === 'string' ? { address: e } : (e as { address?: unknown; weight?: unknown } | null);
      add(o?.address, o?.weight, `${file}: targets[${i}]`);
    });
  } else {
    const r = parseKdl(text, file);
    if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
    for (const n of r.nodes) {
      const where = `${file}:${n.loc.line}:${n.loc.column}`;
      if (n.name !== 'target') throw new Error(`${where}: expected \`target "host:port"\`, found \`${n.name}\``);
      add(n.args[0], n.props.weight, where);
    }
  }
  if (out.length === 0) throw new Error(`${file}: no targets`);
  return out;
}

/**
 * A loaded plugin: its compiled (metered) module, its instances, crash handling and hot
 * swap.
 *
 *   file ─► loadComponent (world check) ─► meterModule (fuel + memory cap) ─► compile
 *        ─► probe instance: describe + configure (a config error fails the load)
 *   request ─► begin(): an instance + a context id, pinned for the whole request
 *   trap / fuel / memory ─► instance discarded (its requests fail per failure-mode),
 *        the next request gets a fresh one; crash loops back off
 *   file changed ─► new version loaded beside the old; swap; requests in flight finish
 *        on the instance they started with
 *
 * Synchronous plugins share one instance per thread (like one VM per worker in Envoy):
 * calls never interleave inside it. A plugin that imports an async host function (JSPI)
 * suspends mid-call, so each of its requests checks out an instance of its own from a pool.
 *
 * `tick-ms` starts a timer per thread (startTicks, by whoever runs the hooks: the runtime for
 * inline plugins, the worker thread for isolated ones) that calls on-tick on one instance of
 * the set, as a hook without a request; after a hot swap the next tick runs the new version.
 *
 * Every hook call has a deadline (`timeout-ms`, see deadline.ts): its fuel is capped by it,
 * host calls check it, and a suspended (JSPI) call is raced against a timer. A call given up
 * (deadline, client gone) kills its instance: a suspended or trapped instance is never
 * pooled again.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { readFile } from 'node:fs/promises';
import type { ConfigNode as HostConfigNode, PluginConfig } from '../../../host/src/config/types.ts';
import { WeirError, isWeirError, type ErrorCode } from '../../../host/src/errors.ts';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { RequestContext } from '../../../host/src/pipeline/phases.ts';
import { bindCoreInstance, callConfigure, callDescribe, callOnTick, callOnTickAsync, hostImports, type CoreInstance } from '../../generated/codec.ts';
import type * as W from '../../generated/types.ts';
import { AbiTrap, GuestMemory } from '../abi/guest-memory.ts';
import { wasm, type WasmInstance, type WasmModule } from '../abi/wasm.ts';
import { loadComponent } from '../loader/load-component.ts';
import { meterModule } from '../metering.ts';
import type { Store } from '../../../host/src/store/store.ts';
import type { CallScope, HostServices } from './host-services.ts';
import { trapStack } from './trap-stack.ts';
import { checkConfigSchema, flatConfigNodes, where } from './config-schema.ts';
import { CallAbandoned, DeadlineExceeded, callFuel, chargedHost } from './deadline.ts';
import { DURATION_SAMPLE, HOOKS, type HookName, type PluginMetrics, type PluginStats } from './metrics.ts';

/** Crash-loop rule: this many failures within the window puts the plugin in backoff. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 10_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

interface FuelGlobal { value: bigint }

/** One compiled version of a plugin file. */
export interface PluginVersion {
  readonly sha256: string;
  readonly module: WasmModule;
  readonly fuelGlobal: string;
  readonly functionNames: string[];
  readonly memoryMaxBytes: number;
  readonly hostFunctions: readonly string[];
  /** Calls go through JSPI: imports http-callout or password-verify, or a store function while its store is remote. */
  readonly jspi: boolean;
  readonly info: W.PluginInfo;
  readonly hooks: ReadonlySet<string>;
  readonly config: W.ConfigNode[];
}

/** Post-return's fuel, in hook budgets (see ownBudgetForPostReturns). */
const POST_RETURN_SHARE = 16n;

export class Instance {
  readonly version: PluginVersion;
  readonly raw: WasmInstance;
  readonly core: CoreInstance;
  readonly fuel: FuelGlobal;
  readonly scope: CallScope;
  dead = false;
  /** Requests holding this instance. */
  holders = 0;
  /**
   * Tail of this instance's async calls: a call starts after the previous one finished,
   * post-return included (e.g. on-log after a client abort must not overlap a hook).
   */
  queue: Promise<void> = Promise.resolve();
  /** Set while an async (JSPI) call runs: gives the call up (rejects it with `err`). */
  inflight: ((err: WeirError) => void) | undefined;
  /** The hook of the async call in flight (for metrics). */
  hook: HookName = 'on-log';

  constructor(version: PluginVersion, raw: WasmInstance, core: CoreInstance, scope: CallScope) {
    this.version = version;
    this.raw = raw;
    this.core = core;
    this.scope = scope;
    this.fuel = raw.exports[version.fuelGlobal] as FuelGlobal;
    scope.fuel = this.fuel;
  }
}

/** A request's hold on a plugin: the instance it runs on and its context id. */
export interface Hold {
  readonly inst: Instance;
  readonly id: bigint;
}

/** KDL config nodes (tree) → the WIT's flat list with parent indexes. */
export function flattenConfig(nodes: readonly HostConfigNode[]): W.ConfigNode[] {
  const out: W.ConfigNode[] = [];
  const val = (v: unknown): W.ConfigValue => {
    if (v === null || v === undefined) return { tag: 'null' };
    if (typeof v === 'boolean') return { tag: 'boolean', val: v };
    if (typeof v === 'number') return Number.isInteger(v) ? { tag: 'integer', val: BigInt(v) } : { tag: 'float', val: v };
    return { tag: 'text', val: String(v) };
  };
  const walk = (n: HostConfigNode, parent: number | undefined): void => {
    const idx = out.length;
    out.push({ name: n.name, parent, args: n.args.map(val), props: Object.entries(n.props).map(([name, v]) => ({ name, value: val(v) })) });
    for (const c of n.children) walk(c, idx);
  };
  for (const n of nodes) walk(n, undefined);
  return out;
}

/**
 * Compiled modules by content: a config naming one file twice, or a reload, compiles it once.
 * Bounded: every hot swap brings a new build, and a module only the cache still held was kept
 * for the life of the process (the plugin-binary fuzzer's memory grew with each build).
 */
const COMPILE_CACHE_ENTRIES = 32;
const compileCache = new LRUCache<string, Promise<Omit<PluginVersion, 'info' | 'hooks' | 'config'>>>({ max: COMPILE_CACHE_ENTRIES });

/** Modules the compile cache holds (for tests). */
export function compileCacheSize(): number {
  return compileCache.size;
}

async function compile(bytes: Uint8Array, memoryMaxBytes: number): Promise<Omit<PluginVersion, 'info' | 'hooks' | 'config'>> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const key = `${sha256}:${memoryMaxBytes}`;
  let p = compileCache.get(key);
  if (!p) {
    p = (async () => {
      const comp = await loadComponent(bytes);
      let metered;
      try {
        metered = meterModule(comp.coreBytes, { memoryMaxBytes });
      } catch (err) {
        throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `cannot meter the plugin: ${(err as Error).message}`, { cause: err });
      }
      const module = await wasm.compile(metered.bytes);
      return {
        sha256,
        module,
        fuelGlobal: metered.fuelGlobal,
        functionNames: metered.functionNames,
        memoryMaxBytes,
        hostFunctions: comp.hostFunctions,
        jspi: comp.hostFunctions.some((f) => SUSPENDING_IMPORTS.includes(f)),
      };
    })();
    compileCache.set(key, p);
    p.catch(() => compileCache.delete(key));
  }
  return p;
}

/** Store host functions: they suspend (JSPI) only when the plugin's store is remote. */
const STORE_IMPORTS = ['counter-add', 'token-bucket-take', 'kv-get', 'kv-cas'];
/** Host functions that always suspend: the callout, and password hashing (off the proxy thread's time). */
const SUSPENDING_IMPORTS = ['http-callout', 'password-verify'];

/** Whether a plugin with these imports needs the JSPI call path with this store. */
export function needsJspi(hostFunctions: readonly string[], store: Store | undefined): boolean {
  return hostFunctions.some((f) => SUSPENDING_IMPORTS.includes(f)) || (store?.remote === true && hostFunctions.some((f) => STORE_IMPORTS.includes(f)));
}

export interface PluginDeps {
  readonly services: HostServices;
  /** The store this plugin's host imports use (default: the services' store). */
  readonly store?: Store;
  readonly metrics: PluginMetrics;
  readonly logger: Logger;
}

export class WasmPlugin {
  readonly name: string;
  config: PluginConfig;
  version!: PluginVersion;
  private readonly deps: PluginDeps;
  private readonly log: Logger;
  readonly stats: PluginStats;
  /** Shared instance of a synchronous plugin. */
  private primary: Instance | undefined;
  /** Idle instances of a JSPI plugin. */
  private pool: Instance[] = [];
  private nextId = 1n;
  private crashes: number[] = [];
  private backoffMs = 0;
  backoffUntil = 0;
  private sample = 0;
  private fuelBudget = 0n;
  /** The fuel budget is the deadline's share (`timeout-ms` × calibrated rate), not `fuel`. */
  private timeBound = false;
  /** The on-tick timer (startTicks), and whether a tick is running (ticks never overlap). */
  private ticker: NodeJS.Timeout | undefined;
  private ticking = false;
  /** This plugin's own geo database (`geoDatabase`), if not the shared default. */
  private geo: import('../../../host/src/geo/geo.ts').GeoDb | undefined;

  private constructor(name: string, config: PluginConfig, deps: PluginDeps) {
    this.name = name;
    this.config = config;
    this.deps = deps;
    this.log = deps.logger.child({ plugin: name });
    this.stats = deps.metrics.for(name);
    // The newest load of a name reports its serving instances' memory (a hot swap replaces it).
    this.stats.memoryBytes = () => {
      let bytes = 0;
      for (const inst of this.primary ? [this.primary, ...this.pool] : this.pool) if (!inst.dead) bytes += inst.core.mem.memory?.buffer.byteLength ?? 0;
      return bytes;
    };
  }

  /** A plugin from a version prepared elsewhere (a worker thread gets the proxy thread's). */
  static fromVersion(config: PluginConfig, version: PluginVersion, deps: PluginDeps): WasmPlugin {
    const p = new WasmPlugin(config.name, config, deps);
    p.install(version);
    return p;
  }

  static async load(config: PluginConfig, deps: PluginDeps): Promise<WasmPlugin> {
    const p = new WasmPlugin(config.name, config, deps);
    p.install(await p.prepare(config));
    return p;
  }

  /** Loads and configures a version without installing it (used for hot swap and reload). */
  async prepare(config: PluginConfig): Promise<PluginVersion> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(config.path);
    } catch (err) {
      throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `plugin ${config.name}: cannot read ${config.path}: ${(err as Error).message}`, { cause: err });
    }
    let base;
    try {
      base = await compile(bytes, config.memoryLimitBytes);
    } catch (err) {
      if (isWeirError(err)) throw new WeirError(err.code, `plugin ${config.name} (${config.path}): ${err.message}`, { cause: err });
      throw err;
    }
    if (base.hostFunctions.includes('geo-country')) {
      const { openGeoDb } = await import('../../../host/src/geo/geo.ts');
      try {
        if (config.geoDatabase) this.geo = await openGeoDb(config.geoDatabase);
        else this.deps.services.geo ??= await openGeoDb();
      } catch (err) {
        throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `plugin ${config.name}: cannot open the geo database ${config.geoDatabase ?? '(bundled)'}: ${(err as Error).message}`, { cause: err });
      }
    }
    base = { ...base, jspi: needsJspi(base.hostFunctions, this.deps.store ?? this.deps.services.store) };
    const flat = flattenConfig(config.config);
    // Probe: describe once, and make sure the plugin accepts its config before going live.
    const probe = this.instantiate({ ...base, info: undefined as never, hooks: new Set(), config: flat });
    let info: W.PluginInfo;
    try {
      info = callDescribe(probe.core);
    } catch (err) {
      throw this.classify(probe, 'describe', err, false);
    }
    // The declared schema is checked before configure sees the block.
    checkConfigSchema(this.name, info.configSchema, config.config, config.configLoc ?? config.loc);
    const version: PluginVersion = { ...base, info, hooks: new Set(info.hooks), config: flat };
    (probe as { version: PluginVersion }).version = version;
    if (version.hooks.has('on-tick') && probe.core.fns.onTick === undefined) {
      throw new WeirError('WEIR_ERR_PLUGIN_WORLD_MISMATCH', `plugin ${this.name} (${config.path}): describe lists on-tick but the component does not export it`);
    }
    if (config.tickMs !== undefined && !version.hooks.has('on-tick')) {
      throw new WeirError('WEIR_ERR_PLUGIN_CONFIG', `${where(config.loc)}plugin ${this.name}: \`tick-ms\` is set but the plugin has no timer (its describe does not list on-tick; with the SDKs, add Hook.OnTick / Hook::OnTick to hooks)`, { detail: { plugin: this.name } });
    }
    this.configure(probe);
    return version;
  }

  /** Makes `version` current; requests in flight keep the instances they hold. */
  install(version: PluginVersion): void {
    this.version = version;
    const budget = callFuel(this.config.fuel, this.config.timeoutMs);
    this.fuelBudget = budget.fuel;
    this.timeBound = budget.timeBound;
    this.primary = undefined;
    this.pool = [];
    this.crashes = [];
    this.backoffUntil = 0;
  }

  /**
   * Post-return runs the guest's housekeeping after a hook (the AssemblyScript SDK collects
   * garbage there, a full collection every few thousand calls: measured 3–4 M fuel on a 12-page
   * heap). It gets a fresh budget of the hook's size instead of the hook's remainder, so a
   * collection that falls on a busy hook does not fail that request; the hook's fuel statistics
   * stay the hook's own.
   */
  private ownBudgetForPostReturns(inst: Instance): void {
    const fns = inst.core.fns as unknown as Record<string, ((r?: number) => void) | undefined>;
    for (const key of Object.keys(fns)) {
      const post = fns[key];
      if (!key.endsWith('Post') || post === undefined) continue;
      fns[key] = (r?: number): void => {
        const left = inst.fuel.value;
        // Outside a hook (configure, before the first install) the remainder is the budget.
        // A collection sweeps the garbage of thousands of calls at once: an api-key plugin
        // under load needed more than a hook's 10 M, so housekeeping gets POST_RETURN_SHARE
        // hook budgets (still bounded: a post-return cannot run on forever).
        const budget = this.fuelBudget * POST_RETURN_SHARE;
        inst.fuel.value = budget > left ? budget : left;
        post(r);
        inst.fuel.value = left;
      };
    }
  }

  private instantiate(version: PluginVersion): Instance {
    const mem = new GuestMemory();
    const scope: CallScope = { requestId: undefined, deadline: Infinity, pendingFuel: 0, hostCalls: 0 };
    const imports = hostImports(chargedHost(this.deps.services.forPlugin(this.name, scope, this.deps.store, this.geo), scope), mem, version.jspi);
    let raw: WasmInstance;
    try {
      raw = new wasm.Instance(version.module, imports);
    } catch (err) {
      throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `plugin ${this.name}: instantiation failed: ${(err as Error).message}`, { cause: err });
    }
    const core = bindCoreInstance(mem, raw.exports);
    const inst = new Instance(version, raw, core, scope);
    this.ownBudgetForPostReturns(inst);
    this.stats.instances++;
    return inst;
  }

  private configure(inst: Instance): void {
    inst.fuel.value = BigInt(this.config.fuel);
    let r: W.Result<void, W.ConfigError>;
    try {
      r = callConfigure(inst.core, inst.version.config);
    } catch (err) {
      throw this.classify(inst, 'configure', err, false);
    }
    if (r.tag === 'err') {
      const node = r.val.node !== undefined ? inst.version.config[r.val.node] : undefined;
      const loc = r.val.node !== undefined ? flatConfigNodes(this.config.config)[r.val.node]?.loc : undefined;
      throw new WeirError('WEIR_ERR_PLUGIN_CONFIG', `${where(loc)}plugin ${this.name} rejected its config${node ? ` at \`${node.name}\`` : ''}: ${r.val.message}`, { detail: { plugin: this.name, node: r.val.node, loc } });
    }
  }

  private fresh(): Instance {
    const inst = this.instantiate(this.version);
    try {
      this.configure(inst);
    } catch (err) {
      this.discard(inst);
      throw err;
    }
    return inst;
  }

  /**
   * Calls on-tick every `tick-ms` on this thread until stopTicks; nothing without `tick-ms`.
   * The timer does not keep the process alive.
   */
  startTicks(): void {
    const ms = this.config.tickMs;
    if (ms === undefined || this.ticker !== undefined) return;
    this.ticker = setInterval(() => void this.tick(), ms);
    this.ticker.unref();
  }

  /** Stops the on-tick timer (the plugin was dropped by a reload, or the proxy is closing). */
  stopTicks(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }

  /**
   * One on-tick call on the current version, metered like a hook. A failure is logged and
   * counted by classify (and counts toward the crash-loop backoff, during which ticks are
   * skipped); it is never thrown. A tick still running when the next is due skips it.
   */
  async tick(): Promise<void> {
    if (this.ticking || !this.version.hooks.has('on-tick')) return;
    let hold: Hold;
    try {
      hold = this.begin();
    } catch {
      return; // backing off after repeated failures
    }
    this.ticking = true;
    try {
      if (this.version.jspi) await this.callAsync(hold, undefined, 'on-tick', (c) => callOnTickAsync(c));
      else this.call(hold, undefined, 'on-tick', (c) => callOnTick(c));
    } catch {
      // Logged and counted where it was classified.
    } finally {
      this.ticking = false;
      this.end(hold);
    }
  }

  /** Pins an instance and a fresh context id to a request. */
  begin(): Hold {
    if (this.backoffUntil !== 0) {
      if (Date.now() < this.backoffUntil) throw new WeirError('WEIR_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is backing off after repeated failures`);
      this.backoffUntil = 0;
    }
    let inst: Instance;
    if (!this.version.jspi) {
      if (this.primary === undefined || this.primary.dead) this.primary = this.fresh();
      inst = this.primary;
    } else {
      let found: Instance | undefined;
      while ((found = this.pool.pop()) !== undefined && (found.dead || found.version !== this.version));
      inst = found ?? this.fresh();
    }
    inst.holders++;
    return { inst, id: this.nextId++ };
  }

  /** Releases a request's hold (after on-log). */
  end(hold: Hold): void {
    const inst = hold.inst;
    inst.holders--;
    // A call still in flight here was given up by its request: the instance goes with it.
    if (inst.inflight !== undefined) this.abandon(inst, new WeirError('WEIR_ERR_CLIENT_ABORTED', `plugin ${this.name}: the request ended during a call`));
    if (this.version.jspi && !inst.dead && inst.version === this.version && this.pool.length < this.config.poolSize) this.pool.push(inst);
    else if (inst.holders === 0 && inst !== this.primary) this.discard(inst);
  }

  /**
   * A call that finished, but past its deadline (a slow host call, a pause of the thread):
   * the answer is refused; the guest's state is whole, so the instance stays.
   */
  private late(hook: HookName, ctx: RequestContext | undefined, ms: number): WeirError {
    this.count(hook, 'timeout');
    const message = `plugin ${this.name} answered ${hook} after ${Math.round(ms)} ms, past its ${this.config.timeoutMs} ms deadline`;
    this.log.warn({ hook, kind: 'timeout', code: 'WEIR_ERR_PLUGIN_TIMEOUT', requestId: ctx?.id }, message);
    return new WeirError('WEIR_ERR_PLUGIN_TIMEOUT', message, { detail: { plugin: this.name, hook } });
  }

  /** Gives up the request's async call, if one is in flight (its client left). */
  cancel(hold: Hold): void {
    this.abandon(hold.inst, new WeirError('WEIR_ERR_CLIENT_ABORTED', `plugin ${this.name}: the client left during a call`));
  }

  /** Whether the request's instance is in the middle of an async call. */
  busy(hold: Hold): boolean {
    return hold.inst.inflight !== undefined;
  }

  /**
   * Gives up the async call running on `inst`: its callout is aborted, the guest traps if
   * it resumes, the instance is discarded and the call rejects with `err`.
   */
  private abandon(inst: Instance, err: WeirError): void {
    const giveUp = inst.inflight;
    if (giveUp === undefined) return;
    inst.inflight = undefined;
    inst.scope.abandoned = true;
    this.discard(inst);
    this.count(inst.hook, err.code === 'WEIR_ERR_PLUGIN_TIMEOUT' ? 'timeout' : 'abandoned');
    this.log.warn({ code: err.code, requestId: inst.scope.requestId }, err.message);
    giveUp(err);
  }

  private discard(inst: Instance): void {
    if (inst.dead) return;
    inst.dead = true;
    this.stats.instances--;
  }

  /**
   * Runs one hook on the request's instance with a fresh fuel budget. Any failure discards
   * the instance and comes back as a WeirError with a WEIR_ERR_PLUGIN_* code. `ctx` is
   * undefined for on-tick (no request: the exchange functions answer empty).
   */
  call<T>(hold: Hold, ctx: RequestContext | undefined, hook: HookName, f: (core: CoreInstance, id: bigint) => T): T {
    const inst = hold.inst;
    if (inst.dead) throw new WeirError('WEIR_ERR_PLUGIN_TRAP', `plugin ${this.name}: the instance serving this request was discarded after a failure`);
    const h = HOOKS.indexOf(hook);
    const stats = this.stats;
    stats.calls[h]!++;
    inst.fuel.value = this.fuelBudget;
    inst.scope.requestId = ctx?.id;
    inst.scope.trace = ctx?.trace?.sampled ? ctx.trace : undefined;
    inst.scope.exchange = ctx;
    inst.scope.lastError = undefined;
    inst.scope.pendingFuel = 0;
    const timeoutMs = this.config.timeoutMs;
    const t0 = performance.now();
    inst.scope.deadline = t0 + timeoutMs;
    let r: T;
    try {
      r = f(inst.core, hold.id);
    } catch (err) {
      const e = this.classify(inst, hook, err, true);
      ctx?.trace?.hook(this.name, hook, t0, performance.now() - t0, e.code);
      throw e;
    } finally {
      inst.scope.trace = undefined;
      inst.scope.exchange = undefined;
    }
    stats.fuel[h]! += Number(this.fuelBudget - inst.fuel.value);
    const ms = performance.now() - t0;
    // A slow hook gets its own span under the request's (tracing's hook-span-threshold-ms).
    ctx?.trace?.hook(this.name, hook, t0, ms);
    if (ms > timeoutMs) throw this.late(hook, ctx, ms);
    if (++this.sample % DURATION_SAMPLE === 0) this.deps.metrics.duration.labels(this.name, hook).observe(ms / 1000);
    return r;
  }

  /** The async variant for JSPI plugins. */
  async callAsync<T>(hold: Hold, ctx: RequestContext | undefined, hook: HookName, f: (core: CoreInstance, id: bigint) => Promise<T>): Promise<T> {
    const inst = hold.inst;
    if (inst.dead) throw new WeirError('WEIR_ERR_PLUGIN_TRAP', `plugin ${this.name}: the instance serving this request was discarded after a failure`);
    const h = HOOKS.indexOf(hook);
    const prev = inst.queue;
    let done!: () => void;
    inst.queue = new Promise((r) => (done = r));
    await prev;
    try {
      if (inst.dead) throw new WeirError('WEIR_ERR_PLUGIN_TRAP', `plugin ${this.name}: the instance serving this request was discarded after a failure`);
      this.stats.calls[h]!++;
      inst.fuel.value = this.fuelBudget;
      inst.scope.requestId = ctx?.id;
      inst.scope.trace = ctx?.trace?.sampled ? ctx.trace : undefined;
      inst.scope.exchange = ctx;
      inst.scope.lastError = undefined;
      inst.scope.pendingFuel = 0;
      const timeoutMs = this.config.timeoutMs;
      inst.hook = hook;
      const ac = new AbortController();
      const t0 = performance.now();
      inst.scope.deadline = t0 + timeoutMs;
      inst.scope.storeWaits = 0;
      inst.scope.signal = ac.signal;
      const gaveUp = new Promise<never>((_, reject) => {
        inst.inflight = (err) => {
          ac.abort(err);
          reject(err);
        };
      });
      // The deadline moves while a remote store call is pending (deadline.ts): re-check then.
      let timer: NodeJS.Timeout;
      const check = (): void => {
        const left = inst.scope.deadline - performance.now();
        if ((inst.scope.storeWaits ?? 0) > 0 || left > 1) timer = setTimeout(check, Math.max(left, 5));
        else this.abandon(inst, new WeirError('WEIR_ERR_PLUGIN_TIMEOUT', `plugin ${this.name} exceeded its ${timeoutMs} ms deadline in ${hook}; the call was given up`, { detail: { plugin: this.name, hook } }));
      };
      timer = setTimeout(check, timeoutMs);
      const call = f(inst.core, hold.id);
      // Settles after a give-up too (the resumed guest traps): nobody waits for it then.
      call.catch(() => {});
      let r: T;
      try {
        r = await Promise.race([call, gaveUp]);
        ctx?.trace?.hook(this.name, hook, t0, performance.now() - t0);
      } catch (err) {
        const e = isWeirError(err) && inst.dead ? err : this.classify(inst, hook, err, true);
        ctx?.trace?.hook(this.name, hook, t0, performance.now() - t0, e.code);
        throw e;
      } finally {
        clearTimeout(timer);
        inst.inflight = undefined;
        inst.scope.signal = undefined;
        inst.scope.trace = undefined;
        inst.scope.exchange = undefined;
        this.stats.fuel[h]! += Number(this.fuelBudget - inst.fuel.value);
      }
      // Store waits moved the deadline; whatever is past it beyond them was the guest's.
      if (performance.now() > inst.scope.deadline) throw this.late(hook, ctx, performance.now() - t0);
      return r;
    } finally {
      done();
    }
  }

  /** Maps a failure to its WEIR_ERR_PLUGIN_* code, discards the instance, logs and counts it. */
  private classify(inst: Instance, hook: HookName, err: unknown, countCrash: boolean): WeirError {
    if (isWeirError(err) && err.code === 'WEIR_ERR_PLUGIN_INVALID_MUTATION') {
      // The guest is fine; its output was refused.
      this.count(hook, 'invalid-mutation');
      return err;
    }
    let code: ErrorCode = 'WEIR_ERR_PLUGIN_TRAP';
    let kind = 'trap';
    const mem = inst.core.mem.memory;
    if (inst.fuel.value < 0n || err instanceof DeadlineExceeded) {
      // Fuel that was the deadline's share ran out, or a host call saw the clock pass it.
      const late = this.timeBound || inst.fuel.value >= 0n;
      code = late ? 'WEIR_ERR_PLUGIN_TIMEOUT' : 'WEIR_ERR_PLUGIN_FUEL';
      kind = late ? 'timeout' : 'fuel';
    } else if (err instanceof CallAbandoned) {
      kind = 'abandoned';
    } else if (err instanceof RangeError || (mem && mem.buffer.byteLength + 65536 > inst.version.memoryMaxBytes && /unreachable|out of bounds|abort|memory/i.test(String((err as Error)?.message)))) {
      code = 'WEIR_ERR_PLUGIN_MEMORY';
      kind = 'memory';
    } else if (err instanceof AbiTrap) {
      kind = 'abi';
    }
    const stack = kind === 'trap' || kind === 'memory' || kind === 'fuel' || kind === 'timeout' ? trapStack(err, inst.version.functionNames) : [];
    const fn = stack[0];
    this.discard(inst);
    if (inst === this.primary) this.primary = undefined;
    this.count(hook, kind);
    const why = kind === 'fuel' ? `out of fuel (budget ${this.config.fuel})`
      : kind === 'timeout' ? `exceeded its ${this.config.timeoutMs} ms deadline${this.timeBound && inst.fuel.value < 0n ? ` (fuel budget ${this.fuelBudget}, the deadline's share)` : ''}`
      : `${(err as Error)?.message ?? String(err)}${kind === 'trap' && inst.scope.lastError ? ` (the guest logged: ${inst.scope.lastError.slice(0, 512)})` : ''}`;
    const message = `plugin ${this.name} failed in ${hook}${fn ? ` (in ${fn})` : ''}: ${why}`;
    this.log.warn({ hook, kind, code, function: fn, stack: stack.length ? stack : undefined, requestId: inst.scope.requestId }, message);
    if (countCrash) this.crashed();
    return new WeirError(code, message, { cause: err, detail: { plugin: this.name, hook, function: fn, stack } });
  }

  /** Counts an answer the host refused (an invalid mutation or local reply). */
  refused(hook: HookName): void {
    this.count(hook, 'invalid-mutation');
  }

  private count(hook: string, kind: string): void {
    const k = `${hook}\u0000${kind}`;
    this.stats.errors.set(k, (this.stats.errors.get(k) ?? 0) + 1);
  }

  /** proxy-wasm's "plugin crashes" rule: repeated failures back off, doubling up to a cap. */
  private crashed(): void {
    const now = Date.now();
    this.crashes.push(now);
    while (this.crashes.length && this.crashes[0]! < now - CRASH_WINDOW_MS) this.crashes.shift();
    if (this.crashes.length >= CRASH_LIMIT) {
      this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs ? this.backoffMs * 2 : BACKOFF_MIN_MS);
      this.backoffUntil = now + this.backoffMs;
      this.crashes = [];
      this.log.error({ backoffMs: this.backoffMs }, `plugin ${this.name} crashed ${CRASH_LIMIT} times in ${CRASH_WINDOW_MS / 1000} s; backing off`);
    } else if (this.crashes.length === 1 && now - (this.backoffUntil || 0) > CRASH_WINDOW_MS * 6) {
      this.backoffMs = 0;
    }
  }
}

/**
 * The admin API's routes (Sentinel's paths, so its tooling works) and what each does.
 * `ROUTES` is the router's table; openapi.ts documents the same paths and a test keeps the
 * two equal. Changes are KDL edits (edit.ts) applied through the host's reload transaction:
 * validated like a file, then every thread switches or none does.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { formatDiagnostics, loadConfig } from '../config/load.ts';
import type { WeirConfig } from '../config/types.ts';
import { WeirError } from '../errors.ts';
import { KdlFile, type TargetSpec } from './edit.ts';
import type { AdminHost, PurgeSpec } from './host.ts';
import type { AdminSettings } from './settings.ts';
import { OPENAPI } from './openapi.ts';
import { hookStats } from './stats.ts';

export interface Call {
  readonly host: AdminHost;
  readonly settings: AdminSettings;
  readonly params: Readonly<Record<string, string>>;
  /** The parsed JSON body (undefined when there was none). */
  readonly body: unknown;
  readonly query: URLSearchParams;
}

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  /** What changed, for the audit log. */
  readonly change?: Readonly<Record<string, unknown>>;
}

export interface AdminRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI path template: `/api/v1/upstreams/{id}/targets`. */
  readonly path: string;
  /** Changes something: needs a full-access credential. */
  readonly write: boolean;
  /** Answers JSON; absent for the server-sent event stream, which server.ts serves. */
  readonly handle?: (c: Call) => Promise<Answer>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const bad = (msg: string): WeirError => new WeirError('WEIR_ERR_ADMIN_BAD_REQUEST', msg);
const notFound = (msg: string): WeirError => new WeirError('WEIR_ERR_ADMIN_NOT_FOUND', msg);

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object');
  return body as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`unknown field \`${k}\` (expected ${keys.map((x) => `\`${x}\``).join(', ')})`);
}

/** `{"targets":[{"address":"10.0.0.1:8080","weight":1}]}` → checked target list. */
function targetsOf(value: unknown): TargetSpec[] {
  if (!Array.isArray(value)) throw bad('`targets` must be an array of {"address","weight"}');
  const seen = new Set<string>();
  return value.map((t, i) => {
    const o = object(t);
    onlyKeys(o, ['address', 'weight']);
    const address = o['address'];
    if (typeof address !== 'string' || !validAddress(address)) throw bad(`targets[${i}].address must be "host:port"`);
    if (seen.has(address)) throw bad(`targets[${i}].address ${address} is listed twice`);
    seen.add(address);
    const weight = o['weight'] ?? 1;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 10_000) throw bad(`targets[${i}].weight must be an integer 0..10000`);
    return { address, weight };
  });
}

function validAddress(a: string): boolean {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(a) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(a);
  if (!m) return false;
  const port = Number(m[2]);
  return port > 0 && port < 65536 && (!a.startsWith('[') || isIP(m[1]!) === 6);
}

function upstreamOf(config: WeirConfig, id: string): NonNullable<ReturnType<WeirConfig['upstreams']['get']>> {
  const u = config.upstreams.get(id);
  if (!u) throw notFound(`no upstream ${id}`);
  return u;
}

/** Admin changes run one at a time: each edits the text the previous one produced. */
let chain: Promise<unknown> = Promise.resolve();
function serialized<T>(f: () => Promise<T>): Promise<T> {
  const run = chain.then(f);
  chain = run.catch(() => undefined);
  return run;
}

/**
 * Applies an edit of the config text: validated as a file would be (409 with the
 * diagnostics if the result is invalid), then written back (`persist #true`) or kept as an
 * override of the file, and applied through the reload transaction on every thread.
 */
async function change(c: Call, edit: (file: (path: string) => Promise<KdlFile>) => Promise<void>, what: Record<string, unknown>, status = 200): Promise<Answer> {
  return serialized(async () => {
    const { host, settings } = c;
    const root = host.configPath;
    if (root === undefined) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', 'this proxy runs on configuration text, not a file: nothing to change');
    const current = host.overrides() ?? {};
    const files = new Map<string, KdlFile>();
    const file = async (path: string): Promise<KdlFile> => {
      let f = files.get(path);
      if (!f) files.set(path, (f = new KdlFile(path, Object.hasOwn(current, path) ? current[path]! : await readFile(path, 'utf8'))));
      return f;
    };
    await edit(file);
    const changed: Record<string, string> = {};
    for (const [p, f] of files) changed[p] = f.text();
    const next = { ...current, ...changed };
    const checked = await loadConfig(root, { overrides: next });
    if (!checked.ok) {
      throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', formatDiagnostics(checked.diagnostics), { detail: { diagnostics: checked.diagnostics.map((d) => ({ code: d.code, message: d.message, ...(d.loc ? { at: `${d.loc.file}:${d.loc.line}:${d.loc.column}` } : {}) })) } });
    }
    if (settings.persist) {
      const before = new Map<string, string>();
      for (const p of Object.keys(next)) before.set(p, await readFile(p, 'utf8'));
      for (const [p, text] of Object.entries(next)) await writeAtomic(p, text);
      const out = await host.apply(undefined, 'admin-api');
      if (!out.ok) {
        for (const [p, text] of before) await writeAtomic(p, text);
        throw new WeirError('WEIR_ERR_ADMIN_UNAVAILABLE', out.error ?? 'the reload failed');
      }
      return { status, body: { applied: true, generation: out.generation, persisted: true }, change: what };
    }
    const out = await host.apply(next, 'admin-api');
    if (!out.ok) throw new WeirError('WEIR_ERR_ADMIN_UNAVAILABLE', out.error ?? 'the reload failed');
    return {
      status,
      body: { applied: true, generation: out.generation, persisted: false, note: 'admin-api persist is off: the next reload of the config file replaces this change' },
      change: what,
    };
  });
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.weir-admin-${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function upstreams(c: Call): Promise<Answer> {
  const state = await c.host.state();
  const config = c.host.config();
  return {
    status: 200,
    body: {
      upstreams: state.upstreams.map((u) => ({
        id: u.name,
        loadBalancing: config.upstreams.get(u.name)?.loadBalancing,
        ...(u.circuit !== undefined ? { circuit: u.circuit } : {}),
        ...(u.panic !== undefined ? { panic: u.panic } : {}),
        targets: u.targets,
      })),
    },
  };
}

async function createUpstream(c: Call): Promise<Answer> {
  const o = object(c.body);
  onlyKeys(o, ['id', 'targets']);
  const id = o['id'];
  if (typeof id !== 'string' || !NAME.test(id)) throw bad('`id` must be a name (letters, digits, `_`, `.`, `-`)');
  const targets = targetsOf(o['targets']);
  if (targets.length === 0) throw bad('an upstream needs at least one target');
  const config = c.host.config();
  if (config.upstreams.has(id)) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', `upstream ${id} exists; PUT /api/v1/upstreams/${id}/targets changes its targets`);
  const home = config.upstreams.values().next().value?.loc.file ?? config.files[0];
  if (home === undefined) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', 'no config file to add the upstream to');
  return change(c, async (file) => (await file(home)).addUpstream(id, targets), { upstream: id, created: targets }, 201);
}

async function deleteUpstream(c: Call): Promise<Answer> {
  const id = c.params['id']!;
  const u = upstreamOf(c.host.config(), id);
  const users = c.host.config().routes.filter((r) => r.upstream === id).map((r) => r.name);
  if (users.length) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', `upstream ${id} is used by route ${users.join(', ')}`, { detail: { routes: users } });
  return change(c, async (file) => (await file(u.loc.file)).removeUpstream(id), { upstream: id, deleted: true });
}

async function putTargets(c: Call): Promise<Answer> {
  const id = c.params['id']!;
  const u = upstreamOf(c.host.config(), id);
  const o = object(c.body);
  onlyKeys(o, ['targets']);
  const targets = targetsOf(o['targets']);
  if (targets.length === 0) throw bad('an upstream needs at least one target; DELETE the upstream instead');
  return change(c, async (file) => (await file(u.loc.file)).setTargets(id, targets), { upstream: id, targets });
}

async function drain(c: Call): Promise<Answer> {
  const id = c.params['id']!;
  const u = upstreamOf(c.host.config(), id);
  const o = c.body === undefined ? {} : object(c.body);
  onlyKeys(o, ['target', 'timeout-ms', 'drain']);
  const target = o['target'];
  if (target !== undefined && typeof target !== 'string') throw bad('`target` must be an address of the upstream');
  const timeout = o['timeout-ms'] ?? c.settings.drainTimeoutMs;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > 3_600_000) throw bad('`timeout-ms` must be an integer 0..3600000');
  const on = o['drain'] ?? true;
  if (typeof on !== 'boolean') throw bad('`drain` must be a boolean');
  const addresses = target === undefined ? u.targets.map((t) => t.address) : [target];
  if (target !== undefined && !u.targets.some((t) => t.address === target)) throw notFound(`upstream ${id} has no target ${target}`);
  const results = await Promise.all(addresses.map(async (a) => ({ target: a, ...(await c.host.drain(id, a, on, timeout)) })));
  const drained = results.every((r) => r.drained);
  return {
    status: 200,
    body: { upstream: id, draining: on, drained: on ? drained : false, targets: results.map((r) => ({ address: r.target, drained: on ? r.drained : false, inFlight: r.inFlight })) },
    change: { upstream: id, targets: addresses, draining: on },
  };
}

async function routes(c: Call): Promise<Answer> {
  return {
    status: 200,
    body: {
      routes: c.host.config().routes.map((r) => ({
        id: r.name,
        priority: r.priority,
        enabled: r.enabled,
        ...(r.upstream !== undefined ? { upstream: r.upstream } : {}),
        ...(r.builtinHandler !== undefined ? { builtinHandler: r.builtinHandler } : {}),
        filters: r.filters,
      })),
    },
  };
}

async function routeEnabled(c: Call): Promise<Answer> {
  const id = c.params['id']!;
  const r = c.host.config().routes.find((x) => x.name === id);
  if (!r) throw notFound(`no route ${id}`);
  const o = object(c.body);
  onlyKeys(o, ['enabled']);
  const enabled = o['enabled'];
  if (typeof enabled !== 'boolean') throw bad('`enabled` must be a boolean');
  return change(c, async (file) => (await file(r.loc.file)).setRouteEnabled(id, enabled), { route: id, enabled });
}

async function reload(c: Call): Promise<Answer> {
  const discarded = c.host.overrides() !== undefined;
  const out = await serialized(() => c.host.apply(undefined, 'admin-api'));
  if (!out.ok) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', out.error ?? 'the reload failed', { detail: { generation: out.generation } });
  return { status: 200, body: { applied: true, generation: out.generation, discardedChanges: discarded }, change: { reload: true } };
}

async function validate(c: Call): Promise<Answer> {
  const root = c.host.configPath;
  if (root === undefined) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', 'this proxy runs on configuration text, not a file');
  const res = await loadConfig(root);
  const diags = res.ok ? res.warnings : res.diagnostics;
  return {
    status: 200,
    body: {
      valid: res.ok,
      diagnostics: diags.map((d) => ({ code: d.code, severity: d.severity ?? 'error', message: d.message, ...(d.loc ? { at: `${d.loc.file}:${d.loc.line}:${d.loc.column}` } : {}), ...(d.hint ? { hint: d.hint } : {}) })),
    },
  };
}

/** Secrets written inline (`token "abc"`) are not shown; `"${ENV}"` references are (they name no secret). */
export function redactSecrets(text: string): string {
  return text.replace(/(^|[{;])(\s*(?:[\w-]*token|password|secret)\s+)"(?!\$\{)((?:[^"\\]|\\.)*)"/gim, '$1$2"(redacted)"');
}

async function configText(c: Call): Promise<Answer> {
  const config = c.host.config();
  const overrides = c.host.overrides() ?? {};
  const files = await Promise.all(config.files.map(async (path) => ({
    path,
    text: redactSecrets(Object.hasOwn(overrides, path) ? overrides[path]! : await readFile(path, 'utf8').catch(() => '')),
    changedByApi: Object.hasOwn(overrides, path),
  })));
  return { status: 200, body: { generation: (await c.host.state()).generation, files } };
}

async function plugins(c: Call): Promise<Answer> {
  const hooks = hookStats(await c.host.metrics());
  const config = c.host.config();
  const names = new Set([...config.plugins.keys(), ...hooks.map((h) => h.plugin)]);
  return {
    status: 200,
    body: {
      plugins: [...names].sort().map((id) => {
        const p = config.plugins.get(id);
        return {
          id,
          ...(p ? { path: p.path, isolation: p.isolation, fuel: p.fuel, timeoutMs: p.timeoutMs } : { firstParty: true }),
          hooks: hooks.filter((h) => h.plugin === id).map(({ plugin: _p, ...h }) => h),
        };
      }),
    },
  };
}

async function pluginReload(c: Call): Promise<Answer> {
  const id = c.params['id']!;
  if (!c.host.config().plugins.has(id)) throw notFound(`no plugin ${id}`);
  const out = await c.host.reloadPlugin(id);
  if (!out.ok) throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', out.error ?? 'the plugin could not be loaded; the previous version keeps serving');
  return { status: 200, body: { plugin: id, reloaded: true }, change: { plugin: id, reloaded: true } };
}

async function purge(c: Call): Promise<Answer> {
  const o = object(c.body);
  const keys = Object.keys(o);
  if (keys.length !== 1) throw bad('give one of `all`, `tags`, `prefix`, `url`');
  let spec: PurgeSpec;
  if (o['all'] === true) spec = { all: true };
  else if (Array.isArray(o['tags']) && o['tags'].length && o['tags'].every((t) => typeof t === 'string' && t !== '')) spec = { tags: o['tags'] as string[] };
  else if (typeof o['prefix'] === 'string' && /^https?:\/\/[^/]+\//.test(o['prefix'])) spec = { prefix: o['prefix'] };
  else if (typeof o['url'] === 'string' && /^https?:\/\/[^/]+\//.test(o['url'])) spec = { url: o['url'] };
  else throw bad('`all` must be true, `tags` a non-empty array of strings, `prefix`/`url` an absolute http(s) URL with a path');
  const n = await c.host.purge(spec);
  return { status: 200, body: { purged: n }, change: { purge: spec } };
}

async function status(c: Call): Promise<Answer> {
  const s = await c.host.state();
  const unhealthy = s.upstreams.flatMap((u) => u.targets.filter((t) => !t.healthy).map((t) => ({ upstream: u.name, address: t.address, ejected: t.ejected })));
  return {
    status: 200,
    body: {
      ready: s.ready,
      generation: s.generation,
      threads: s.threads,
      inFlight: s.inFlight,
      persist: c.settings.persist,
      unpersistedChanges: c.host.overrides() !== undefined,
      unhealthyTargets: unhealthy,
      reloads: c.host.reloads(),
    },
  };
}

export const ROUTES: readonly AdminRoute[] = [
  { method: 'GET', path: '/api/v1/status', write: false, handle: status },
  { method: 'GET', path: '/api/v1/upstreams', write: false, handle: upstreams },
  { method: 'POST', path: '/api/v1/upstreams', write: true, handle: createUpstream },
  { method: 'DELETE', path: '/api/v1/upstreams/{id}', write: true, handle: deleteUpstream },
  { method: 'PUT', path: '/api/v1/upstreams/{id}/targets', write: true, handle: putTargets },
  { method: 'POST', path: '/api/v1/upstreams/{id}/drain', write: true, handle: drain },
  { method: 'GET', path: '/api/v1/routes', write: false, handle: routes },
  { method: 'PUT', path: '/api/v1/routes/{id}/enabled', write: true, handle: routeEnabled },
  { method: 'POST', path: '/api/v1/config/reload', write: true, handle: reload },
  { method: 'GET', path: '/api/v1/config/validate', write: false, handle: validate },
  { method: 'GET', path: '/api/v1/config', write: false, handle: configText },
  { method: 'GET', path: '/api/v1/plugins', write: false, handle: plugins },
  { method: 'POST', path: '/api/v1/plugins/{id}/reload', write: true, handle: pluginReload },
  { method: 'POST', path: '/api/v1/cache/purge', write: true, handle: purge },
  { method: 'GET', path: '/api/v1/openapi.json', write: false, handle: async () => ({ status: 200, body: OPENAPI }) },
  { method: 'GET', path: '/api/v1/events', write: false },
];

/** The route for a method and path, with its `{params}`; `allowed` lists the methods of a path that exists. */
export function matchRoute(method: string, path: string, table: readonly AdminRoute[] = ROUTES): { route: AdminRoute; params: Record<string, string> } | { allowed: string[] } | undefined {
  const parts = path.split('/');
  const allowed: string[] = [];
  for (const r of table) {
    const tpl = r.path.split('/');
    if (tpl.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < tpl.length && ok; i++) {
      const t = tpl[i]!;
      if (t.startsWith('{')) {
        let v: string;
        try {
          v = decodeURIComponent(parts[i]!);
        } catch {
          ok = false;
          break;
        }
        if (v === '') ok = false;
        else params[t.slice(1, -1)] = v;
      } else if (t !== parts[i]) ok = false;
    }
    if (!ok) continue;
    if (r.method === method) return { route: r, params };
    allowed.push(r.method);
  }
  return allowed.length ? { allowed } : undefined;
}

/**
 * Loads a configuration: files (with includes) → KDL → `${ENV}` expansion → schema checks →
 * typed snapshot with defaults → cross-reference checks → deep freeze.
 * Every problem is collected; the snapshot is returned only if there is no error, so a bad
 * reload can keep the old config running.
 */
import { glob, readFile, readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { DEFAULTS as D } from './defaults.ts';
import { parseKdl } from './kdl.ts';
import type { DialectUse } from './dialect.ts';
import { CIPHER_SUITES, KEYED_BALANCERS, ROOT, type KeySpec } from './schema.ts';
import { validateNodes } from './validate.ts';
import { checkConstraints } from './constraints.ts';
import { checkLogTargets } from './log-target.ts';
import { buildListenerEdge } from './edge.ts';
import { didYouMean, expandEnv, parseAddress, parseSize } from './values.ts';
import { WAF_GLOBAL_FILTER, globalWafFilter, wafBody, wafExcludedRoutes } from './waf.ts';
import type {
  DiscoveryConfig,
  BuiltinHandler, ConfigDiagnostic, ConfigNode, ConfigScalar, FilterConfig, HeaderMatch, HealthCheckConfig, CircuitBreakerConfig, OutlierDetectionConfig,
  LimitsConfig, ListenerConfig, ListenerProtocol, ObservabilityConfig, PluginConfig, QueryMatch, RetryPolicy,
  RouteConfig, RouteMatch, RoutePolicies, SniCertConfig, SourceLocation, SystemConfig, TargetConfig, TlsConfig,
  TracingConfig, UpstreamConfig, UpstreamTlsConfig, WeirConfig,
} from './types.ts';

export interface LoadOptions {
  /** Skip checks that need the machine the config runs on: file existence and `${ENV}` variables. */
  readonly skipFileChecks?: boolean;
  /** Environment for `${NAME}` expansion; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Text to read instead of a file's content, by absolute path (admin API changes that are not persisted). */
  readonly overrides?: Readonly<Record<string, string>>;
}

/** `dialect`: each Sentinel spelling the files used, rewritten to Weir's (for `weir validate --explain`). */
export type LoadResult =
  | { readonly ok: true; readonly config: WeirConfig; readonly warnings: readonly ConfigDiagnostic[]; readonly dialect?: readonly DialectUse[] }
  | { readonly ok: false; readonly diagnostics: readonly ConfigDiagnostic[]; readonly dialect?: readonly DialectUse[] };

/** Sub-folders of a config directory read after its own files, recursively (Sentinel's layout). */
export const CONFIG_SUBDIRS = ['listeners', 'routes', 'upstreams', 'filters', 'plugins', 'agents'] as const;
/** Entry files of a config directory, read before its other files. */
const ENTRY_FILES = ['weir.kdl', 'zentinel.kdl', 'sentinel.kdl'];

/**
 * Loads a file, or a directory: its own `*.kdl` files (an entry file `weir.kdl`,
 * `zentinel.kdl` or `sentinel.kdl` first, the rest in name order), then every `*.kdl` under
 * its CONFIG_SUBDIRS, recursively, in path order. `*.example.kdl` files are skipped.
 */
export async function loadConfig(pathOrDir: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const reader = new Reader(opts.overrides);
  const abs = resolve(pathOrDir);
  const nodes = await reader.readPath(abs, undefined, []);
  return finish(nodes, reader, opts);
}

/** Loads configuration text; `fileName` names it in diagnostics and anchors relative paths. */
export async function loadConfigText(text: string, fileName: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const reader = new Reader();
  reader.files.push(fileName);
  const nodes = await reader.readText(text, fileName, [fileName]);
  return finish(nodes, reader, opts);
}

/** One line per diagnostic: `file:line:col: error CODE: message (hint)`. */
export function formatDiagnostics(diags: readonly ConfigDiagnostic[]): string {
  return diags
    .map((d) => {
      const where = d.loc ? `${displayPath(d.loc.file)}:${d.loc.line}:${d.loc.column}: ` : '';
      const hint = d.hint ? ` (${d.hint})` : '';
      return `${where}${d.severity ?? 'error'} ${d.code}: ${d.message}${hint}`;
    })
    .join('\n');
}

/** A path relative to the working directory when it is under it, as diagnostics print it. */
export function displayPath(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel;
}

// ---------------------------------------------------------------------------------------
// Reading files and includes

/** Largest config file read (16 MiB): far above any real config. */
const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

const isConfigFile = (n: string): boolean => n.endsWith('.kdl') && !n.endsWith('.example.kdl');

async function configDirFiles(dir: string): Promise<string[]> {
  const own = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.isDirectory() && isConfigFile(e.name)).map((e) => e.name);
  const entry = ENTRY_FILES.filter((n) => own.includes(n));
  const out = [...entry, ...own.filter((n) => !entry.includes(n)).sort()].map((n) => join(dir, n));
  for (const sub of CONFIG_SUBDIRS) {
    const d = join(dir, sub);
    if (!(await stat(d).catch(() => undefined))?.isDirectory()) continue;
    const found: string[] = [];
    for await (const f of glob('**/*.kdl', { cwd: d })) if (isConfigFile(f)) found.push(join(d, f));
    out.push(...found.sort());
  }
  return out;
}

class Reader {
  readonly files: string[] = [];
  readonly diags: ConfigDiagnostic[] = [];
  private readonly overrides: Readonly<Record<string, string>>;
  constructor(overrides: Readonly<Record<string, string>> = {}) {
    this.overrides = overrides;
  }
  readonly dialect: DialectUse[] = [];

  async readPath(abs: string, from: ConfigNode | undefined, stack: string[]): Promise<ConfigNode[]> {
    const code = from ? 'WEIR_ERR_CONFIG_INCLUDE' : 'WEIR_ERR_CONFIG_FILE';
    let isDir: boolean;
    try {
      isDir = (await stat(abs)).isDirectory();
    } catch (err) {
      this.diags.push({ code, message: `cannot read \`${abs}\`: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, loc: from?.loc, hint: undefined });
      return [];
    }
    if (isDir) {
      const files = await configDirFiles(abs);
      if (files.length === 0) this.diags.push({ code, message: `no .kdl file in directory \`${abs}\``, loc: from?.loc, hint: undefined });
      const out: ConfigNode[] = [];
      for (const f of files) out.push(...(await this.readFile(f, from, stack)));
      return out;
    }
    return this.readFile(abs, from, stack, from === undefined);
  }

  /** `whole`: the file is the whole config (not an include or one file of a directory). */
  async readFile(abs: string, from: ConfigNode | undefined, stack: string[], whole = false): Promise<ConfigNode[]> {
    if (stack.includes(abs)) {
      this.diags.push({ code: 'WEIR_ERR_CONFIG_INCLUDE', message: `include cycle: ${[...stack, abs].map(displayPath).join(' → ')}`, loc: from?.loc, hint: undefined });
      return [];
    }
    let text: string;
    const code = from ? 'WEIR_ERR_CONFIG_INCLUDE' : 'WEIR_ERR_CONFIG_FILE';
    try {
      // Admin API changes that are not persisted stand in for the file's text.
      if (Object.hasOwn(this.overrides, abs)) {
        text = this.overrides[abs]!;
        if (!this.files.includes(abs)) this.files.push(abs);
        return this.readText(text, abs, [...stack, abs]);
      }
      // A device, FIFO or endless file would be read for ever (`include "/dev/zero"` ran the
      // process out of memory): only regular files of a bounded size are config.
      const st = await stat(abs);
      if (!st.isFile()) {
        this.diags.push({ code, message: `\`${abs}\` is not a regular file`, loc: from?.loc, hint: undefined });
        return [];
      }
      if (st.size > MAX_CONFIG_FILE_BYTES) {
        this.diags.push({ code, message: `\`${abs}\` is ${st.size} bytes; a config file may have at most ${MAX_CONFIG_FILE_BYTES}`, loc: from?.loc, hint: undefined });
        return [];
      }
      text = await readFile(abs, 'utf8');
    } catch (err) {
      this.diags.push({ code, message: `cannot read \`${abs}\`: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, loc: from?.loc, hint: undefined });
      return [];
    }
    // An empty config is a file caught mid-write (a truncating editor, `>` redirection) or
    // truncated by accident; loading it would replace every listener and route by defaults.
    if (whole && text.trim() === '') {
      this.diags.push({ code, message: `\`${abs}\` is empty`, loc: undefined, hint: 'write the new config to another file and rename it over this one, so a reload never reads it half-written' });
      return [];
    }
    if (!this.files.includes(abs)) this.files.push(abs);
    return this.readText(text, abs, [...stack, abs]);
  }

  /** Parses text and splices `include`d files in place of their `include` nodes. */
  async readText(text: string, file: string, stack: string[]): Promise<ConfigNode[]> {
    const parsed = parseKdl(text, file, this.dialect);
    if (!parsed.ok) {
      this.diags.push(...parsed.diagnostics);
      return [];
    }
    const out: ConfigNode[] = [];
    for (const node of parsed.nodes) {
      if (node.name !== 'include') {
        out.push(node);
        continue;
      }
      const target = node.args[0];
      if (typeof target !== 'string' || node.args.length !== 1) {
        this.diags.push({ code: 'WEIR_ERR_CONFIG_TYPE', message: '`include` expects one file path string', loc: node.loc, hint: undefined });
        continue;
      }
      const abs = resolve(dirname(resolve(file)), target);
      if (!/[*?[{]/.test(target)) {
        out.push(...(await this.readPath(abs, node, stack)));
        continue;
      }
      // A glob: every matching file, in path order; matching none is an error (a typo would load nothing).
      const matches: string[] = [];
      for await (const f of glob(target, { cwd: dirname(resolve(file)) })) if (f.endsWith('.kdl')) matches.push(resolve(dirname(resolve(file)), f));
      if (matches.length === 0) this.diags.push({ code: 'WEIR_ERR_CONFIG_INCLUDE', message: `\`include "${target}"\` matches no .kdl file`, loc: node.argLocs?.[0] ?? node.loc, hint: `looked in ${dirname(abs)}` });
      for (const m of matches.sort()) out.push(...(await this.readFile(m, node, stack)));
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------
// Pipeline

async function finish(rawNodes: ConfigNode[], reader: Reader, opts: LoadOptions): Promise<LoadResult> {
  const diags: ConfigDiagnostic[] = [...reader.diags];
  const skipFileChecks = opts.skipFileChecks ?? false;
  const env = opts.env ?? process.env;
  const nodes = rawNodes.map((n) => expandNode(n, env, skipFileChecks, diags));
  diags.push(...validateNodes(nodes, ROOT, { skipFileChecks }));
  if (!skipFileChecks) diags.push(...checkLogTargets(nodes));
  const resolved = resolvePaths(nodes, ROOT);
  const config = build(resolved, reader.files, diags);
  // Contradictions between keys only make sense once each key is valid on its own.
  if (!diags.some((d) => (d.severity ?? 'error') === 'error')) diags.push(...checkConstraints(resolved, config));
  const order = new Map(reader.files.map((f, i) => [f, i]));
  const sorted = diags
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const la = a.d.loc;
      const lb = b.d.loc;
      if (!la || !lb) return la ? 1 : lb ? -1 : a.i - b.i;
      return (order.get(la.file) ?? 0) - (order.get(lb.file) ?? 0) || la.line - lb.line || la.column - lb.column || a.i - b.i;
    })
    .map((x) => x.d);
  const dialect = reader.dialect;
  if (sorted.some((d) => (d.severity ?? 'error') === 'error')) return { ok: false, diagnostics: sorted, dialect };
  return { ok: true, config: deepFreeze(config), warnings: sorted, dialect };
}

function expandNode(node: ConfigNode, env: Readonly<Record<string, string | undefined>>, skip: boolean, diags: ConfigDiagnostic[]): ConfigNode {
  const one = (v: ConfigScalar, loc: SourceLocation): ConfigScalar => {
    if (typeof v !== 'string' || !v.includes('${')) return v;
    const r = expandEnv(v, env);
    if (!skip) {
      for (const name of r.missing) {
        diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `environment variable \`${name}\` is not set`, loc, hint: `set it, or write \`\${${name}:-default}\`` });
      }
    }
    return r.value;
  };
  const args = node.args.map((a, i) => one(a, node.argLocs?.[i] ?? node.loc));
  const props: Record<string, ConfigScalar> = {};
  for (const [k, v] of Object.entries(node.props)) props[k] = one(v, node.propLocs?.[k] ?? node.loc);
  return { ...node, args, props, children: node.children.map((c) => expandNode(c, env, skip, diags)) };
}

/** Rewrites every `path`-typed value to an absolute path, relative to the file that wrote it. */
function resolvePaths(nodes: readonly ConfigNode[], specs: readonly KeySpec[]): ConfigNode[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  return nodes.map((node) => {
    const spec = byName.get(node.name);
    if (!spec || spec.anyChildren) return node;
    const args = node.args.map((a, i) => {
      const t = (spec.args?.[i] ?? spec.rest)?.type;
      return t === 'path' && typeof a === 'string' ? resolve(dirname(resolve(node.loc.file)), a) : a;
    });
    let childSpecs = spec.children ?? [];
    if (spec.variants) {
      const kind = spec.variants.fromArg ? node.args[0] : [...node.children].reverse().find((c) => c.name === spec.variants!.key)?.args[0];
      if (typeof kind === 'string' && Object.hasOwn(spec.variants.cases, kind)) childSpecs = [...childSpecs, ...spec.variants.cases[kind]!];
    }
    return { ...node, args, children: resolvePaths(node.children, childSpecs) };
  });
}

// ---------------------------------------------------------------------------------------
// Typed accessors. Schema checks already reported bad values; these fall back to defaults
// so building can go on and find the cross-reference problems too.

function last(node: ConfigNode | undefined, name: string): ConfigNode | undefined {
  if (!node) return undefined;
  for (let i = node.children.length - 1; i >= 0; i--) if (node.children[i]!.name === name) return node.children[i];
  return undefined;
}
function all(node: ConfigNode | undefined, name: string): ConfigNode[] {
  return node ? node.children.filter((c) => c.name === name) : [];
}
function getStr(node: ConfigNode | undefined, name: string): string | undefined {
  const v = last(node, name)?.args[0];
  return typeof v === 'string' ? v : undefined;
}
function getNum(node: ConfigNode | undefined, name: string): number | undefined {
  const v = last(node, name)?.args[0];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function getBool(node: ConfigNode | undefined, name: string): boolean | undefined {
  const v = last(node, name)?.args[0];
  return typeof v === 'boolean' ? v : undefined;
}
function getSecsMs(node: ConfigNode | undefined, name: string): number | undefined {
  const v = getNum(node, name);
  return v === undefined ? undefined : Math.round(v * 1000);
}
function getSize(node: ConfigNode | undefined, name: string): number | undefined {
  const v = last(node, name)?.args[0];
  return v === undefined ? undefined : parseSize(v);
}
function getStrings(node: ConfigNode | undefined, name: string): string[] {
  return all(node, name).flatMap((c) => c.args.filter((a): a is string => typeof a === 'string'));
}
function label(node: ConfigNode): string {
  return typeof node.args[0] === 'string' ? node.args[0] : '';
}

/** Top-level nodes named `plural` → their `singular` children, plus top-level shorthands. */
function collect(nodes: readonly ConfigNode[], plural: string, singular: string): ConfigNode[] {
  const out: ConfigNode[] = [];
  for (const n of nodes) {
    if (n.name === plural) out.push(...n.children.filter((c) => c.name === singular));
    else if (n.name === singular) out.push(n);
  }
  return out;
}

function checkUnique(items: readonly ConfigNode[], kind: string, diags: ConfigDiagnostic[]): ConfigNode[] {
  const seen = new Map<string, ConfigNode>();
  const out: ConfigNode[] = [];
  for (const n of items) {
    const name = label(n);
    const first = seen.get(name);
    if (first) {
      diags.push({
        code: 'WEIR_ERR_CONFIG_DUPLICATE',
        message: `${kind} \`${name}\` is defined twice`,
        loc: n.argLocs?.[0] ?? n.loc,
        hint: `first defined at ${displayPath(first.loc.file)}:${first.loc.line}:${first.loc.column}`,
      });
      continue;
    }
    seen.set(name, n);
    out.push(n);
  }
  return out;
}

function refError(diags: ConfigDiagnostic[], what: string, name: string, loc: SourceLocation, known: Iterable<string>, where: string): void {
  const names = [...known];
  diags.push({
    code: 'WEIR_ERR_CONFIG_REFERENCE',
    message: `${what} \`${name}\` is not defined${where}`,
    loc,
    hint: didYouMean(name, names) ?? (names.length ? `defined: ${names.map((n) => `\`${n}\``).join(', ')}` : undefined),
  });
}

// ---------------------------------------------------------------------------------------
// Building the snapshot

function build(nodes: readonly ConfigNode[], files: readonly string[], diags: ConfigDiagnostic[]): WeirConfig {
  const top = (name: string): ConfigNode | undefined => nodes.filter((n) => n.name === name).at(-1);

  let schemaVersion: string = D.schemaVersion;
  const sv = top('schema-version');
  if (sv) {
    const v = sv.args[0];
    if (v === '1.0' || v === '1' || v === 1) schemaVersion = '1.0';
    else {
      diags.push({
        code: 'WEIR_ERR_CONFIG_SCHEMA_VERSION',
        message: `schema-version ${JSON.stringify(v)} is not supported`,
        loc: sv.argLocs?.[0] ?? sv.loc,
        hint: 'this Weir reads schema-version "1.0"',
      });
    }
  }

  // `server` is another name for `system` (validate.ts refuses both together).
  const sys = top('system') ?? top('server');
  const system: SystemConfig = {
    workerThreads: getNum(sys, 'worker-threads') ?? D.system.workerThreads,
    // Sentinel writes the cap over all listeners as `limits max-total-connections`.
    maxConnections: getNum(sys, 'max-connections') ?? getNum(top('limits'), 'max-total-connections') ?? D.system.maxConnections,
    gracefulShutdownTimeoutMs: getSecsMs(sys, 'graceful-shutdown-timeout-secs') ?? D.system.gracefulShutdownTimeoutMs,
    pidFile: getStr(sys, 'pid-file'),
  };

  const total = last(top('limits'), 'max-total-connections');
  if (total && last(sys, 'max-connections')) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: '`limits max-total-connections` and `system max-connections` are the same cap', loc: total.loc, hint: 'keep one of them' });
  }
  const upstreams = new Map<string, UpstreamConfig>();
  for (const n of checkUnique(collect(nodes, 'upstreams', 'upstream'), 'upstream', diags)) {
    upstreams.set(label(n), buildUpstream(n, diags));
  }

  const plugins = new Map<string, PluginConfig>();
  for (const n of checkUnique(collect(nodes, 'plugins', 'plugin'), 'plugin', diags)) plugins.set(label(n), buildPlugin(n));

  const filters = new Map<string, FilterConfig>();
  for (const n of checkUnique(collect(nodes, 'filters', 'filter'), 'filter', diags)) {
    const f = buildFilter(n);
    if (f.type === 'wasm' && f.plugin !== undefined && !plugins.has(f.plugin)) {
      const p = last(n, 'plugin')!;
      refError(diags, 'plugin', f.plugin, p.argLocs?.[0] ?? p.loc, plugins.keys(), ' in `plugins`');
    }
    filters.set(f.name, f);
  }
  const globalWaf = globalWafFilter(top('waf'));
  if (globalWaf) filters.set(WAF_GLOBAL_FILTER, globalWaf);

  const caps: DecodeCaps = { maxBytes: getSize(top('limits'), 'max-decompressed-size-bytes'), maxRatio: getNum(top('limits'), 'max-decompression-ratio') };
  const routes: RouteConfig[] = [];
  for (const n of checkUnique(collect(nodes, 'routes', 'route'), 'route', diags)) routes.push(buildRoute(n, upstreams, filters, diags, caps, globalWaf));
  checkDecodeCaps(top('limits'), routes, diags);
  // Array.prototype.sort is stable: equal priorities keep their written order.
  routes.sort((a, b) => b.priority - a.priority);

  const listeners = buildListeners(nodes, diags);
  const routeNames = routes.map((r) => r.name);
  for (const n of collect(nodes, 'listeners', 'listener')) {
    const d = last(n, 'default-route');
    const name = d?.args[0];
    if (typeof name === 'string' && !routeNames.includes(name)) refError(diags, 'route', name, d!.argLocs?.[0] ?? d!.loc, routeNames, ' in `routes`');
  }
  const limits = buildLimits(top('limits'));
  const observability = buildObservability(top('observability'));

  checkMetricsServed(nodes, observability, diags);
  checkTracing(top('observability'), diags);

  return { schemaVersion, system, listeners, routes, upstreams, filters, plugins, limits, observability, cache: top('cache'), adminApi: top('admin-api'), files: [...files] };
}

function buildListeners(nodes: readonly ConfigNode[], diags: ConfigDiagnostic[]): ListenerConfig[] {
  const list = checkUnique(collect(nodes, 'listeners', 'listener'), 'listener', diags);
  if (list.length === 0) {
    const a = parseAddress(D.listener.address)!;
    const loc = { file: '<defaults>', line: 0, column: 0 };
    return [{
      name: D.listener.name, address: D.listener.address, host: a.host, port: a.port, protocol: D.listener.protocol,
      requestTimeoutMs: D.listener.requestTimeoutMs, keepAliveTimeoutMs: D.listener.keepAliveTimeoutMs, allowConnect: D.listener.allowConnect, tls: undefined, maxConcurrentStreams: undefined, maxRequestsPerConnection: undefined, edge: buildListenerEdge(undefined), loc,
    }];
  }
  const byAddress = new Map<string, ConfigNode>();
  return list.map((n) => {
    const address = getStr(n, 'address') ?? D.listener.address;
    const parsed = parseAddress(address) ?? { host: '', port: 0 };
    const addrNode = last(n, 'address');
    if (parsed.port !== 0) {
      const key = `${parsed.host}:${parsed.port}`;
      const first = byAddress.get(key);
      if (first) {
        diags.push({
          code: 'WEIR_ERR_CONFIG_DUPLICATE',
          message: `listeners \`${label(first)}\` and \`${label(n)}\` both listen on ${address}`,
          loc: addrNode?.argLocs?.[0] ?? n.loc,
          hint: undefined,
        });
      } else byAddress.set(key, n);
    }
    const tlsNode = last(n, 'tls');
    const written = getStr(n, 'protocol') as ListenerProtocol | undefined;
    const protocol: ListenerProtocol = written ?? (tlsNode ? 'https' : D.listener.protocol);
    if (protocol === 'https' && !tlsNode) {
      diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `listener \`${label(n)}\` uses protocol "https" but has no \`tls\` block`, loc: last(n, 'protocol')?.loc ?? n.loc, hint: undefined });
    }
    if (tlsNode && protocol !== 'https') {
      diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `listener \`${label(n)}\` has a \`tls\` block but protocol "${protocol}"`, loc: last(n, 'protocol')?.loc ?? tlsNode.loc, hint: 'use protocol "https"' });
    }
    let tls: TlsConfig | undefined;
    if (tlsNode) {
      const caFile = getStr(tlsNode, 'ca-file');
      const clientAuth = getBool(tlsNode, 'client-auth') ?? D.tls.clientAuth;
      if (clientAuth && !caFile) {
        diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: '`client-auth` needs a `ca-file` to verify client certificates', loc: last(tlsNode, 'client-auth')!.loc, hint: undefined });
      }
      const sni: SniCertConfig[] = all(tlsNode, 'sni').map((s) => ({
        hostnames: getStrings(s, 'hostnames').map((h) => h.toLowerCase()),
        certFile: getStr(s, 'cert-file') ?? '',
        keyFile: getStr(s, 'key-file') ?? '',
      }));
      const minVersion = getStr(tlsNode, 'min-version') ?? D.tls.minVersion;
      const suites = getStrings(tlsNode, 'cipher-suites').filter((x) => Object.hasOwn(CIPHER_SUITES, x));
      const only12 = suites.length > 0 && suites.every((x) => x.includes('_WITH_'));
      if (only12 && minVersion === 'TLSv1.3') {
        diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: '`cipher-suites` names no TLS 1.3 suite, but `min-version` is TLSv1.3: no handshake could succeed', loc: last(tlsNode, 'cipher-suites')!.loc, hint: 'add a TLS 1.3 suite (`TLS_AES_128_GCM_SHA256`), or lower `min-version`' });
      }
      tls = {
        certFile: getStr(tlsNode, 'cert-file') ?? '',
        keyFile: getStr(tlsNode, 'key-file') ?? '',
        caFile,
        clientAuth,
        minVersion,
        maxVersion: only12 ? 'TLSv1.2' : 'TLSv1.3',
        ciphers: suites.length > 0 ? suites.map((x) => CIPHER_SUITES[x]!).join(':') : undefined,
        sni,
        loc: tlsNode.loc,
      };
    }
    return {
      name: label(n),
      address,
      host: parsed.host,
      port: parsed.port,
      protocol,
      requestTimeoutMs: getSecsMs(n, 'request-timeout-secs') ?? D.listener.requestTimeoutMs,
      keepAliveTimeoutMs: getSecsMs(n, 'keepalive-timeout-secs') ?? D.listener.keepAliveTimeoutMs,
      allowConnect: getBool(n, 'allow-connect') ?? D.listener.allowConnect,
      tls,
      maxConcurrentStreams: getNum(n, 'max-concurrent-streams'),
      maxRequestsPerConnection: getNum(n, 'keepalive-max-requests'),
      edge: buildListenerEdge(n, diags),
      loc: n.loc,
    };
  });
}

function buildMatch(m: ConfigNode, diags: ConfigDiagnostic[]): RouteMatch {
  const pair = (c: ConfigNode): { name: string | undefined; value: string | undefined } => {
    const name = typeof c.props.name === 'string' ? c.props.name : typeof c.args[0] === 'string' ? c.args[0] : undefined;
    const value = typeof c.props.value === 'string' ? c.props.value : typeof c.args[1] === 'string' ? c.args[1] : undefined;
    if (name === undefined) diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `\`${c.name}\` needs a name: \`${c.name} "name" "value"\` or \`${c.name} name="…"\``, loc: c.loc, hint: undefined });
    return { name, value };
  };
  const headers: HeaderMatch[] = all(m, 'header').map((c) => {
    const { name, value } = pair(c);
    const regex = typeof c.props.regex === 'string' ? c.props.regex : undefined;
    if (value !== undefined && regex !== undefined) {
      diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: '`header` takes a value or a regex, not both', loc: c.loc, hint: undefined });
    }
    return { name: (name ?? '').toLowerCase(), value, regex };
  });
  const query: QueryMatch[] = all(m, 'query').map((c) => {
    const { name, value } = pair(c);
    return { name: name ?? '', value };
  });
  return {
    hosts: getStrings(m, 'host').map((h) => h.toLowerCase()),
    paths: getStrings(m, 'path'),
    pathPrefixes: getStrings(m, 'path-prefix'),
    pathRegexes: getStrings(m, 'path-regex'),
    methods: getStrings(m, 'method').map((x) => x.toUpperCase()),
    headers,
    query,
  };
}

/** `limits { max-decompressed-size-bytes; max-decompression-ratio }`: caps of every request body Weir decodes. */
interface DecodeCaps {
  readonly maxBytes: number | undefined;
  readonly maxRatio: number | undefined;
}

function requestDecompression(n: ConfigNode | undefined, caps: DecodeCaps): RoutePolicies['requestDecompression'] {
  if (!n) return undefined;
  return { maxBytes: getSize(n, 'max-bytes') ?? caps.maxBytes ?? 10 * 1024 * 1024, maxRatio: getNum(n, 'max-ratio') ?? caps.maxRatio ?? 100 };
}

/**
 * A route's WAF filters: its own `type "waf"` filters, else the top-level `waf {}` block's
 * (put first) unless an exclusion takes the WAF off the route. A WAF that decompresses
 * bodies gives the route `request-decompression` with its caps when the route sets none.
 */
function routeWaf(route: string, filterNames: string[], filters: ReadonlyMap<string, FilterConfig>, globalWaf: FilterConfig | undefined, caps: DecodeCaps): RoutePolicies['requestDecompression'] {
  const wafs = filterNames.map((f) => filters.get(f)).filter((f) => f?.type === 'waf') as FilterConfig[];
  if (wafs.length === 0 && globalWaf && !wafExcludedRoutes(globalWaf.settings).has(route)) {
    filterNames.unshift(WAF_GLOBAL_FILTER);
    wafs.push(globalWaf);
  }
  for (const f of wafs) {
    const body = wafBody(f.settings);
    if (!body.inspect || !body.decompress) continue;
    const ownRatio = last(last(f.settings, 'body-inspection'), 'max-decompression-ratio') !== undefined;
    return { maxBytes: Math.min(body.maxBytes, caps.maxBytes ?? Infinity), maxRatio: ownRatio ? body.maxRatio : caps.maxRatio ?? body.maxRatio };
  }
  return undefined;
}

function buildRoute(n: ConfigNode, upstreams: ReadonlyMap<string, UpstreamConfig>, filters: Map<string, FilterConfig>, diags: ConfigDiagnostic[], caps: DecodeCaps, globalWaf?: FilterConfig): RouteConfig {
  const name = label(n);
  const upstream = getStr(n, 'upstream');
  const upNode = last(n, 'upstream');
  if (upstream !== undefined && !upstreams.has(upstream)) {
    refError(diags, 'upstream', upstream, upNode!.argLocs?.[0] ?? upNode!.loc, upstreams.keys(), ' in `upstreams`');
  }
  const filterNames: string[] = [];
  for (const f of all(n, 'filters')) {
    f.args.forEach((a, i) => {
      if (typeof a !== 'string') return;
      if (!filters.has(a)) refError(diags, 'filter', a, f.argLocs?.[i] ?? f.loc, filters.keys(), ' in `filters`');
      filterNames.push(a);
    });
  }
  policyFilters(name, last(n, 'policies'), filters, filterNames);
  const wafDecompression = routeWaf(name, filterNames, filters, globalWaf, caps);
  const builtinHandler = getStr(n, 'builtin-handler') as BuiltinHandler | undefined;
  if (builtinHandler && upstream !== undefined) {
    diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `route \`${name}\` has both \`upstream\` and \`builtin-handler\``, loc: last(n, 'builtin-handler')!.loc, hint: 'keep one of them' });
  }
  const files = last(n, 'static-files');
  if (files && (upstream !== undefined || builtinHandler)) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `route \`${name}\` has \`static-files\` and also \`${upstream !== undefined ? 'upstream' : 'builtin-handler'}\`, which the files would make inert`, loc: files.loc, hint: 'keep one of them' });
  }
  if (!builtinHandler && upstream === undefined && !files) {
    diags.push({
      code: 'WEIR_ERR_CONFIG_MISSING',
      severity: 'warning',
      message: `route \`${name}\` has neither \`upstream\` nor \`builtin-handler\`; its requests fail with WEIR_ERR_NO_UPSTREAM unless a filter answers them`,
      loc: n.loc,
      hint: undefined,
    });
  }
  const p = last(n, 'policies');
  const r = last(p, 'retry');
  const retry: RetryPolicy = {
    maxAttempts: r ? getNum(r, 'max-attempts') ?? D.retry.configuredMaxAttempts : D.retry.maxAttempts,
    backoffMs: getNum(r, 'backoff-ms') ?? D.retry.backoffMs,
    maxBackoffMs: getNum(r, 'max-backoff-ms') ?? D.retry.maxBackoffMs,
    retryOn: r && last(r, 'retry-on') ? getStrings(r, 'retry-on') : [...D.retry.retryOn],
    budgetPercent: getNum(r, 'budget-percent') ?? D.retry.budgetPercent,
    minRetryConcurrency: getNum(r, 'min-retry-concurrency') ?? D.retry.minRetryConcurrency,
  };
  if (retry.backoffMs > retry.maxBackoffMs) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `\`backoff-ms\` (${retry.backoffMs} ms) is larger than \`max-backoff-ms\` (${retry.maxBackoffMs} ms)`, loc: last(r, 'backoff-ms')?.loc ?? r!.loc, hint: 'the first backoff cannot exceed the longest' });
  }
  const policies: RoutePolicies = {
    timeoutMs: getSecsMs(p, 'timeout-secs'),
    failureMode: (getStr(p, 'failure-mode') as 'open' | 'closed' | undefined) ?? D.policies.failureMode,
    retry,
    maxBodySize: getSize(p, 'max-body-size'),
    allowWebsocket: getBool(p, 'websocket') ?? D.policies.allowWebsocket,
    bufferRequests: getBool(p, 'buffer-requests') ?? false,
    requestDecompression: requestDecompression(last(p, 'request-decompression'), caps) ?? wafDecompression,
  };
  return {
    name,
    priority: getNum(n, 'priority') ?? D.route.priority,
    enabled: getBool(n, 'enabled') ?? true,
    matches: all(n, 'matches').map((m) => buildMatch(m, diags)),
    upstream,
    filters: filterNames,
    builtinHandler,
    policies,
    errorFormat: ['web', 'static'].includes(getStr(n, 'service-type') ?? '') ? 'html' : 'json',
    circuitBreaker: circuitBreaker(last(n, 'circuit-breaker')),
    node: n,
    loc: n.loc,
  };
}

/**
 * Route `policies` keys that are a filter's work (Sentinel's `rate-limit`, `request-headers`,
 * `response-headers`, `rewrite-path`) become that filter, named `policies:ROUTE:KIND`: the
 * rate limit runs before the route's `filters`, the header changes and the rewrite after them.
 */
function policyFilters(route: string, p: ConfigNode | undefined, filters: Map<string, FilterConfig>, filterNames: string[]): void {
  const add = (kind: string, type: string, at: ConfigNode, children: ConfigNode[]): void => {
    const name = `policies:${route}:${kind}`;
    const settings: ConfigNode = { name: 'filter', args: [name], props: {}, children, loc: at.loc };
    filters.set(name, { name, type, failureMode: D.filter.failureMode, failureModeFromRoute: true, plugin: undefined, settings, loc: at.loc });
    filterNames.push(name);
  };
  const rl = last(p, 'rate-limit');
  if (rl) {
    add('rate-limit', 'rate-limit', rl, [...rl.children]);
    filterNames.unshift(filterNames.pop()!);
  }
  const rq = last(p, 'request-headers');
  const rs = last(p, 'response-headers');
  if (rq || rs) {
    const blocks = [rq && { ...rq, name: 'request' }, rs && { ...rs, name: 'response' }].filter((b) => b !== undefined);
    add('headers', 'headers', (rq ?? rs)!, blocks);
  }
  const rw = last(p, 'rewrite-path');
  if (rw && typeof rw.args[0] === 'string') {
    // `$` in the path is literal, not a substitution group.
    add('rewrite-path', 'url-rewrite', rw, [{ name: 'regex-rewrite', args: ['^.*$', rw.args[0].replaceAll('$', '$$$$')], props: {}, children: [], loc: rw.loc }]);
  }
}

function circuitBreaker(cb: ConfigNode | undefined): CircuitBreakerConfig | undefined {
  return cb && {
    failureThreshold: getNum(cb, 'failure-threshold') ?? D.circuitBreaker.failureThreshold,
    successThreshold: getNum(cb, 'success-threshold') ?? D.circuitBreaker.successThreshold,
    timeoutMs: getSecsMs(cb, 'timeout-seconds') ?? D.circuitBreaker.timeoutMs,
    halfOpenMaxRequests: getNum(cb, 'half-open-max-requests') ?? D.circuitBreaker.halfOpenMaxRequests,
  };
}

function outlierDetection(od: ConfigNode | undefined): OutlierDetectionConfig | undefined {
  if (!od) return undefined;
  const sr = last(od, 'success-rate');
  const O = D.outlier;
  return {
    consecutive5xx: getNum(od, 'consecutive-5xx') ?? O.consecutive5xx,
    consecutiveGatewayErrors: getNum(od, 'consecutive-gateway-errors') ?? O.consecutiveGatewayErrors,
    successRate: sr && {
      minHosts: getNum(sr, 'min-hosts') ?? O.successRate.minHosts,
      minRequests: getNum(sr, 'min-requests') ?? O.successRate.minRequests,
      stdevFactor: getNum(sr, 'stdev-factor') ?? O.successRate.stdevFactor,
    },
    intervalMs: getSecsMs(od, 'interval') ?? O.intervalMs,
    baseEjectionMs: getSecsMs(od, 'base-ejection-time') ?? O.baseEjectionMs,
    maxEjectionPercent: getNum(od, 'max-ejection-percent') ?? O.maxEjectionPercent,
    panicThreshold: getNum(od, 'panic-threshold') ?? O.panicThreshold,
  };
}

/** A target's `labels=`: `name=value` pairs separated by commas. */
const LABELS = /^[^=,\s]+=[^=,]*(,[^=,\s]+=[^=,]*)*$/;

function buildUpstream(n: ConfigNode, diags: ConfigDiagnostic[]): UpstreamConfig {
  const targets: TargetConfig[] = [];
  for (const t of all(n, 'target')) {
    const address = typeof t.args[0] === 'string' ? t.args[0] : '';
    const parsed = parseAddress(address);
    if (parsed && parsed.port === 0) {
      diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `target \`${address}\` has port 0`, loc: t.argLocs?.[0] ?? t.loc, hint: 'a target needs the port its server listens on' });
    }
    targets.push({
      address,
      host: parsed?.host ?? '',
      port: parsed?.port ?? 0,
      weight: typeof t.props.weight === 'number' ? t.props.weight : D.target.weight,
      zone: typeof t.props.zone === 'string' ? t.props.zone : undefined,
      ...(typeof t.props.labels === 'string' ? { labels: t.props.labels } : {}),
    });
    if (typeof t.props.labels === 'string' && !LABELS.test(t.props.labels)) {
      diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `target labels "${t.props.labels}" are not name=value pairs separated by commas`, loc: t.loc, hint: 'for example `labels="version=v2,region=eu"`' });
    }
  }
  const dn = last(n, 'discovery');
  const discovery = dn && discoveryConfig(dn);
  const consulAt = dn && dn.args[0] === 'consul' ? last(dn, 'address') : undefined;
  if (consulAt && typeof consulAt.args[0] === 'string' && !/^https?:\/\/[^/]+/.test(consulAt.args[0])) {
    diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `Consul \`address\` \`${consulAt.args[0]}\` is not an http:// or https:// URL`, loc: consulAt.loc, hint: 'e.g. `address "http://127.0.0.1:8500"`' });
  }
  for (const ns of dn ? all(dn, 'nameservers') : []) {
    for (const a of ns.args) {
      const p = typeof a === 'string' ? parseAddress(a) : undefined;
      if (typeof a === 'string' && !isIP(a) && !(p && isIP(p.host) && p.port > 0)) {
        diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `nameserver \`${a}\` is not "ip" or "ip:port"`, loc: ns.loc, hint: 'e.g. `nameservers "10.0.0.2" "127.0.0.1:5353"`' });
      }
    }
  }
  if (dn && targets.length > 0) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `upstream \`${label(n)}\` has both \`target\` lines and \`discovery\``, loc: dn.loc, hint: 'the discovered targets would replace the written ones: keep one of them' });
  }
  if (targets.length === 0 && !dn) {
    diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `upstream \`${label(n)}\` has no \`target\``, loc: n.loc, hint: 'add `target "host:port"`' });
  }
  const cp = last(n, 'connection-pool');
  const to = last(n, 'timeouts');
  const hc = last(n, 'health-check');
  const healthCheck: HealthCheckConfig | undefined = hc && {
    type: (getStr(hc, 'type') as 'http' | 'tcp' | 'grpc' | undefined) ?? D.healthCheck.type,
    path: getStr(hc, 'path') ?? D.healthCheck.path,
    method: getStr(hc, 'method') ?? D.healthCheck.method,
    host: getStr(hc, 'host'),
    bodyMatch: getStr(hc, 'body-match'),
    jitterMs: getSecsMs(hc, 'interval-jitter-secs') ?? 0,
    service: getStr(hc, 'service') ?? D.healthCheck.service,
    intervalMs: getSecsMs(hc, 'interval-secs') ?? D.healthCheck.intervalMs,
    timeoutMs: getSecsMs(hc, 'timeout-secs') ?? D.healthCheck.timeoutMs,
    healthyThreshold: getNum(hc, 'healthy-threshold') ?? D.healthCheck.healthyThreshold,
    unhealthyThreshold: getNum(hc, 'unhealthy-threshold') ?? D.healthCheck.unhealthyThreshold,
    expectedStatus: last(hc, 'expected-status')
      ? all(hc, 'expected-status').flatMap((c) => c.args.filter((a): a is number => typeof a === 'number'))
      : [...D.healthCheck.expectedStatus],
  };
  if (healthCheck?.type === 'grpc' && getStr(n, 'protocol') !== 'h2') {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `health-check type "grpc" in upstream \`${label(n)}\` needs \`protocol "h2"\``, loc: hc!.loc, hint: 'add `protocol "h2"` to the upstream' });
  }
  const tl = last(n, 'tls');
  const tls: UpstreamTlsConfig | undefined = tl && {
    sni: getStr(tl, 'sni'),
    caFile: getStr(tl, 'ca-file'),
    clientCert: getStr(tl, 'client-cert'),
    clientKey: getStr(tl, 'client-key'),
    verify: getBool(tl, 'verify') ?? D.upstreamTls.verify,
  };
  if (tl && (getStr(tl, 'client-cert') === undefined) !== (getStr(tl, 'client-key') === undefined)) {
    diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: '`client-cert` and `client-key` go together', loc: tl.loc, hint: undefined });
  }
  const loadBalancing = ((lb) => (lb === 'weighted' ? 'round_robin' : lb))(getStr(n, 'load-balancing') ?? D.upstream.loadBalancing);
  const hk = last(n, 'hash-key');
  const hashKey = getStr(n, 'hash-key') ?? 'client-ip';
  if (hk && !KEYED_BALANCERS.includes(loadBalancing)) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `hash-key in upstream \`${label(n)}\` does nothing with load-balancing "${loadBalancing}"`, loc: hk.loc, hint: 'use `load-balancing "consistent_hash"` or `"maglev"`, or leave `hash-key` out' });
  }
  const zoned = all(n, 'target').find((t) => typeof t.props.zone === 'string');
  if (zoned && loadBalancing !== 'locality_aware') {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `target zone= in upstream \`${label(n)}\` does nothing with load-balancing "${loadBalancing}"`, loc: zoned.loc, hint: 'use `load-balancing "locality_aware"`, or leave `zone=` out' });
  }
  const labelled = all(n, 'target').find((t) => t.props.labels !== undefined);
  const sh = last(n, 'subset-header');
  for (const node of [labelled, sh]) {
    if (node && loadBalancing !== 'subset') {
      diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `${node === sh ? 'subset-header' : 'target labels='} in upstream \`${label(n)}\` does nothing with load-balancing "${loadBalancing}"`, loc: node.loc, hint: 'use `load-balancing "subset"`, or leave it out' });
    }
  }
  if (hk && !/^(path|client-ip|(header|cookie|query):.+)$/.test(hashKey)) {
    diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `hash-key "${hashKey}" is not one of header:NAME, cookie:NAME, query:NAME, path, client-ip`, loc: hk.loc, hint: 'for example `hash-key "header:x-user-id"`' });
  }
  return {
    name: label(n),
    targets,
    // `weighted` names the same smooth weighted round robin as `round_robin`.
    loadBalancing,
    hashKey,
    subsetHeader: (getStr(n, 'subset-header') ?? 'x-subset').toLowerCase(),
    protocol: (getStr(n, 'protocol') as 'http1' | 'h2' | undefined) ?? D.upstream.protocol,
    connectionPool: {
      maxConnections: getNum(cp, 'max-connections') ?? D.connectionPool.maxConnections,
      idleTimeoutMs: getSecsMs(cp, 'idle-timeout') ?? D.connectionPool.idleTimeoutMs,
      queueTimeoutMs: getSecsMs(cp, 'queue-timeout') ?? D.connectionPool.queueTimeoutMs,
      maxLifetimeMs: getSecsMs(cp, 'max-lifetime') ?? D.connectionPool.maxLifetimeMs,
      maxRequests: getNum(cp, 'max-requests') ?? D.connectionPool.maxRequests,
      maxPendingRequests: getNum(cp, 'max-pending-requests') ?? D.connectionPool.maxPendingRequests,
    },
    timeouts: {
      connectMs: getSecsMs(to, 'connect') ?? D.timeouts.connectMs,
      requestMs: getSecsMs(to, 'request') ?? D.timeouts.requestMs,
      readMs: getSecsMs(to, 'read') ?? D.timeouts.readMs,
      writeMs: getSecsMs(to, 'write') ?? D.timeouts.writeMs,
    },
    healthCheck,
    circuitBreaker: circuitBreaker(last(n, 'circuit-breaker')),
    outlierDetection: outlierDetection(last(n, 'outlier-detection')),
    slowStartMs: getSecsMs(n, 'slow-start-secs') ?? 0,
    tls,
    ...(discovery ? { discovery } : {}),
    loc: n.loc,
  };
}

function discoveryConfig(d: ConfigNode): DiscoveryConfig | undefined {
  const kind = d.args[0];
  if (kind === 'file') return { kind, path: getStr(d, 'path') ?? '' };
  const refreshMs = getSecsMs(d, 'refresh-interval') ?? 30_000;
  const nameservers = all(d, 'nameservers').flatMap((c) => c.args.filter((a): a is string => typeof a === 'string'));
  if (kind === 'dns') return { kind, hostname: getStr(d, 'hostname') ?? '', port: getNum(d, 'port') ?? 0, refreshMs, nameservers };
  if (kind === 'dns-srv') return { kind, service: getStr(d, 'service') ?? '', refreshMs, nameservers };
  if (kind === 'kubernetes') {
    const kc = getStr(d, 'kubeconfig');
    // `~/` is the home directory (as kubectl reads it); other relative paths, the config's directory.
    const kubeconfig = kc === undefined ? undefined : kc.startsWith('~/') ? join(homedir(), kc.slice(2)) : resolve(dirname(resolve(d.loc.file)), kc);
    return { kind, service: getStr(d, 'service') ?? '', namespace: getStr(d, 'namespace'), portName: getStr(d, 'port-name'), kubeconfig, refreshMs };
  }
  if (kind === 'consul') {
    return { kind, address: getStr(d, 'address') ?? 'http://127.0.0.1:8500', service: getStr(d, 'service') ?? '', datacenter: getStr(d, 'datacenter'), tag: getStr(d, 'tag'), onlyPassing: getBool(d, 'only-passing') ?? true, refreshMs };
  }
  return undefined;
}

function buildFilter(n: ConfigNode): FilterConfig {
  const type = getStr(n, 'type') ?? '';
  return {
    name: label(n),
    type,
    failureMode: (getStr(n, 'failure-mode') as 'open' | 'closed' | undefined) ?? D.filter.failureMode,
    failureModeFromRoute: last(n, 'failure-mode') === undefined,
    plugin: type === 'wasm' ? getStr(n, 'plugin') : undefined,
    settings: n,
    loc: n.loc,
  };
}

function buildPlugin(n: ConfigNode): PluginConfig {
  return {
    name: label(n),
    path: getStr(n, 'path') ?? '',
    isolation: (getStr(n, 'isolation') as 'inline' | 'worker' | undefined) ?? D.plugin.isolation,
    fuel: getNum(n, 'fuel') ?? D.plugin.fuel,
    memoryLimitBytes: getSize(n, 'memory-limit') ?? D.plugin.memoryLimitBytes,
    timeoutMs: getNum(n, 'timeout-ms') ?? D.plugin.timeoutMs,
    poolSize: getNum(n, 'pool-size') ?? D.plugin.poolSize,
    ...(getNum(n, 'tick-ms') !== undefined ? { tickMs: getNum(n, 'tick-ms') } : {}),
    config: all(n, 'config').flatMap((c) => c.children),
    loc: n.loc,
    configLoc: last(n, 'config')?.loc,
  };
}

/** The decode caps in `limits` bound only routes that decode bodies: with none, they would do nothing. */
function checkDecodeCaps(l: ConfigNode | undefined, routes: readonly RouteConfig[], diags: ConfigDiagnostic[]): void {
  if (routes.some((r) => r.policies.requestDecompression !== undefined)) return;
  for (const key of ['max-decompressed-size-bytes', 'max-decompression-ratio']) {
    const n = last(l, key);
    if (n) diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', severity: 'warning', message: `\`limits ${key}\` bounds nothing: no route decodes request bodies`, loc: n.loc, hint: 'add `policies { request-decompression }` (or a WAF) to the routes that take compressed bodies' });
  }
}

function buildLimits(l: ConfigNode | undefined): LimitsConfig {
  const h2 = last(l, 'http2');
  const L = D.limits;
  return {
    maxHeaderBytes: getSize(l, 'max-header-bytes') ?? L.maxHeaderBytes,
    maxHeaderCount: getNum(l, 'max-header-count') ?? L.maxHeaderCount,
    maxBodyBytes: getSize(l, 'max-body-bytes') ?? L.maxBodyBytes,
    maxRequestLineBytes: getSize(l, 'max-request-line-bytes') ?? L.maxRequestLineBytes,
    headerTimeoutMs: getNum(l, 'header-timeout-ms') ?? L.headerTimeoutMs,
    requestTimeoutMs: getNum(l, 'request-timeout-ms') ?? L.requestTimeoutMs,
    keepAliveTimeoutMs: getNum(l, 'keepalive-timeout-ms') ?? L.keepAliveTimeoutMs,
    maxRequestsPerConnection: getNum(l, 'max-requests-per-connection') ?? L.maxRequestsPerConnection,
    maxConnections: getNum(l, 'max-connections') ?? L.maxConnections,
    websocketIdleTimeoutMs: getSecsMs(l, 'websocket-idle-timeout-secs') ?? L.websocketIdleTimeoutMs,
    websocketMaxMessageBytes: getSize(l, 'websocket-max-message-bytes') ?? L.websocketMaxMessageBytes,
    maxUpstreamRequestsPerClient: getNum(l, 'max-upstream-requests-per-client') ?? L.maxUpstreamRequestsPerClient,
    maxInFlightRequests: getNum(l, 'max-in-flight-requests') ?? L.maxInFlightRequests,
    maxConnectionsPerClient: getNum(l, 'max-connections-per-client') ?? L.maxConnectionsPerClient,
    responseBufferBytes: getSize(l, 'response-buffer-bytes') ?? L.responseBufferBytes,
    requestBodyBufferBytes: getSize(l, 'request-body-buffer-bytes') ?? L.requestBodyBufferBytes,
    minRequestBodyRate: getSize(l, 'min-request-body-rate') ?? L.minRequestBodyRate,
    http2: {
      maxConcurrentStreams: getNum(h2, 'max-concurrent-streams') ?? L.http2.maxConcurrentStreams,
      initialWindowSize: getNum(h2, 'initial-window-size') ?? L.http2.initialWindowSize,
      connectionWindowSize: getSize(h2, 'connection-window-size') ?? L.http2.connectionWindowSize,
      maxHeaderListSize: getSize(h2, 'max-header-list-size') ?? L.http2.maxHeaderListSize,
      maxSessionMemoryMb: getNum(h2, 'max-session-memory-mb') ?? L.http2.maxSessionMemoryMb,
    },
  };
}

/**
 * `metrics enabled #false` means nothing serves metrics: a `metrics` builtin route or a
 * metrics `address` would contradict it, so both are refused rather than silently dropped.
 */
function checkMetricsServed(nodes: readonly ConfigNode[], o: ObservabilityConfig, diags: ConfigDiagnostic[]): void {
  if (o.metrics.enabled) return;
  const m = last(nodes.filter((x) => x.name === 'observability').at(-1), 'metrics');
  const where = last(m, 'enabled');
  const at = where ? ` (\`enabled #false\` at ${displayPath(where.loc.file)}:${where.loc.line}:${where.loc.column})` : '';
  const addr = last(m, 'address');
  if (addr) diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `metrics are disabled${at}, so a metrics \`address\` would serve nothing`, loc: addr.loc, hint: 'remove `address`, or enable metrics' });
  for (const r of collect(nodes, 'routes', 'route')) {
    const h = last(r, 'builtin-handler');
    if (h?.args[0] === 'metrics') diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: `route \`${label(r)}\` serves metrics, but metrics are disabled${at}`, loc: h.loc, hint: 'remove the route, or enable metrics' });
  }
}

function buildObservability(o: ConfigNode | undefined): ObservabilityConfig {
  const m = last(o, 'metrics');
  const lg = last(o, 'logging');
  const accessLog = last(lg, 'access-log')?.args[0];
  const auditLog = last(lg, 'audit-log')?.args[0];
  return {
    metrics: {
      enabled: getBool(m, 'enabled') ?? D.observability.metrics.enabled,
      address: getStr(m, 'address'),
      path: getStr(m, 'path') ?? D.observability.metrics.path,
    },
    logging: {
      level: (getStr(lg, 'level') as ObservabilityConfig['logging']['level'] | undefined) ?? D.observability.logging.level,
      format: (getStr(lg, 'format') as 'json' | 'pretty' | undefined) ?? D.observability.logging.format,
      accessLog: typeof accessLog === 'string' || typeof accessLog === 'boolean' ? accessLog : D.observability.logging.accessLog,
      auditLog: typeof auditLog === 'string' || typeof auditLog === 'boolean' ? auditLog : false,
    },
    tracing: buildTracing(last(o, 'tracing')),
  };
}

function buildTracing(t: ConfigNode | undefined): TracingConfig | undefined {
  if (t === undefined || getBool(t, 'enabled') === false) return undefined;
  const T = D.observability.tracing;
  return {
    endpoint: getStr(t, 'endpoint') ?? getStr(last(t, 'backend'), 'endpoint') ?? '',
    serviceName: getStr(t, 'service-name') ?? T.serviceName,
    sampleRatio: getNum(t, 'sample-ratio') ?? getNum(t, 'sampling-rate') ?? T.sampleRatio,
    hookSpanThresholdMs: getNum(t, 'hook-span-threshold-ms') ?? T.hookSpanThresholdMs,
    exportDelayMs: getNum(t, 'export-delay-ms') ?? T.exportDelayMs,
  };
}

/**
 * A tracing block needs exactly one endpoint (its own or Sentinel's `backend`), an absolute
 * http(s) URL. Port 4317 is OTLP/gRPC's: Weir speaks OTLP/HTTP, so that gets a warning.
 */
function checkTracing(o: ConfigNode | undefined, diags: ConfigDiagnostic[]): void {
  const t = last(o, 'tracing');
  if (t === undefined || getBool(t, 'enabled') === false) return;
  const own = last(t, 'endpoint');
  const backend = last(t, 'backend');
  const ep = own ?? last(backend, 'endpoint');
  if (own && backend) diags.push({ code: 'WEIR_ERR_CONFIG_DUPLICATE', message: '`endpoint` and `backend` both name the tracing endpoint', loc: backend.loc, hint: `keep one; \`endpoint\` is at ${displayPath(own.loc.file)}:${own.loc.line}:${own.loc.column}` });
  if (ep === undefined) {
    if (backend === undefined) diags.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: '`tracing` needs `endpoint` (the OTLP/HTTP URL spans are sent to)', loc: t.loc, hint: 'e.g. endpoint "http://127.0.0.1:4318/v1/traces"' });
    return;
  }
  const text = ep.args[0];
  let url: URL | undefined;
  try {
    url = typeof text === 'string' ? new URL(text) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `tracing endpoint ${JSON.stringify(text)} is not an http:// or https:// URL`, loc: ep.argLocs?.[0] ?? ep.loc, hint: 'e.g. "http://127.0.0.1:4318/v1/traces"' });
  } else if (url.port === '4317') {
    diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', severity: 'warning', message: `tracing endpoint ${url.host}: port 4317 is OTLP/gRPC's; Weir sends OTLP/HTTP`, loc: ep.argLocs?.[0] ?? ep.loc, hint: 'a collector takes OTLP/HTTP on port 4318' });
  }
}

// ---------------------------------------------------------------------------------------

/** A Map whose mutators throw: `Object.freeze` alone leaves `set` working. */
function freezeMap<K, V>(m: Map<K, V>): ReadonlyMap<K, V> {
  const refuse = (): never => {
    throw new TypeError('the configuration snapshot is immutable');
  };
  Object.defineProperties(m, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  return Object.freeze(m);
}

function deepFreeze<T>(value: T, seen = new Set<unknown>()): T {
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;
  seen.add(value);
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v, seen);
    return freezeMap(value) as T;
  }
  for (const v of Object.values(value)) deepFreeze(v, seen);
  return Object.freeze(value);
}

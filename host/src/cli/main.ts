/**
 * The `weir` command line. Each command is a small async function; commander parses.
 */
import { Command, Option } from 'commander';
import pkg from '../../../package.json' with { type: 'json' };
import { readFile } from 'node:fs/promises';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { displayPath, loadConfig, formatDiagnostics, type LoadResult } from '../config/load.ts';
import { migrateText } from '../config/kdl.ts';
import { pluginDiagnostics } from '../../../plugin-abi/src/runtime/config-check.ts';
import { demoConfig, startDemoBackend } from '../demo.ts';
import { startWeir } from '../weir.ts';
import { startCluster, threadCount } from '../cluster/supervisor.ts';
import { Router, hostOf } from '../router/router.ts';
import { headersFromRaw } from '../proxy/headers.ts';
import { normalizePath, originFormOf } from '../edge/path.ts';
import { Upstream } from '../upstream/upstream.ts';
import { createLogger } from '../observability/logger.ts';
import type { ConfigDiagnostic, UpstreamConfig, WeirConfig } from '../config/types.ts';
import { balancerPluginConfig } from '../../../plugin-abi/src/runtime/first-party.ts';
import { filterOnRoute } from '../pipeline/failure-mode.ts';
import { pluginCommand } from '../plugin-tool/cli.ts';
import { health, type HealthOptions } from './health.ts';
import { ASSETS, extractedFile } from '../assets.ts';
import { setThreadEntry } from '../cluster/supervisor.ts';

export function version(): string {
  return pkg.version;
}

async function loadOrExit(file: string, skipFileChecks = false): Promise<WeirConfig> {
  const res = await loadConfig(file, { skipFileChecks });
  if (!res.ok) {
    process.stderr.write(`${formatDiagnostics(res.diagnostics)}\n`);
    process.stderr.write(`${summary(res.diagnostics)} in ${file}\n`);
    process.exit(1);
  }
  return res.config;
}

/** "2 error(s), 1 warning(s)": warnings are counted apart, they never fail a load. */
function summary(diags: readonly ConfigDiagnostic[]): string {
  const warnings = diags.filter((d) => d.severity === 'warning').length;
  const errors = diags.length - warnings;
  return `${errors} error(s)${warnings ? `, ${warnings} warning(s)` : ''}`;
}

/**
 * Loads a config as `weir validate` and `weir run` both check it: the schema and
 * cross-key checks, then every plugin it names loaded and configured (unless file checks
 * are skipped: the plugin files may not be on this machine).
 */
async function checkConfig(file: string, skipFileChecks: boolean): Promise<LoadResult> {
  const res = await loadConfig(file, { skipFileChecks });
  if (!res.ok || skipFileChecks) return res;
  const plugins = await pluginDiagnostics(res.config);
  return plugins.length ? { ok: false, diagnostics: [...res.warnings, ...plugins], dialect: res.dialect } : res;
}

/** `system pid-file`: written once the config is valid, removed when the process exits (any exit path). */
function writePidFile(path: string): void {
  writeFileSync(path, `${process.pid}\n`);
  process.once('exit', () => {
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch {
      // Already gone.
    }
  });
}

async function run(opts: { config?: string; port?: string }): Promise<void> {
  if (opts.config) {
    // Several proxy threads: a supervisor in this thread, a Weir instance in each of them.
    const pre = await checkConfig(opts.config, false);
    if (!pre.ok) {
      process.stderr.write(`${formatDiagnostics(pre.diagnostics)}\n`);
      process.stderr.write(`${opts.config}: ${summary(pre.diagnostics)}\n`);
      process.exit(1);
    }
    const threads = pre.ok ? threadCount(pre.config.system.workerThreads) : 1;
    if (threads > 1) {
      const cluster = await startCluster({ configPath: opts.config, threads, signals: true });
      // Once listening, with the signal handlers in place: a SIGTERM then always removes it.
      if (pre.config.system.pidFile) writePidFile(resolve(pre.config.system.pidFile));
      cluster.logger.info({ version: version(), config: opts.config, threads }, 'weir started');
      return;
    }
    const weir = await startWeir({ configPath: opts.config, signals: true });
    if (pre.config.system.pidFile) writePidFile(resolve(pre.config.system.pidFile));
    weir.logger.info({ version: version(), config: opts.config }, 'weir started');
    return;
  }
  const backend = await startDemoBackend();
  const port = Number(opts.port ?? process.env['WEIR_PORT'] ?? 8080);
  const weir = await startWeir({ configText: demoConfig(port, backend.port), configName: '<embedded demo config>', signals: true });
  const url = weir.url();
  process.stdout.write(
    `\nWeir ${version()} is running the embedded demo config.\n` +
      `  proxy:    ${url}/  →  demo backend on 127.0.0.1:${backend.port}\n` +
      `  try:      curl -i ${url}/hello\n` +
      `  health:   ${url}/_/health   metrics: ${url}/_/metrics   status: ${url}/_/status\n` +
      `  your own: weir run -c weir.kdl   (see docs/configuration.md)\n\n`,
  );
}

/** `--explain`: each Sentinel spelling the config uses and the Weir key it was read as (docs/sentinel.md). */
function explain(res: LoadResult): void {
  const uses = [...(res.dialect ?? [])].sort((a, b) => a.loc.file.localeCompare(b.loc.file) || a.loc.line - b.loc.line || a.loc.column - b.loc.column);
  const lines = uses.map((u) => `${displayPath(u.loc.file)}:${u.loc.line}:${u.loc.column}: \`${u.written}\` → \`${u.weir}\``);
  process.stdout.write(uses.length ? `${lines.join('\n')}\n${uses.length} Sentinel spelling(s) read as Weir keys\n` : 'no Sentinel spellings: every key is written as Weir spells it\n');
}

async function validate(file: string, opts: { skipFileChecks?: boolean; explain?: boolean }): Promise<void> {
  const res = await checkConfig(file, opts.skipFileChecks === true);
  if (opts.explain) explain(res);
  if (!res.ok) {
    process.stderr.write(`${formatDiagnostics(res.diagnostics)}\n`);
    process.stderr.write(`${file}: ${summary(res.diagnostics)}\n`);
    process.exit(1);
  }
  if (res.warnings.length) process.stderr.write(`${formatDiagnostics(res.warnings)}\n`);
  const c = res.config;
  process.stdout.write(`${file}: ok (${c.listeners.length} listeners, ${c.routes.length} routes, ${c.upstreams.size} upstreams, ${c.filters.size} filters, ${c.plugins.size} plugins)\n`);
}

async function migrate(file: string): Promise<void> {
  const r = migrateText(await readFile(file, 'utf8'), file);
  if (!r.ok) {
    process.stderr.write(`${formatDiagnostics(r.diagnostics)}\n`);
    process.exit(1);
  }
  process.stdout.write(r.text);
  process.stderr.write(`${file}: ${r.uses.length} Sentinel spelling(s) rewritten\n`);
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function routes(file: string): Promise<void> {
  const c = await loadOrExit(file, true);
  const rows = [['PRIORITY', 'ROUTE', 'MATCHES', 'FILTERS', 'TARGET']];
  for (const r of c.routes) {
    const m = r.matches
      .map((b) => [
        ...b.hosts.map((h) => `host=${h}`),
        ...b.methods.map((x) => `method=${x}`),
        ...b.paths.map((p) => `path=${p}`),
        ...b.pathPrefixes.map((p) => `prefix=${p}`),
        ...b.pathRegexes.map((p) => `regex=${p}`),
        ...b.headers.map((h) => `header:${h.name}${h.value !== undefined ? `=${h.value}` : ''}`),
        ...b.query.map((q) => `query:${q.name}${q.value !== undefined ? `=${q.value}` : ''}`),
      ].join(' '))
      .join(' | ') || '*';
    rows.push([String(r.priority), r.name, m, r.filters.join(',') || '-', r.builtinHandler ? `builtin:${r.builtinHandler}` : (r.upstream ?? '-')]);
  }
  process.stdout.write(`${pad(rows)}\n`);
}

async function simulate(file: string, method: string, url: string, opts: { header?: string[]; listener?: string }): Promise<void> {
  const c = await loadOrExit(file, true);
  const listener = opts.listener === undefined ? c.listeners[0] : c.listeners.find((l) => l.name === opts.listener);
  if (!listener) throw new Error(`no listener named "${opts.listener}" (listeners: ${c.listeners.map((l) => l.name).join(', ')})`);
  // The target as sent: the proxy's own path rules apply (host/src/edge/path.ts), not URL's.
  const absolute = !url.startsWith('/');
  const target = absolute ? originFormOf(url) : url;
  const qi = target.indexOf('?');
  const rawPath = qi === -1 ? target : target.slice(0, qi);
  const u = { host: absolute ? new URL(url).host : 'localhost', search: qi === -1 ? '' : target.slice(qi) };
  const raw: string[] = [];
  for (const h of opts.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new Error(`header "${h}" must look like name:value`);
    raw.push(h.slice(0, i).trim(), h.slice(i + 1).trim());
  }
  const headers = headersFromRaw(raw);
  const host = hostOf((headers['host'] as string | undefined) ?? u.host);
  const router = new Router(c.routes);
  const normal = normalizePath(rawPath, listener.edge.pathNormalization);
  const out: string[] = [`request: ${method.toUpperCase()} ${host}${rawPath}${u.search} (listener ${listener.name})`];
  if (typeof normal !== 'string') {
    if (normal.kind === 'reject') out.push(`result: 400 WEIR_ERR_PATH_REJECTED (${normal.reason}), before routing`);
    else out.push(`result: 307 redirect to ${normal.location}${u.search} (escaped-slashes "decode-and-redirect"), before routing`);
    process.stdout.write(`${out.join('\n')}\n`);
    return;
  }
  if (normal !== rawPath) out.push(`normalised path: ${normal} (routed and forwarded)`);
  const input = { method: method.toUpperCase(), host, path: normal, query: u.search.slice(1), headers };
  for (const t of router.explain(input)) out.push(`  ${t.matched ? '✔' : '✘'} ${t.route}: ${t.reason}`);
  const hit = router.match(input);
  if (!hit) {
    out.push('result: no route matches → 404 WEIR_ERR_NO_ROUTE');
    process.stdout.write(`${out.join('\n')}\n`);
    return;
  }
  const r = hit.config;
  out.push(`route: ${r.name}`);
  if (r.builtinHandler) out.push(`handler: builtin ${r.builtinHandler}`);
  if (r.filters.length) {
    out.push('filters (request order; response phases run in reverse):');
    for (const f of r.filters) {
      const fc = filterOnRoute(c.filters.get(f)!, r);
      out.push(`  - ${f} (type ${fc.type}${fc.plugin ? `, plugin ${fc.plugin}` : ''}, failure-mode ${fc.failureMode})`);
    }
  }
  if (r.upstream) {
    const uc = c.upstreams.get(r.upstream)!;
    const silent = createLogger({ level: 'silent', format: 'json', sync: true });
    const up = new Upstream({ ...uc, healthCheck: undefined }, silent);
    out.push(`upstream: ${r.upstream} (${uc.loadBalancing}, ${uc.targets.length} targets)`);
    out.push(`target: ${balancerExplained(uc, up.pick()?.address)}`);
    await up.close();
  }
  const p = r.policies;
  out.push(`policies: timeout ${p.timeoutMs ?? 'none'} ms, retry max-attempts ${p.retry.maxAttempts} on ${p.retry.retryOn.join(',') || '-'}, failure-mode ${p.failureMode}${p.maxBodySize !== undefined ? `, max-body-size ${p.maxBodySize}` : ''}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * Which target the proxy would pick, decided the way the proxy decides it: the same
 * `balancerPluginConfig` choice (plugins/lb for two or more targets, nothing for one).
 * Smooth weighted round robin is deterministic, so its first pick is shown (the host's
 * Upstream.pick runs the same algorithm from the same zero state); p2c is random per request.
 */
function balancerExplained(uc: UpstreamConfig, firstRoundRobin: string | undefined): string {
  const weights = `weights ${uc.targets.map((x) => `${x.address}=${x.weight}`).join(', ')}`;
  const pc = balancerPluginConfig(uc);
  if (!pc) return `${firstRoundRobin ?? 'none'} — the only target (no balancer runs)`;
  if (uc.loadBalancing === 'ip_hash') return `decided per request by plugins/lb ip_hash: the client address modulo the weights of the healthy targets (${weights})`;
  if (uc.loadBalancing === 'consistent_hash' || uc.loadBalancing === 'maglev') return `decided per request by plugins/lb ${uc.loadBalancing} on hash-key ${uc.hashKey} (${weights})`;
  if (uc.loadBalancing === 'p2c') return `decided per request by plugins/lb p2c: of two random healthy targets, the one with fewer requests in flight per weight (${weights})`;
  // The load-aware algorithms (plugins/lb/assembly/load.ts) decide from live stats.
  if (uc.loadBalancing !== 'round_robin') return `decided per request by plugins/lb ${uc.loadBalancing} from the targets' live stats (docs/load-balancing.md; ${weights})`;
  return `${firstRoundRobin ?? 'none'} — first pick of plugins/lb smooth weighted round robin over healthy targets, ${weights}`;
}

export function buildCli(): Command {
  const program = new Command('weir').description('Weir: a reverse proxy and API gateway programmed by WebAssembly plugins').version(version(), '-v, --version');
  program.command('run').description('start the proxy (without -c: the embedded demo config and a demo backend)')
    .option('-c, --config <file>', 'KDL config file or directory')
    .addOption(new Option('-p, --port <port>', 'demo listener port (demo mode only)'))
    .action(run);
  program.command('validate').description('check a config; exit 1 with file:line:column errors').argument('<file>')
    .option('--skip-file-checks', 'do not check that cert, key, database and plugin files exist')
    .option('--explain', 'list each Sentinel spelling used and the Weir key it maps to')
    .action(validate);
  program.command('migrate').description('print a config file rewritten in Weir\'s own spelling (Sentinel spellings replaced, comments kept)').argument('<file>')
    .action(migrate);
  program.command('routes').description('print the route table in match order').argument('<file>').action(routes);
  program.command('simulate').description('show which route, filters and upstream a request would get, and why')
    .argument('<file>').argument('<method>').argument('<url>')
    .option('-H, --header <header...>', 'request header name:value (repeatable)')
    .option('-l, --listener <name>', 'listener the request arrives on (its path-normalization applies); default: the first')
    .action(simulate);
  program.command('health').description('check a running proxy: ready, config generation, unhealthy targets; exit 0 well, 1 not well, 2 unreachable')
    .argument('[url]', 'the admin API base URL (token: --token or $ADMIN_API_TOKEN), or the URL of a builtin-handler "status" route')
    .option('-c, --config <file>', 'ask the admin-api of this config (its address and token)')
    .option('--token <token>', 'admin API bearer token')
    .option('--ca <file>', 'CA bundle for an HTTPS admin listener')
    .option('--cert <file>', 'client certificate for an admin listener with auth type "mtls"')
    .option('--key <file>', 'its private key')
    .option('--timeout <ms>', 'give up after this long', '5000')
    .option('--json', 'print the report as JSON')
    .action(async (url: string | undefined, opts: HealthOptions) => {
      process.exitCode = await health(url, opts);
    });
  program.command('version').description('print the version').action(() => {
    process.stdout.write(`${version()}\n`);
  });
  program.addCommand(pluginCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // Single binary: proxy threads need their entry as a file; this extracts it (once).
  const thread = extractedFile(ASSETS.proxyThread);
  if (thread) setThreadEntry(thread);
  await buildCli().parseAsync(argv);
}

// The rows of the benchmark: how each contestant is configured, started and checked.
// Configs live as templates in bench/configs/; {{NAME}} placeholders are filled at run time.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, run, start, type Started } from './proc.ts';

export interface Ctx {
  readonly root: string;
  readonly benchDir: string;
  /** Work folder of this run: rendered configs, logs, temp paths. */
  readonly work: string;
  readonly node: string;
  readonly originPort: number;
  readonly originPort2: number;
  /** CPU list for a single-core proxy, and for the two-core pair. */
  readonly proxyCpus: string;
  readonly dualCpus: string;
}

export interface Instance {
  readonly url: string;
  /** Undefined for the direct row (nothing between wrk and the origin). */
  readonly proc: Started | undefined;
}

export interface Contestant {
  readonly id: string;
  readonly label: string;
  readonly group: 'single' | 'dual';
  readonly weir: boolean;
  /** Part of --quick. */
  readonly quick: boolean;
  /** Also measured with the 1 MiB response. */
  readonly throughput: boolean;
  /** Path the load runs request (default "/"), and extra request headers ("Name: value"). */
  readonly path?: string;
  readonly headers?: readonly string[];
  /** Row this one is compared with in the feature table (cache hit, gzip), measured in the same run. */
  readonly versus?: string;
  /** Undefined when it can run, else why not ("n/a: …"). */
  readonly check: (ctx: Ctx) => Promise<string | undefined>;
  /** Spawns it on a fresh port; the caller waits for the first 200. */
  readonly spawn: (ctx: Ctx) => Promise<Instance>;
}

export function render(template: string, vars: Record<string, string | number>): string {
  const out = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
  const left = /\{\{[A-Z0-9_]+\}\}/.exec(out);
  if (left) throw new Error(`placeholder ${left[0]} has no value`);
  return out;
}

function renderFile(ctx: Ctx, template: string, outName: string, vars: Record<string, string | number>): string {
  const text = render(readFileSync(join(ctx.benchDir, 'configs', template), 'utf8'), {
    TMP: ctx.work,
    ROOT: ctx.root,
    ORIGIN_PORT: ctx.originPort,
    ORIGIN_PORT_2: ctx.originPort2,
    ...vars,
  });
  const out = join(ctx.work, outName);
  writeFileSync(out, text);
  return out;
}

const url = (port: number): string => `http://127.0.0.1:${port}/`;

/** nginx directives of the feature rows: `http` block and `location /` additions. */
const NGINX_FEATURE: Record<string, { http: string; location: string }> = {
  // proxy_cache on the run's folder (the page cache keeps it in memory); the origin sends no
  // freshness, so both caches are told an hour (Weir: default-ttl-secs 3600).
  cache: {
    http: 'proxy_cache_path {{TMP}}/nginx-cache-store levels=1:2 keys_zone=bench:10m max_size=64m inactive=1h use_temp_path=off;',
    location: 'proxy_cache bench; proxy_cache_valid 200 1h; proxy_cache_lock on;',
  },
  // gzip level 6 (Weir's default gzip-level) from 1 KiB up, as Weir's min-size.
  gzip: { http: 'gzip on; gzip_types text/plain; gzip_comp_level 6; gzip_min_length 1024; gzip_proxied any;', location: '' },
};

function nginxProxy(id: string, label: string, workers: number, group: 'single' | 'dual', quick: boolean, throughput: boolean, feature?: { name: 'cache' | 'gzip'; path?: string; headers?: readonly string[] }): Contestant {
  const extra = feature ? NGINX_FEATURE[feature.name]! : { http: '', location: '' };
  return {
    id, label, group, weir: false, quick, throughput, path: feature?.path, headers: feature?.headers,
    check: async () => undefined,
    spawn: async (ctx) => {
      const port = await freePort();
      const fill = (s: string): string => render(s, { TMP: ctx.work });
      const conf = renderFile(ctx, 'peers/nginx-proxy.conf', `${id}.conf`, { PORT: port, NAME: id, WORKERS: workers, MASTER: workers > 1 ? 'on' : 'off', EXTRA_HTTP: fill(extra.http), EXTRA_LOCATION: fill(extra.location) });
      const cpus = group === 'dual' ? ctx.dualCpus : ctx.proxyCpus;
      const proc = start(id, 'taskset', ['-c', cpus, 'nginx', '-p', ctx.work, '-e', join(ctx.work, `${id}-error.log`), '-c', conf]);
      return { url: url(port), proc };
    },
  };
}

function nodePeer(id: string, label: string, script: string): Contestant {
  return {
    id, label, group: 'single', weir: false, quick: id === 'fastify', throughput: false,
    check: async () => undefined,
    spawn: async (ctx) => {
      const port = await freePort();
      const proc = start(id, 'taskset', ['-c', ctx.proxyCpus, ctx.node, join(ctx.benchDir, 'peers', script), String(port), `http://127.0.0.1:${ctx.originPort}`]);
      return { url: url(port), proc };
    },
  };
}

/**
 * The Weir under test: the single binary (what users deploy; run.ts builds it if stale),
 * or WEIR_BIN (a script is run with Node, a binary directly).
 */
export const weirBin = (ctx: Ctx): string => process.env.WEIR_BIN ?? join(ctx.root, 'host', 'bin', 'weir.ts');
/** Command and leading arguments to run `weirBin`. */
export const weirCmd = (ctx: Ctx): [string, string[]] => {
  const bin = weirBin(ctx);
  return /\.(ts|js|mjs|cjs)$/.test(bin) ? [ctx.node, [bin]] : [bin, []];
};

/** Renders a Weir config on a fresh port; used by check (validation) and spawn. */
async function weirConfig(ctx: Ctx, id: string, template: string): Promise<{ file: string; port: number }> {
  const port = await freePort();
  return { file: renderFile(ctx, template, `${id}.kdl`, { PORT: port }), port };
}

function weirRow(id: string, label: string, template: string, opts: { group?: 'single' | 'dual'; quick?: boolean; throughput?: boolean; path?: string; headers?: readonly string[]; versus?: string } = {}): Contestant {
  const group = opts.group ?? 'single';
  return {
    id, label, group, weir: true, quick: opts.quick ?? false, throughput: opts.throughput ?? false, path: opts.path, headers: opts.headers, versus: opts.versus,
    check: async (ctx) => {
      if (!existsSync(weirBin(ctx))) return `${weirBin(ctx).replace(ctx.root + '/', '')} does not exist yet`;
      const { file } = await weirConfig(ctx, id, template);
      // Files the config points at (plugins, geo database) must exist before validating.
      for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:path|database-path)\s+"([^"]+)"/gm)) {
        const p = m[1] as string;
        if (!existsSync(p)) return `${p.endsWith('.wasm') ? 'plugin not built' : 'file missing'}: ${p.replace(ctx.root + '/', '')}`;
      }
      const [cmd, pre] = weirCmd(ctx);
      const r = await run(cmd, [...pre, 'validate', file], { cwd: ctx.root, timeoutMs: 30_000 });
      if (r.code !== 0) {
        const out = (r.stderr.trim() || r.stdout.trim()).replaceAll(ctx.work + '/', '');
        // A config diagnostic names the .kdl or a WEIR_ERR code; anything else is Weir failing to load.
        if (/WEIR_ERR_|\.kdl:\d+/.test(out)) return `config does not validate (${configName(template)}, exit ${r.code}): ${out.split('\n').slice(0, 2).join(' / ').slice(0, 300)}`;
        const err = out.split('\n').find((l) => /^\s*(\w*Error\b|weir: )/.test(l)) ?? out.split('\n').slice(0, 2).join(' / ');
        return `\`weir validate\` failed to run (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${err.trim().slice(0, 300)}`;
      }
      return undefined;
    },
    spawn: async (ctx) => {
      const { file, port } = await weirConfig(ctx, id, template);
      const cpus = group === 'dual' ? ctx.dualCpus : ctx.proxyCpus;
      const [cmd, pre] = weirCmd(ctx);
      const proc = start(id, 'taskset', ['-c', cpus, cmd, ...pre, 'run', '-c', file], { cwd: ctx.root });
      return { url: url(port), proc };
    },
  };
}

const configName = (t: string): string => `bench/configs/${t}`;

export const CONTESTANTS: readonly Contestant[] = [
  {
    id: 'direct', label: 'direct to origin (no proxy)', group: 'single', weir: false, quick: true, throughput: true,
    check: async () => undefined,
    spawn: async (ctx) => ({ url: url(ctx.originPort), proc: undefined }),
  },
  nginxProxy('nginx', 'nginx proxy_pass, upstream keepalive', 1, 'single', true, true),
  {
    id: 'haproxy', label: 'HAProxy, http mode, keep-alive to server', group: 'single', weir: false, quick: false, throughput: false,
    check: async () => undefined,
    spawn: async (ctx) => {
      const port = await freePort();
      const conf = renderFile(ctx, 'peers/haproxy.cfg', 'haproxy.cfg', { PORT: port });
      return { url: url(port), proc: start('haproxy', 'taskset', ['-c', ctx.proxyCpus, 'haproxy', '-db', '-f', conf]) };
    },
  },
  {
    id: 'caddy', label: 'Caddy reverse_proxy', group: 'single', weir: false, quick: false, throughput: false,
    check: async () => undefined,
    spawn: async (ctx) => {
      const port = await freePort();
      const conf = renderFile(ctx, 'peers/caddy.json', 'caddy.json', { PORT: port });
      // One Go scheduler thread, and Caddy's data/config dirs inside the run's folder.
      const env = { GOMAXPROCS: '1', HOME: ctx.work, XDG_DATA_HOME: join(ctx.work, 'xdg-data'), XDG_CONFIG_HOME: join(ctx.work, 'xdg-config') };
      return { url: url(port), proc: start('caddy', 'taskset', ['-c', ctx.proxyCpus, 'caddy', 'run', '--config', conf], { env }) };
    },
  },
  nodePeer('fastify', '@fastify/http-proxy', 'fastify-proxy.mjs'),
  nodePeer('http-proxy', 'http-proxy, keep-alive agent', 'http-proxy.mjs'),
  weirRow('weir', 'Weir, no filters', 'weir-no-filter.kdl', { quick: true, throughput: true }),
  // Against the row above: what tracing costs when every request is recorded and exported.
  weirRow('weir-tracing', 'Weir, no filters, tracing on (sample ratio 1.0, OTLP/HTTP export)', 'weir-tracing.kdl', { quick: true }),
  weirRow('weir-plugins-inline', 'Weir, 3 request + 1 response header WASM plugins, inline', 'weir-plugins-inline.kdl'),
  weirRow('weir-scaffold-inline', 'Weir, 4 scaffolded AssemblyScript plugins (weir plugin new), inline', 'weir-scaffold-inline.kdl'),
  weirRow('weir-plugins-worker', 'Weir, the same 4 plugins, worker-isolated', 'weir-plugins-worker.kdl'),
  // Against the no-filter row: four scaffolded AssemblyScript plugins in one worker run (one round trip a phase).
  weirRow('weir-scaffold-worker', 'Weir, 4 scaffolded AssemblyScript plugins, worker-isolated', 'weir-scaffold-worker.kdl'),
  weirRow('weir-first-party', 'Weir, rate-limit + geo + p2c LB (first-party)', 'weir-first-party.kdl'),
  weirRow('weir-cors', 'Weir, the cors filter (first-party), allowed Origin on every request', 'weir-cors.kdl', { headers: ['Origin: https://a.example.org'] }),
  weirRow('weir-api-key', 'Weir, the api-key filter (first-party), a valid key on every request', 'weir-api-key.kdl', { headers: ['x-api-key: bench-key-0123456789'] }),
  weirRow('weir-basic-auth', 'Weir, the basic-auth filter (first-party), good credentials on every request', 'weir-basic-auth.kdl', { headers: ['Authorization: Basic YmVuY2g6YmVuY2gtcHc='] }),
  weirRow('weir-jwt', 'Weir, the jwt filter (first-party, HS256), a valid token on every request', 'weir-jwt.kdl', { headers: ['Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaCIsImlzcyI6Imh0dHBzOi8vaWRwLmJlbmNoLyIsImF1ZCI6ImFwaSIsImV4cCI6NDEwMjQ0NDgwMH0.4EzPuBPWMQnX2bBqcHuhuD4_Vu89UcZ4Y17WDj-eNmw'] }),
  weirRow('weir-ip-filter', 'Weir, the ip-filter (first-party), every request allowed', 'weir-ip-filter.kdl'),
  weirRow('weir-waf', 'Weir, the WAF (first-party, paranoia 1) on every request, a benign query', 'weir-waf.kdl', { path: "/search?q=O%27Brien%20running%20shoes&sort=price_asc&page=2", headers: ['User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0'] }),
  // Feature rows, each against nginx doing the same in the same run: a cache hit from memory
  // (every request after the first is a hit) and gzip of an 8 KiB text response.
  nginxProxy('nginx-cache', 'nginx proxy_cache, every request a hit', 1, 'single', false, false, { name: 'cache' }),
  weirRow('weir-cache', 'Weir, policies { cache }, every request a hit (memory)', 'weir-cache.kdl', { versus: 'nginx-cache' }),
  nginxProxy('nginx-gzip', 'nginx gzip (level 6), 8 KiB text', 1, 'single', false, false, { name: 'gzip', path: '/text.txt', headers: ['Accept-Encoding: gzip'] }),
  weirRow('weir-gzip', 'Weir, policies { compression } gzip (level 6), 8 KiB text', 'weir-gzip.kdl', { path: '/text.txt', headers: ['Accept-Encoding: gzip'], versus: 'nginx-gzip' }),
  nginxProxy('nginx-2w', 'nginx, 2 workers', 2, 'dual', false, false),
  weirRow('weir-2t', 'Weir, worker-threads 2', 'weir-2-threads.kdl', { group: 'dual' }),
];

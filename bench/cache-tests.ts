/**
 * Runs the HTTP cache conformance suite behind cache-tests.fyi (npm `http-cache-tests`,
 * installed in this package) against Weir's cache: the suite's origin server on a free port,
 * Weir in front of it with `policies { cache {} }`, the suite's client against Weir. Prints
 * the required-test score and every failed required test with the suite's reason, and writes
 * the raw results to bench/results/cache-tests.json.
 *
 *   node_modules/.bin/node bench/cache-tests.ts [--id=test-id]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startWeir } from '../host/src/weir.ts';
import { createLogger } from '../host/src/observability/logger.ts';
import { freePort } from './lib/proc.ts';
import { ensureNodePeers } from './lib/install.ts';

const here = dirname(new URL(import.meta.url).pathname);
// The suite is a dependency of bench/: installed here when `npm ci` in bench/ has not run yet.
const resolveSuite = (): string => dirname(createRequire(join(here, 'package.json')).resolve('http-cache-tests/package.json'));
let suiteDir: string;
try {
  suiteDir = resolveSuite();
} catch {
  await ensureNodePeers(here, (s) => console.error(s));
  suiteDir = resolveSuite();
}
/** With --min=N the run fails (exit 1) when fewer required tests pass: CI's guard against regressions. */
const min = Number(process.argv.find((a) => a.startsWith('--min='))?.slice(6) ?? 0);
const id = process.argv.find((a) => a.startsWith('--id='))?.slice(5) ?? '';
const exchangeMs = Number(process.argv.find((a) => a.startsWith('--exchange-timeout='))?.slice(19) ?? 20_000);

type Results = Record<string, true | [string, string]>;
interface Test {
  id: string;
  kind?: string;
  name: string;
  dump?: boolean;
  browser_only?: boolean;
  depends_on?: string[];
}
interface Suite {
  id: string;
  tests: Test[];
}

async function waitFor(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > until) throw new Error(`${url} did not answer in ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function run(cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; out: Promise<string> } {
  const proc = spawn(cmd, args, { cwd: suiteDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  proc.stdout!.on('data', (c: Buffer) => chunks.push(c));
  const out = new Promise<string>((resolve) => proc.on('close', () => resolve(Buffer.concat(chunks).toString())));
  return { proc, out };
}

const originPort = await freePort();
const results = join(here, 'results');
mkdirSync(results, { recursive: true });
const origin = run(process.execPath, ['server/server.mjs'], { npm_config_port: String(originPort), npm_config_protocol: 'http', npm_config_pidfile: join(results, 'cache-tests-origin.pid') });
let stopped = false;
const stopOrigin = (): void => {
  if (stopped || origin.proc.exitCode !== null) return;
  stopped = true;
  process.kill(origin.proc.pid!, 'SIGTERM');
};
process.on('exit', stopOrigin);
try {
  await waitFor(`http://127.0.0.1:${originPort}/`, 10_000);
  const dir = results;
  const configPath = join(dir, 'cache-tests.kdl');
  writeFileSync(configPath, `listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "suite"; policies { cache { } } } }
upstreams { upstream "suite" { target "127.0.0.1:${originPort}"; } }
cache { max-size "256MiB" }
`);
  const weir = await startWeir({ configPath, logger: createLogger({ level: 'silent', format: 'json', sync: true }), accessLog: false, watch: false });
  try {
    const suiteUrl = (p: string): string => pathToFileURL(join(suiteDir, p)).href;
    const { runTests, getResults } = (await import(suiteUrl('client/runner.mjs'))) as { runTests: (t: unknown[], f: unknown, browser: boolean, base: string) => Promise<void>; getResults: () => Results };
    const { default: suites } = (await import(suiteUrl('tests/index.mjs'))) as { default: Suite[] };
    const nodeFetch = createRequire(join(suiteDir, 'package.json'))('node-fetch') as (url: string, init: Record<string, unknown>) => Promise<unknown>;
    // Every exchange is bounded: one that gets no answer fails its test with the URL it waited
    // on, instead of holding the whole run (the suite's client has no timeout of its own).
    const pending = new Map<number, string>();
    let seq = 0;
    const boundedFetch = (url: string, init: Record<string, unknown> = {}): Promise<unknown> => {
      const n = seq++;
      pending.set(n, `${String(init['method'] ?? 'GET')} ${url}`);
      if (process.env['CT_TRACE']) console.error(`> ${n} ${pending.get(n)} ${JSON.stringify(init['headers'])}`);
      return nodeFetch(url, { ...init, signal: AbortSignal.timeout(exchangeMs) }).then(
        (r) => (pending.delete(n), r),
        (err: Error) => {
          pending.delete(n);
          throw err.name === 'AbortError' ? Object.assign(new Error(`no answer in ${exchangeMs} ms to ${init['method'] ?? 'GET'} ${url}`), { name: 'Timeout' }) : err;
        },
      );
    };
    let tests: Suite[] = suites;
    if (id) {
      tests = suites.map((s) => ({ ...s, tests: s.tests.filter((t) => t.id === id).map((t) => ({ ...t, dump: true })) })).filter((s) => s.tests.length);
      if (!tests.length) throw new Error(`no test with id ${id}`);
    }
    const started = performance.now();
    const progress = setInterval(() => {
      console.error(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${Object.keys(getResults()).length} results, ${seq} exchanges, open: ${[...pending.values()].slice(0, 5).join(', ')}`);
    }, 10_000);
    progress.unref();
    await runTests(tests, boundedFetch, false, weir.url());
    clearInterval(progress);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const got = getResults();
    if (!id) writeFileSync(join(dir, 'cache-tests.json'), JSON.stringify(got, null, 2));
    // What the suite's client runs for a shared cache (browser-only tests are for private caches).
    const byId = new Map(suites.flatMap((s) => s.tests).map((t) => [t.id, t]));
    // As cache-tests.fyi shows them: a test whose `depends_on` check did not pass is "dependency
    // not met" (the feature it needs is one the cache does not claim), not an assertion failure.
    const passed = (tid: string): boolean => got[tid] === true && (byId.get(tid)?.depends_on ?? []).every(passed);
    const why = (t: Test): string => {
      const r = got[t.id];
      const unmet = (t.depends_on ?? []).filter((d) => !passed(d));
      if (unmet.length) return `dependency not met (${unmet.join(', ')})`;
      return r === undefined ? 'not run' : Array.isArray(r) ? `${r[0]}: ${r[1]}` : String(r);
    };
    const required = tests.flatMap((s) => s.tests).filter((t) => (t.kind === undefined || t.kind === 'required') && t.browser_only !== true);
    const failed = required.filter((t) => !passed(t.id));
    console.log(`required tests passed: ${required.length - failed.length} / ${required.length} (${seconds} s)`);
    for (const t of failed) console.log(`FAIL ${t.id}: ${t.name} — ${why(t)}`);
    if (required.length - failed.length < min) {
      console.log(`fewer than --min=${min} required tests pass`);
      process.exitCode = 1;
    }
    if (pending.size) console.log(`exchanges still open: ${[...pending.values()].join(', ')}`);
  } finally {
    await weir.close();
  }
} finally {
  stopOrigin();
}

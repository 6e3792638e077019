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

const here = dirname(new URL(import.meta.url).pathname);
const suiteDir = dirname(createRequire(join(here, 'package.json')).resolve('http-cache-tests/package.json'));
const id = process.argv.find((a) => a.startsWith('--id='))?.slice(5) ?? '';

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
    const client = run(process.execPath, ['--no-warnings', 'cli.mjs'], { npm_config_base: weir.url(), npm_config_id: id, npm_package_config_id: id });
    const out = await client.out;
    if (id) {
      console.log(out);
    } else {
      const got = JSON.parse(out) as Record<string, true | [string, string] | false>;
      writeFileSync(join(dir, 'cache-tests.json'), JSON.stringify(got, null, 2));
      const { default: suites } = (await import(pathToFileURL(join(suiteDir, 'tests/index.mjs')).href)) as { default: Array<{ id: string; tests: Array<{ id: string; kind?: string; name: string }> }> };
      const required = suites.flatMap((s) => s.tests).filter((t) => t.kind === undefined || t.kind === 'required');
      const failed = required.filter((t) => got[t.id] !== true);
      console.log(`required tests passed: ${required.length - failed.length} / ${required.length}`);
      for (const t of failed) {
        const r = got[t.id];
        console.log(`FAIL ${t.id}: ${t.name} — ${r === undefined ? 'not run' : Array.isArray(r) ? `${r[0]}: ${r[1]}` : String(r)}`);
      }
    }
  } finally {
    await weir.close();
  }
} finally {
  stopOrigin();
}

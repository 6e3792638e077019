// HTTP/2 and gRPC rows: h2load (-c10 -m10) against Weir and nginx over h2c and TLS, as
// ratios to nginx, and gRPC unary calls at fixed concurrency (grpc-js) direct, through nginx
// grpc_pass and through Weir. Writes bench/results/h2.md and prints the table.
//
//   node bench/h2.ts [--seconds=N]
//
// Placement as in run.ts: the proxy alone on core 0; origin, gRPC server and load on core 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { render } from './lib/contestants.ts';
import { startNginxOrigin } from './lib/origin.ts';
import { ensureNodePeers, ensureTools } from './lib/install.ts';
import { freePort, killAllSync, run, sleep, start, stop, stopAll, type Started } from './lib/proc.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const args = process.argv.slice(2);
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 10);
const WARMUP = 2;
const CORE_PROXY = '0';
const CORE_LOAD = '1';
const node = process.execPath;
const say = (s: string): void => console.log(`[h2 bench] ${s}`);

process.on('exit', killAllSync);

interface H2Result {
  rps: number;
  succeeded: number;
  failed: number;
  meanMs: number;
}

/** One h2load run on the load core; parses its summary. */
async function h2load(url: string, secs: number): Promise<H2Result> {
  const r = await run('taskset', ['-c', CORE_LOAD, 'h2load', '-c10', '-m10', '-D', String(secs), '--warm-up-time', String(WARMUP), url], { timeoutMs: (secs + WARMUP + 30) * 1000 });
  const out = r.stdout;
  const rps = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out);
  const reqs = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out);
  if (!rps || !reqs) throw new Error(`h2load output not understood (exit ${r.code}): ${(out + r.stderr).slice(-500)}`);
  const ms = mean ? (mean[1]!.endsWith('us') ? parseFloat(mean[1]!) / 1000 : mean[1]!.endsWith('ms') ? parseFloat(mean[1]!) : parseFloat(mean[1]!) * 1000) : NaN;
  return { rps: Number(rps[1]), succeeded: Number(reqs[1]), failed: Number(reqs[2]), meanMs: ms };
}

interface GrpcResult {
  callsPerSec: number;
  ok: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number };
}

async function grpcUnary(target: string, secs: number): Promise<GrpcResult> {
  const r = await run('taskset', ['-c', CORE_LOAD, node, join(benchDir, 'loadgen', 'grpc-unary.mjs'), target, '10', String(secs), String(WARMUP)], { cwd: benchDir, timeoutMs: (secs + WARMUP + 30) * 1000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as GrpcResult;
  } catch {
    throw new Error(`grpc load generator failed (exit ${r.code}): ${r.stderr.slice(-400)}`);
  }
}

async function waitForLine(p: Started, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!p.output().includes(text)) {
    if (p.exited()) throw new Error(`${p.name} exited: ${p.output().slice(-400)}`);
    if (Date.now() > end) throw new Error(`${p.name} did not start`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  const missing = await ensureTools(['taskset', 'nginx', 'h2load'], say);
  if (missing.length) throw new Error(`cannot run without ${missing.join(', ')}`);
  if (!(await ensureNodePeers(benchDir, say))) throw new Error('npm install in bench/ failed (the gRPC rows need @grpc/grpc-js)');
  const work = join(benchDir, 'results', `h2-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  for (const d of ['origin', 'nginx-h2']) for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(work, `${d}-${t}`), { recursive: true });
  mkdirSync(join(work, 'www'), { recursive: true });
  // A self-signed certificate for both TLS listeners (EC P-256, like the tests).
  const cert = join(work, 'cert.pem');
  const key = join(work, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });

  const { origin, port: originPort } = await startNginxOrigin(work, CORE_LOAD);
  const grpcPort = await freePort();
  const grpcd = start('grpc-server', 'taskset', ['-c', CORE_LOAD, node, join(benchDir, 'peers', 'grpc-server.mjs'), String(grpcPort)], { cwd: benchDir });
  await waitForLine(grpcd, 'listening', 10_000);

  const vars = { TMP: work, ORIGIN_PORT: originPort, GRPC_PORT: grpcPort, CERT: cert, KEY: key };
  const proxies: Array<{ id: string; h2c: number; tls: number; proc: Started }> = [];
  {
    const [h2c, tls] = [await freePort(), await freePort()];
    const conf = join(work, 'nginx-h2.conf');
    writeFileSync(conf, render(readFileSync(join(benchDir, 'configs/peers/nginx-h2.conf'), 'utf8'), { ...vars, PORT: h2c, TLS_PORT: tls }));
    const proc = start('nginx-h2', 'taskset', ['-c', CORE_PROXY, 'nginx', '-p', work, '-e', join(work, 'nginx-h2-error.log'), '-c', conf]);
    proxies.push({ id: 'nginx', h2c, tls, proc });
  }
  {
    const [h2c, tls] = [await freePort(), await freePort()];
    const conf = join(work, 'weir-h2.kdl');
    writeFileSync(conf, render(readFileSync(join(benchDir, 'configs/weir-h2.kdl'), 'utf8'), { ...vars, PORT: h2c, TLS_PORT: tls }));
    const bin = process.env.WEIR_BIN ?? join(root, 'host', 'bin', 'weir.ts');
    const [cmd, pre] = /\.(ts|js|mjs)$/.test(bin) ? [node, [bin]] : [bin, []];
    const proc = start('weir-h2', 'taskset', ['-c', CORE_PROXY, cmd, ...pre, 'run', '-c', conf], { cwd: root });
    proxies.push({ id: 'weir', h2c, tls, proc });
  }
  // Readiness over HTTP/2 itself (h2load one request), bounded.
  for (const p of proxies) {
    for (let i = 0; ; i++) {
      const r = await run('h2load', ['-n1', '-c1', `http://127.0.0.1:${p.h2c}/`], { timeoutMs: 5000, log: false });
      if (/1 succeeded/.test(r.stdout)) break;
      if (p.proc.exited() || i > 100) throw new Error(`${p.id} did not come up: ${p.proc.output().slice(-400)}`);
      await sleep(100);
    }
  }
  say(`origin :${originPort}, gRPC server :${grpcPort}; ${proxies.map((p) => `${p.id} h2c :${p.h2c} tls :${p.tls}`).join('; ')}`);

  const h2rows: Array<{ id: string; mode: string; res: H2Result }> = [];
  for (const mode of ['h2c', 'tls'] as const) {
    for (const p of proxies) {
      const url = `${mode === 'h2c' ? 'http' : 'https'}://127.0.0.1:${mode === 'h2c' ? p.h2c : p.tls}/`;
      const res = await h2load(url, seconds);
      h2rows.push({ id: p.id, mode, res });
      say(`${p.id} ${mode}: ${res.rps.toFixed(0)} req/s, mean ${res.meanMs.toFixed(2)} ms, ${res.failed} failed`);
    }
  }
  const grpcRows: Array<{ id: string; res: GrpcResult }> = [];
  for (const [id, target] of [['direct', `127.0.0.1:${grpcPort}`], ['nginx', `127.0.0.1:${proxies[0]!.h2c}`], ['weir', `127.0.0.1:${proxies[1]!.h2c}`]] as const) {
    const res = await grpcUnary(target, seconds);
    grpcRows.push({ id, res });
    say(`gRPC unary ${id}: ${res.callsPerSec.toFixed(0)} calls/s, p50 ${res.latencyMs.p50.toFixed(2)} ms, p99 ${res.latencyMs.p99.toFixed(2)} ms, ${res.errors} errors`);
  }
  for (const p of proxies) await stop(p.proc);
  await stop(grpcd);
  await stop(origin);

  const nginxOf = (mode: string): number => h2rows.find((r) => r.id === 'nginx' && r.mode === mode)!.res.rps;
  const lines = [
    `HTTP/2 rows (${new Date().toISOString().slice(0, 10)}, ${seconds} s each after ${WARMUP} s warm-up, one run; proxy on core ${CORE_PROXY}, origin + load on core ${CORE_LOAD}):`,
    '',
    '| Row | req/s | mean latency | failed | × nginx |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...h2rows.map((r) => `| ${r.id === 'weir' ? 'Weir' : 'nginx'} ${r.mode} (h2load -c10 -m10, HTTP/1.1 origin) | ${r.res.rps.toFixed(0)} | ${r.res.meanMs.toFixed(2)} ms | ${r.res.failed} | ${(r.res.rps / nginxOf(r.mode)).toFixed(2)} |`),
    '',
    '| gRPC unary, 10 calls in flight (grpc-js), 100-byte messages | calls/s | p50 | p99 | errors | × direct |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...grpcRows.map((r) => `| ${r.id === 'weir' ? 'Weir h2c → h2' : r.id === 'nginx' ? 'nginx grpc_pass' : 'direct to the gRPC server'} | ${r.res.callsPerSec.toFixed(0)} | ${r.res.latencyMs.p50.toFixed(2)} ms | ${r.res.latencyMs.p99.toFixed(2)} ms | ${r.res.errors} | ${(r.res.callsPerSec / grpcRows[0]!.res.callsPerSec).toFixed(2)} |`),
    '',
  ];
  const md = lines.join('\n');
  writeFileSync(join(benchDir, 'results', 'h2.md'), md);
  writeFileSync(join(work, 'results.json'), JSON.stringify({ h2rows, grpcRows }, null, 2));
  console.log('\n' + md);
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (e) => {
    console.error(`h2 bench failed: ${(e as Error).stack ?? e}`);
    await stopAll();
    process.exit(2);
  },
);

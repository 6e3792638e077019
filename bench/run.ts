// Macro benchmark: Weir against nginx, HAProxy, Caddy and the Node proxies, one run, one
// report (docs/benchmarks.md) plus raw JSON in bench/results/.
//
//   node bench/run.ts [--quick] [--only=id,id] [--runs=N] [--seconds=N] [--docs | --no-docs] [--strict]
//   node bench/run.ts --from=bench/results/latest.json     (re-render the report only)
//
// Placement on the 2-core box: origin and the load generators on core 1, the proxy under
// test alone on core 0, so the proxy never shares a core with the load it is measured by.
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTESTANTS, type Contestant, type Ctx, type Instance } from './lib/contestants.ts';
import { ensureNodePeers, ensureTools } from './lib/install.ts';
import { commandLog, cpuSnapshot, otherLoad, portsUsed, killAllSync, run, sleep, stop, stopAll, treeRss, waitFor200, type Started } from './lib/proc.ts';
import { writeReport, type LatencyResult, type Report, type Row } from './lib/report.ts';
import { wrk, type WrkResult } from './lib/wrk.ts';
import { BODY, startNginxOrigin } from './lib/origin.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice(7) ?? (args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined);
const writeDocs = args.includes('--docs') || (!quick && !args.includes('--no-docs'));
const strict = args.includes('--strict');
const numArg = (name: string): number | undefined => {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return v === undefined ? undefined : Number(v);
};

const P = quick
  ? { seconds: 2, warmup: 1, runs: 1, latencySeconds: 2, coldStarts: 5, connections: 50, threads: 1 }
  : { seconds: 10, warmup: 2, runs: 2, latencySeconds: 10, coldStarts: 5, connections: 50, threads: 1 };
P.runs = numArg('runs') ?? P.runs;
P.seconds = numArg('seconds') ?? P.seconds;
P.latencySeconds = numArg('seconds') ?? P.latencySeconds;
const loadAtStart = loadavg()[0] as number;
const CORE_PROXY = '0';
const CORE_LOAD = '1';
const CORES_DUAL = '0,1';
// ~100-byte origin body; nginx's return needs no quotes or braces in it.

const t0 = Date.now();
const say = (s: string): void => console.log(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

// Children are stopped by PID whatever way the harness ends.
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`${sig}: stopping everything the harness started`);
    stopAll().finally(() => process.exit(130));
  });
}

/** A row's request headers (`Name: value` lines) for its readiness probe: auth rows answer 401 without them. */
function probeHeaders(c: Contestant): Record<string, string> {
  return Object.fromEntries((c.headers ?? []).map((h) => [h.slice(0, h.indexOf(':')).trim(), h.slice(h.indexOf(':') + 1).trim()]));
}

async function main(): Promise<number> {
  // Re-renders the report from a saved results.json (after a change to the report's format).
  const from = args.find((a) => a.startsWith('--from='))?.slice(7);
  if (from) {
    const saved = JSON.parse(readFileSync(from, 'utf8')) as Report;
    if (existsSync(join(benchDir, 'ANALYSIS.md'))) saved.analysis = readFileSync(join(benchDir, 'ANALYSIS.md'), 'utf8');
    const { markdown } = writeReport(saved);
    const out = writeDocs && !saved.quick ? join(root, 'docs', 'benchmarks.md') : join(benchDir, 'results', saved.quick ? 'benchmarks-quick.md' : 'benchmarks.md');
    writeFileSync(out, markdown);
    say(`report from ${from} written to ${out.replace(root + '/', '')}`);
    return 0;
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`Node ${process.version}: run with Node 24 (node_modules/.bin/node from the project root)`);
  if (!process.env.WEIR_BIN && !args.includes('--sources')) {
    // Measure what users deploy: the single binary (bundled; no type stripping at run time).
    try {
      const { buildBinary, binaryUpToDate } = await import('../build/binary.ts');
      if (!binaryUpToDate()) await buildBinary();
      process.env.WEIR_BIN = join(root, 'dist', 'weir');
      say('Weir rows run the single binary dist/weir (--sources: the TypeScript sources instead)');
    } catch (e) {
      say(`building the binary failed, measuring the sources: ${(e as Error).message}`);
    }
  }
  try {
    // The plugin rows need the header plugins (and the first-party ones, built by npm ci).
    const { buildBenchPlugins } = await import('./plugins/build.ts');
    await buildBenchPlugins();
  } catch (e) {
    say(`building the benchmark plugins failed: ${(e as Error).message}`);
  }
  if (cpus().length < 2) throw new Error('needs at least 2 cores (proxy on one, origin + load on the other)');

  if (loadAtStart > 0.5) say(`warning: load average ${loadAtStart.toFixed(2)} before starting: something else is using the cores, expect noise`);
  const selected = CONTESTANTS.filter((c) => (onlyArg ? onlyArg.split(',').includes(c.id) : quick ? c.quick : true));
  if (selected.length === 0) throw new Error(`no contestant matches --only ${onlyArg}`);

  const missing = await ensureTools(['taskset', 'wrk', 'nginx', ...(selected.some((c) => c.id === 'haproxy') ? ['haproxy'] : []), ...(selected.some((c) => c.id === 'caddy') ? ['caddy'] : [])], say);
  if (missing.includes('wrk') || missing.includes('nginx') || missing.includes('taskset')) throw new Error(`cannot run without ${missing.join(', ')}`);
  const peersOk = await ensureNodePeers(benchDir, say);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(benchDir, 'results');
  const work = join(resultsDir, `run-${stamp}${quick ? '-quick' : ''}`);
  mkdirSync(join(work, 'www'), { recursive: true });
  writeFileSync(join(work, 'www', '1m'), Buffer.alloc(1 << 20, 'x'));
  // The gzip rows' response: 8 KiB of text that compresses like prose (not one repeated byte).
  const words = 'the proxy sends each response to the client as the origin wrote it unless a route asks for compression'.split(' ');
  let text = '';
  for (let k = 0; text.length < 8192; k++) text += words[(k * 7 + (k >> 3)) % words.length] + (k % 13 === 12 ? '.\n' : ' ');
  writeFileSync(join(work, 'www', 'text.txt'), text.slice(0, 8192));
  for (const d of ['origin', 'nginx', 'nginx-2w']) for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(work, `${d}-${t}`), { recursive: true });

  // Origin: nginx on core 1, two ports (the LB row balances over both).
  const { origin, port: originPort, port2: originPort2 } = await startNginxOrigin(work, CORE_LOAD);
  await waitFor200(`http://127.0.0.1:${originPort2}/1m`, origin, 10_000);
  say(`origin nginx up on 127.0.0.1:${originPort} (+${originPort2}), pid ${origin.pid}, core ${CORE_LOAD}`);

  const ctx: Ctx = { root, benchDir, work, node: process.execPath, originPort, originPort2, proxyCpus: CORE_PROXY, dualCpus: CORES_DUAL };
  const rows = new Map<string, Row>();
  const inst = new Map<string, Instance>();
  const byId = new Map<string, Contestant>(selected.map((c) => [c.id, c]));

  // 1. Check and start every contestant; idle RSS once all have settled.
  for (const c of selected) {
    const row: Row = { id: c.id, label: c.label, group: c.group, weir: c.weir, cpus: c.id === 'direct' ? '-' : c.group === 'dual' ? CORES_DUAL : CORE_PROXY, status: 'ok', runs: [], ...(c.versus ? { versus: c.versus } : {}) };
    rows.set(c.id, row);
    let reason = (['haproxy', 'caddy'].includes(c.id) && missing.includes(c.id)) ? `${c.id} not installed` : undefined;
    if (!reason && ['fastify', 'http-proxy'].includes(c.id) && !peersOk) reason = 'npm install of the Node peers failed';
    reason ??= await c.check(ctx);
    if (reason) {
      row.status = 'n/a';
      row.reason = reason;
      say(`${c.id}: n/a: ${reason}`);
      continue;
    }
    try {
      const ts = performance.now();
      const i = await c.spawn(ctx);
      row.startupMs = await waitFor200(i.url, i.proc, 20_000, ts, probeHeaders(c));
      // Guards against a contestant answering 200 on its own (a demo page, a default route).
      const body = await (await fetch(i.url, { headers: probeHeaders(c) })).text();
      if (body !== BODY) throw new Error(`answered 200 with a body that is not the origin's: ${JSON.stringify(body.slice(0, 120))}`);
      inst.set(c.id, i);
      say(`${c.id}: up at ${i.url}${i.proc ? ` pid ${i.proc.pid}` : ''} in ${row.startupMs.toFixed(0)} ms`);
    } catch (e) {
      // A config Weir validates but this build cannot run yet (a filter type still to come)
      // is a missing feature, not a crash: the row is n/a with Weir's own message.
      const m = c.weir ? /(WEIR_ERR_CONFIG\w*): (?:\S+\.kdl:\d+:\d+: )?([^\n]*)/.exec(String((e as Error).message)) : null;
      if (m) {
        row.status = 'n/a';
        row.reason = `this build cannot run the config yet (${m[1]}): ${m[2]}`.slice(0, 300);
        say(`${c.id}: n/a: ${row.reason}`);
      } else fail(row, e);
    }
  }
  await sleep(1000);
  for (const [id, i] of inst) if (i.proc) (rows.get(id) as Row).idleRssBytes = treeRss(i.proc.pid);

  const alive = (id: string): Instance | undefined => {
    const i = inst.get(id);
    const row = rows.get(id) as Row;
    if (!i || row.status !== 'ok') return undefined;
    if (i.proc?.exited()) {
      fail(row, new Error(`process exited:\n${i.proc.output().trim().slice(-800)}`));
      return undefined;
    }
    return i;
  };

  // Samples the proxy's RSS while a load run is going on, keeping the maximum.
  // Also records how much CPU other processes on the machine took meanwhile (noise).
  async function underLoad<T>(id: string, f: () => Promise<T>): Promise<T> {
    const i = inst.get(id);
    const row = rows.get(id) as Row;
    const pid = i?.proc?.pid;
    const timer = pid === undefined ? undefined : setInterval(() => (row.loadRssBytes = Math.max(row.loadRssBytes ?? 0, treeRss(pid))), 250);
    const before = cpuSnapshot();
    try {
      return await f();
    } finally {
      clearInterval(timer);
      (row.otherLoadCores ??= []).push(Number(otherLoad(before, cpuSnapshot()).toFixed(2)));
    }
  }

  const wrkOpts = (u: string, seconds: number, headers?: readonly string[]) => ({ url: u, seconds, connections: P.connections, threads: P.threads, cpus: CORE_LOAD, headers });
  /** What a row's load runs request: its path (the feature rows) with its headers. */
  const target = (id: string, i: Instance): string => i.url + ((byId.get(id) as Contestant).path ?? '/').slice(1);
  const hdrs = (id: string): readonly string[] | undefined => (byId.get(id) as Contestant).headers;

  // 2. Max rate, closed loop. Runs are interleaved across contestants so drift in the
  // machine's noise spreads over all rows instead of landing on one.
  for (const id of inst.keys()) {
    const i = alive(id);
    if (!i) continue;
    try {
      await wrk(benchDir, wrkOpts(target(id, i), P.warmup, hdrs(id)));
    } catch (e) {
      fail(rows.get(id) as Row, e);
    }
  }
  for (let r = 0; r < P.runs; r++) {
    for (const id of inst.keys()) {
      const i = alive(id);
      if (!i) continue;
      const row = rows.get(id) as Row;
      try {
        const res = await underLoad(id, () => wrk(benchDir, wrkOpts(target(id, i), P.seconds, hdrs(id))));
        row.runs.push(res);
        say(`${id}: run ${r + 1}/${P.runs}: ${res.rps.toFixed(0)} req/s, p99 ${(res.latencyUs.p99 / 1000).toFixed(2)} ms${res.errors ? `, ${res.errors} errors` : ''}`);
      } catch (e) {
        fail(row, e);
      }
    }
  }
  for (const row of rows.values()) {
    if (row.status !== 'ok' || row.runs.length === 0) continue;
    row.rps = median(row.runs.map((x) => x.rps));
    const total = row.runs.reduce((a, x) => a + x.requests, 0);
    const errs = row.runs.reduce((a, x) => a + x.errors, 0);
    row.errors = errs;
    // A proxy answering errors fast is not a fast proxy.
    if (errs > total * 0.01) fail(row, new Error(`${errs} of ${total} responses were errors or non-2xx`));
  }

  // 3. Latency at 50 % of each contestant's own max rate, open loop, generator on core 1.
  for (const id of inst.keys()) {
    const i = alive(id);
    const row = rows.get(id) as Row;
    // The open-loop generator sends no extra headers: the gzip rows' latency would not be theirs.
    if (!i || !row.rps || hdrs(id)) continue;
    const rate = Math.max(1, Math.round(row.rps / 2));
    const r = await underLoad(id, () =>
      run('taskset', ['-c', CORE_LOAD, ctx.node, join(benchDir, 'loadgen', 'fixed-rate.mjs'), target(id, i), String(rate), String(P.latencySeconds), String(P.connections)], {
        cwd: benchDir,
        timeoutMs: (P.latencySeconds + 20) * 1000,
      }),
    );
    try {
      const j = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as LatencyResult;
      // The generator shares core 1 with the origin; when it cannot keep its schedule the
      // numbers describe the generator, and the row says so.
      j.generatorLimited = j.achievedRate < 0.95 * rate || j.lagMs.p50 > 2;
      row.latency = j;
      say(`${id}: at ${rate} req/s: p50 ${j.latencyMs.p50.toFixed(2)} ms, p99 ${j.latencyMs.p99.toFixed(2)} ms (achieved ${j.achievedRate.toFixed(0)}/s${j.generatorLimited ? ', generator-limited' : ''})`);
    } catch {
      row.latencyError = `load generator failed (code ${r.code}): ${r.stderr.trim().slice(-300)}`;
      say(`${id}: ${row.latencyError}`);
    }
  }

  // 4. 1 MiB responses: throughput in MB/s.
  for (const id of inst.keys()) {
    const c = byId.get(id) as Contestant;
    const i = alive(id);
    if (!i || !c.throughput) continue;
    const row = rows.get(id) as Row;
    try {
      const u = i.url + '1m';
      await wrk(benchDir, wrkOpts(u, P.warmup));
      const runs: WrkResult[] = [];
      for (let r = 0; r < P.runs; r++) runs.push(await underLoad(id, () => wrk(benchDir, wrkOpts(u, P.seconds))));
      row.throughput = { runs, mbPerSec: median(runs.map((x) => x.bytesPerSec)) / 1e6 };
      say(`${id}: 1 MiB responses: ${row.throughput.mbPerSec.toFixed(0)} MB/s`);
    } catch (e) {
      row.throughputError = String((e as Error).message);
    }
  }

  // 5. Stop the contestants, then cold starts: spawn → first 200 through the proxy.
  for (const i of inst.values()) if (i.proc) await stop(i.proc);
  for (const id of inst.keys()) {
    const c = byId.get(id) as Contestant;
    const row = rows.get(id) as Row;
    if (row.status !== 'ok' || id === 'direct' || (quick && !c.weir)) continue;
    const times: number[] = [];
    try {
      for (let k = 0; k < P.coldStarts; k++) {
        const ts = performance.now();
        const i = await c.spawn(ctx);
        try {
          times.push(await waitFor200(i.url, i.proc, 20_000, ts, probeHeaders(c)));
        } finally {
          if (i.proc) await stop(i.proc as Started);
        }
      }
      row.coldStartMs = times;
      say(`${id}: cold start median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
    } catch (e) {
      row.coldStartError = String((e as Error).message).slice(0, 300);
    }
  }
  await stop(origin);

  // 6. Ratios and report.
  const report: Report = {
    date: new Date().toISOString(),
    quick,
    params: P,
    placement: { proxy: CORE_PROXY, dual: CORES_DUAL, originAndLoad: CORE_LOAD },
    machine: await machine(),
    versions: await versions(),
    rows: [...rows.values()],
    commands: [...new Set(commandLog.map((l) => {
      let out = l.replaceAll(work, '$RUN').replaceAll(root + '/', '');
      for (const p of portsUsed) out = out.replace(new RegExp(`\\b${p}\\b`, 'g'), p === originPort ? '$ORIGIN_PORT' : p === originPort2 ? '$ORIGIN_PORT_2' : '$PORT');
      return out.replace(/(fixed-rate\.mjs \S+) \d+/, '$1 $RATE');
    }))],
    durationSeconds: (Date.now() - t0) / 1000,
  };
  rmSync(join(work, 'www'), { recursive: true, force: true });
  mkdirSync(resultsDir, { recursive: true });
  try {
    report.analysis = readFileSync(join(benchDir, 'ANALYSIS.md'), 'utf8');
  } catch {
    // no analysis file
  }
  try {
    // Micro-benchmarks run after the load tests, when the proxies are stopped.
    const { runMicro } = await import('./micro.ts');
    report.micro = await runMicro(quick);
  } catch (e) {
    say(`micro-benchmarks failed: ${(e as Error).message}`);
  }
  const { markdown, targetsMissed } = writeReport(report);
  const json = JSON.stringify(report, null, 2);
  writeFileSync(join(work, 'results.json'), json);
  writeFileSync(join(resultsDir, quick ? 'latest-quick.json' : 'latest.json'), json);
  writeFileSync(join(resultsDir, quick ? 'benchmarks-quick.md' : 'benchmarks.md'), markdown);
  if (writeDocs) {
    mkdirSync(join(root, 'docs'), { recursive: true });
    writeFileSync(join(root, 'docs', 'benchmarks.md'), markdown);
  }
  console.log('\n' + markdown.split('\n## Versions')[0]);
  say(`raw results: ${join(work, 'results.json').replace(root + '/', '')}${writeDocs ? '; report: docs/benchmarks.md' : `; report: bench/results/benchmarks${quick ? '-quick' : ''}.md`}`);
  return strict && targetsMissed > 0 ? 1 : 0;
}

function fail(row: Row, e: unknown): void {
  row.status = 'failed';
  row.reason = String((e as Error)?.message ?? e).split('\n').slice(0, 3).join(' / ').slice(0, 400);
  say(`${row.id}: failed: ${row.reason}`);
}

async function firstLine(cmd: string, a: string[]): Promise<string> {
  const r = await run(cmd, a, { timeoutMs: 10_000, log: false });
  return ((r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '').trim() || 'not installed';
}

async function versions(): Promise<Record<string, string>> {
  const pkg = (dir: string, name: string): string => {
    try {
      return JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return 'not installed';
    }
  };
  const rev = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, timeoutMs: 5000, log: false });
  return {
    weir: `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version} (${rev.stdout.trim() || 'no git'})${existsSync(join(root, 'host/bin/weir.ts')) ? '' : ', host/bin/weir.ts absent'}`,
    node: process.version,
    nginx: await firstLine('nginx', ['-v']),
    haproxy: await firstLine('haproxy', ['-v']),
    caddy: await firstLine('caddy', ['version']),
    wrk: (await firstLine('wrk', ['-v'])).replace(/ Copyright.*/, ''),
    fastify: pkg(benchDir, 'fastify'),
    '@fastify/http-proxy': pkg(benchDir, '@fastify/http-proxy'),
    'http-proxy': pkg(benchDir, 'http-proxy'),
    '@fastify/reply-from': pkg(benchDir, '@fastify/reply-from'),
    'undici (used by @fastify/reply-from)': pkg(benchDir, '@fastify/reply-from/node_modules/undici') === 'not installed' ? pkg(benchDir, 'undici') : pkg(benchDir, '@fastify/reply-from/node_modules/undici'),
  };
}

async function machine(): Promise<Record<string, string>> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: String(cpus().length),
    kernel: release(),
    loadavgAtStart: loadAtStart.toFixed(2),
    loadavgAtEnd: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (e) => {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    await stopAll();
    process.exit(2);
  },
);

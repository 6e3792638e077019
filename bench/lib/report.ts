// Turns one run's results into docs/benchmarks.md: tables, targets, versions, commands.
import type { WrkResult } from './wrk.ts';

export interface LatencyResult {
  targetRate: number;
  achievedRate: number;
  sent: number;
  completed: number;
  errors: number;
  non200: number;
  unfinished: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  lagMs: { p50: number; p99: number };
  generatorLimited?: boolean;
}

export interface Row {
  id: string;
  label: string;
  group: 'single' | 'dual';
  weir: boolean;
  cpus: string;
  status: 'ok' | 'n/a' | 'failed';
  reason?: string;
  startupMs?: number;
  idleRssBytes?: number;
  loadRssBytes?: number;
  runs: WrkResult[];
  rps?: number;
  errors?: number;
  latency?: LatencyResult;
  latencyError?: string;
  throughput?: { runs: WrkResult[]; mbPerSec: number };
  throughputError?: string;
  coldStartMs?: number[];
  coldStartError?: string;
  /** Per measured run: cores' worth of CPU used by processes the harness did not start. */
  otherLoadCores?: number[];
  /** The row it is compared with in the feature table (Weir's cache hit vs nginx proxy_cache…). */
  versus?: string;
}

export interface Report {
  date: string;
  quick: boolean;
  params: { seconds: number; warmup: number; runs: number; latencySeconds: number; coldStarts: number; connections: number; threads: number };
  placement: { proxy: string; dual: string; originAndLoad: string };
  machine: Record<string, string>;
  versions: Record<string, string>;
  rows: Row[];
  commands: string[];
  durationSeconds: number;
  /** Hand-written analysis (bench/ANALYSIS.md), kept with every report. */
  analysis?: string;
  /** Micro-benchmarks (bench/micro.ts): name → median ns per operation. */
  micro?: Array<{ name: string; medianNs: number; note?: string }>;
}

const MiB = 1024 * 1024;
/** Cores of outside CPU use above which a measurement is called noisy. */
const NOISY = 0.2;
const fmt = (n: number | undefined, d = 0): string => (n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const mib = (b: number | undefined): string => (b === undefined ? '–' : `${(b / MiB).toFixed(1)} MiB`);
const ratio = (a: number | undefined, b: number | undefined): string => (a && b ? `${(a / b).toFixed(2)}×` : '–');
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const esc = (s: string): string => s.replaceAll('|', '\\|');

interface Target {
  name: string;
  value: string;
  threshold: string;
  result: 'met' | 'missed' | 'n/a';
  note?: string;
}

function targets(rows: Map<string, Row>): Target[] {
  const ok = (id: string): Row | undefined => {
    const r = rows.get(id);
    return r && r.status === 'ok' && r.rps ? r : undefined;
  };
  const why = (id: string): string => {
    const r = rows.get(id);
    return r ? `${id}: ${r.status}${r.reason ? ` (${r.reason.length > 160 ? `${r.reason.slice(0, 160)}…` : r.reason})` : ''}` : `${id} not run`;
  };
  const weir = ok('weir');
  const out: Target[] = [];
  const ratioTarget = (name: string, a: string, b: string, min: number): void => {
    const ra = ok(a);
    const rb = ok(b);
    if (!ra || !rb) out.push({ name, value: '–', threshold: `≥ ${min}×`, result: 'n/a', note: !ra ? why(a) : why(b) });
    else {
      const v = (ra.rps as number) / (rb.rps as number);
      out.push({ name, value: `${v.toFixed(2)}×`, threshold: `≥ ${min}×`, result: v >= min ? 'met' : 'missed' });
    }
  };
  ratioTarget('Weir no-filter vs @fastify/http-proxy (req/s)', 'weir', 'fastify', 1.3);
  ratioTarget('Weir no-filter vs nginx proxy (req/s)', 'weir', 'nginx', 0.6);
  ratioTarget('Weir plugins inline vs Weir no-filter (req/s)', 'weir-plugins-inline', 'weir', 0.85);
  ratioTarget('Weir 4 scaffolded AS plugins inline vs Weir no-filter (req/s)', 'weir-scaffold-inline', 'weir', 0.85);
  ratioTarget('Weir rate-limit + geo + LB vs Weir no-filter (req/s)', 'weir-first-party', 'weir', 0.8);
  ratioTarget('Weir 4 scaffolded AS plugins worker-isolated vs Weir no-filter (req/s)', 'weir-scaffold-worker', 'weir', 0.5);
  const lat = weir?.latency;
  out.push(
    lat
      ? { name: 'Weir no-filter p99 at 50 % of its max rate', value: `${lat.latencyMs.p99.toFixed(2)} ms`, threshold: '≤ 2 ms', result: lat.latencyMs.p99 <= 2 ? 'met' : 'missed', note: lat.generatorLimited ? 'load generator could not hold the rate; see latency table' : undefined }
      : { name: 'Weir no-filter p99 at 50 % of its max rate', value: '–', threshold: '≤ 2 ms', result: 'n/a', note: weir ? weir.latencyError : why('weir') },
  );
  const rss = rows.get('weir')?.idleRssBytes;
  out.push(rss !== undefined && rows.get('weir')?.status === 'ok'
    ? { name: 'Weir idle RSS', value: mib(rss), threshold: '≤ 100 MiB', result: rss <= 100 * MiB ? 'met' : 'missed' }
    : { name: 'Weir idle RSS', value: '–', threshold: '≤ 100 MiB', result: 'n/a', note: why('weir') });
  const cs = rows.get('weir')?.coldStartMs;
  out.push(cs?.length
    ? { name: 'Weir cold start (spawn → first 200 through it), median', value: `${median(cs).toFixed(0)} ms`, threshold: '≤ 1000 ms', result: median(cs) <= 1000 ? 'met' : 'missed' }
    : { name: 'Weir cold start (spawn → first 200 through it), median', value: '–', threshold: '≤ 1000 ms', result: 'n/a', note: rows.get('weir')?.coldStartError ?? why('weir') });
  // A target measured while other work ran on the machine says little either way.
  for (const t of out) {
    if (t.result === 'n/a') continue;
    const ids = t.name.includes('plugins inline') ? ['weir-plugins-inline', 'weir'] : t.name.includes('fastify') ? ['weir', 'fastify'] : t.name.includes('nginx') ? ['weir', 'nginx'] : ['weir'];
    const load = Math.max(0, ...ids.flatMap((id) => rows.get(id)?.otherLoadCores ?? []));
    if (load > NOISY && !t.name.includes('idle RSS') && !t.name.includes('cold start')) t.note = [t.note, `measured while other processes used up to ${load.toFixed(2)} cores: re-run on a quiet machine`].filter(Boolean).join('; ');
  }
  return out;
}

export function writeReport(r: Report): { markdown: string; targetsMissed: number } {
  const rows = new Map(r.rows.map((x) => [x.id, x]));
  const nginx = rows.get('nginx')?.rps;
  const nginx2 = rows.get('nginx-2w')?.rps;
  const fastify = rows.get('fastify')?.rps;
  const p = r.params;
  const L: string[] = [];
  const push = (...s: string[]): void => void L.push(...s);

  const noisiest = Math.max(0, ...r.rows.flatMap((x) => x.otherLoadCores ?? []));
  push(
    '# Benchmarks',
    '',
    ...(noisiest > NOISY ? [`> **Noisy run**: processes outside the benchmark used up to ${noisiest.toFixed(2)} of the 2 cores during measurements (column "Other load"). Ratios between rows are rough and absolute numbers are low; re-run on a quiet machine before quoting them.`, ''] : []),
    `Written by \`bench/run.ts\`${r.quick ? ' in **quick mode** (short runs, a subset of rows: a smoke test, not numbers to quote)' : ''} on ${r.date.slice(0, 16).replace('T', ' ')} UTC, in ${r.durationSeconds.toFixed(0)} s. Do not edit by hand: run \`npm run bench\` again. How to run and what each row means: [bench/README.md](../bench/README.md).`,
    '',
    '## Setup',
    '',
    `- Machine: ${r.machine.cpu}, ${r.machine.cores} cores, Linux ${r.machine.kernel}; a shared, noisy VM (1-min load average before the run: ${r.machine.loadavgAtStart}; at the end: ${r.machine.loadavgAtEnd}${Number(r.machine.loadavgAtStart) > 0.5 ? ' — **other work was running on the machine: treat the numbers as rough**' : ''}). Compare rows of one run with each other, not runs of different days.`,
    `- Placement (\`taskset\`): the proxy under test alone on core ${r.placement.proxy}; the origin (nginx, 1 worker, \`return 200\` with a ~100-byte body, and a 1 MiB file) and the load generators (wrk, the fixed-rate generator) on core ${r.placement.originAndLoad}. With two cores the proxy gets a core of its own so it never competes with the load it is measured by; origin and wrk share the other core, which caps the "direct" row and is the same for every row. The two-worker rows (nginx 2 workers, Weir \`worker-threads 2\`) are pinned to cores ${r.placement.dual} and so share both cores with the origin and wrk: compare them with each other only.`,
    `- Every contestant: 1 core, 1 worker/thread (Caddy: \`GOMAXPROCS=1\`; nginx: \`worker_processes 1\`; HAProxy: \`nbthread 1\`; Node proxies: one process), keep-alive to the origin, no access log.`,
    `- Max rate: \`wrk -t${p.threads} -c${p.connections} -d${p.seconds}s\`, ${p.warmup} s warm-up per contestant, ${p.runs} run${p.runs > 1 ? 's' : ''} each, interleaved across contestants, median reported.`,
    `- Latency: an open-loop fixed-rate generator of our own (\`bench/loadgen/fixed-rate.mjs\`: Node, raw sockets, ${p.connections} keep-alive connections; wrk2 is not in Debian) at 50 % of each contestant's own max rate for ${p.latencySeconds} s after a short unrecorded warm-up. Requests are dispatched on a 1 ms schedule whether or not earlier ones returned and wait in the generator's queue when every connection is busy; latency runs from dispatch to the end of the body. "Gen. lag p99" is how late the generator dispatched against the ideal schedule: large values mean it was starved of CPU and sent bursts.`,
    '',
    '## Requests per second (~100-byte responses)',
    '',
    '| Contestant | Cores | req/s (median) | Runs | × nginx proxy¹ | × @fastify/http-proxy | p99 at max rate | Idle RSS | RSS under load | Other load² | Status |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const x of r.rows) {
    const ok = x.status === 'ok' && x.rps !== undefined;
    const p99 = ok ? median(x.runs.map((w) => w.latencyUs.p99)) / 1000 : undefined;
    const rs = x.runs.map((w) => w.rps);
    // Runs far apart mean a stall or outside noise during one of them: say so next to the median.
    const spread = rs.length > 1 ? Math.max(...rs) / Math.min(...rs) : 1;
    const status = x.status === 'ok' ? (spread > 1.5 ? `ok; unstable: runs differ ${spread.toFixed(1)}×` : 'ok') : `${x.status}: ${esc(x.reason ?? '')}`;
    push(
      `| ${esc(x.label)} | ${x.cpus} | ${ok ? fmt(x.rps) : '–'} | ${ok ? x.runs.map((w) => fmt(w.rps)).join(' / ') : '–'} | ${ok ? ratio(x.rps, x.group === 'dual' ? nginx2 : nginx) : '–'} | ${ok ? ratio(x.rps, fastify) : '–'} | ${p99 !== undefined ? `${p99.toFixed(2)} ms` : '–'} | ${mib(x.idleRssBytes)} | ${mib(x.loadRssBytes)} | ${x.otherLoadCores?.length ? `${Math.max(...x.otherLoadCores).toFixed(2)}` : '–'} | ${status} |`,
    );
  }
  const n2 = rows.get('nginx-2w');
  const w2 = rows.get('weir-2t');
  push('', '¹ Rows on cores 0,1 (two workers/threads) are compared with nginx with 2 workers; the others with nginx with 1 worker. "p99 at max rate" is wrk\'s closed-loop p99 with the proxy saturated, not a latency target.', '', '² The most CPU, in cores, that processes outside the benchmark used during any of the row\'s measured runs (user + system + steal time from /proc/stat, minus the CPU time of the harness\'s own process tree; steal is time the hypervisor gave to other guests). Above ' + NOISY + ' the row competed with other work on this 2-core machine.');
  if (n2?.rps && w2?.rps) push('', `Two workers: Weir \`worker-threads 2\` = ${ratio(w2.rps, n2.rps)} nginx with 2 workers.`);

  const pairs = r.rows.filter((x) => x.versus && rows.get(x.versus));
  if (pairs.length) {
    push('', '## Cache hit and gzip', '', 'Each Weir row against nginx doing the same thing, in the same run and placement (the rows above give the runs).', '', '| Feature | Weir req/s | nginx req/s | Weir × nginx |', '| --- | ---: | ---: | ---: |');
    for (const x of pairs) {
      const n = rows.get(x.versus!)!;
      const name = x.id === 'weir-cache' ? 'cache hit (Weir memory store vs nginx proxy_cache)' : x.id === 'weir-gzip' ? 'gzip on (8 KiB text, level 6)' : x.label;
      push(`| ${name} | ${x.status === 'ok' ? fmt(x.rps) : x.status} | ${n.status === 'ok' ? fmt(n.rps) : n.status} | ${x.status === 'ok' && n.status === 'ok' ? ratio(x.rps, n.rps) : '–'} |`);
    }
  }

  push('', `## Latency at 50 % of max rate`, '', '| Contestant | Target rate | Achieved | p50 | p90 | p99 | p99.9 | Max | Gen. lag p99 | Note |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const x of r.rows) {
    if (!x.latency && !x.latencyError) continue;
    const l = x.latency;
    if (!l) {
      push(`| ${esc(x.label)} | – | – | – | – | – | – | – | – | ${esc(x.latencyError ?? '')} |`);
      continue;
    }
    const notes = [
      l.generatorLimited ? `generator-limited: it shares core ${r.placement.originAndLoad} with the origin and could not hold the rate` : '',
      !l.generatorLimited && l.lagMs.p99 > 5 ? 'generator stalled at times (CPU contention on its core): bursts inflate the tail' : '',
      l.errors || l.non200 || l.unfinished ? `${l.errors} errors, ${l.non200} non-200, ${l.unfinished} unfinished` : '',
    ].filter(Boolean);
    const ms = (v: number): string => `${v.toFixed(2)} ms`;
    push(`| ${esc(x.label)} | ${fmt(l.targetRate)}/s | ${fmt(l.achievedRate)}/s | ${ms(l.latencyMs.p50)} | ${ms(l.latencyMs.p90)} | ${ms(l.latencyMs.p99)} | ${ms(l.latencyMs.p999)} | ${ms(l.latencyMs.max)} | ${ms(l.lagMs.p99)} | ${esc(notes.join('; '))} |`);
  }

  push('', '## 1 MiB responses', '', '| Contestant | MB/s (10⁶ bytes, median) | Runs | × nginx proxy |', '| --- | ---: | --- | ---: |');
  const nginxT = rows.get('nginx')?.throughput?.mbPerSec;
  for (const x of r.rows) {
    if (x.throughput) push(`| ${esc(x.label)} | ${fmt(x.throughput.mbPerSec)} | ${x.throughput.runs.map((w) => fmt(w.bytesPerSec / 1e6)).join(' / ')} | ${ratio(x.throughput.mbPerSec, nginxT)} |`);
    else if (x.throughputError) push(`| ${esc(x.label)} | – | – | failed: ${esc(x.throughputError)} |`);
    else if (x.id === 'weir' && x.status !== 'ok') push(`| ${esc(x.label)} | – | – | ${x.status}: ${esc(x.reason ?? '')} |`);
  }

  push('', '## Cold start (spawn → first 200 through the proxy)', '', '| Contestant | Median | Samples |', '| --- | ---: | --- |');
  for (const x of r.rows) {
    if (x.coldStartMs?.length) push(`| ${esc(x.label)} | ${median(x.coldStartMs).toFixed(0)} ms | ${x.coldStartMs.map((t) => t.toFixed(0)).join(', ')} ms |`);
    else if (x.coldStartError) push(`| ${esc(x.label)} | – | failed: ${esc(x.coldStartError)} |`);
    else if (x.weir && x.id === 'weir') push(`| ${esc(x.label)} | – | ${x.status}: ${esc(x.reason ?? 'not measured')} |`);
  }

  const ts = targets(rows);
  push('', '## Targets', '', '| Target | Measured | Threshold | Result | Note |', '| --- | ---: | ---: | --- | --- |');
  for (const t of ts) push(`| ${t.name} | ${t.value} | ${t.threshold} | **${t.result}** | ${esc(t.note ?? '')} |`);

  if (r.micro?.length) {
    const ns = (v: number): string => (v < 1000 ? `${v.toFixed(0)} ns` : v < 1e6 ? `${(v / 1000).toFixed(2)} µs` : `${(v / 1e6).toFixed(2)} ms`);
    push('', '## Micro-benchmarks', '', 'In-process, no sockets (`node bench/micro.ts`): median time per operation over batches after warm-up, on the same machine and run.', '', '| Operation | Median | Note |', '| --- | ---: | --- |');
    for (const m of r.micro) push(`| ${esc(m.name)} | ${ns(m.medianNs)} | ${esc(m.note ?? '')} |`);
  }

  if (r.analysis) push('', r.analysis.trim());

  push('', '## Versions', '', '| Component | Version |', '| --- | --- |');
  for (const [k, v] of Object.entries(r.versions)) push(`| ${k} | ${esc(v)} |`);

  push('', '## Commands run', '', `Each distinct command once, in order of first use; \`$RUN\` is this run's folder under \`bench/results/\` (rendered configs and logs are kept there), \`$PORT\`/\`$ORIGIN_PORT\` are ports picked at run time, \`$RATE\` is half the row's median req/s; paths are relative to the project root. The configs are the templates in \`bench/configs/\` with those values filled in.`, '', '```sh', ...r.commands, '```', '');
  return { markdown: L.join('\n'), targetsMissed: ts.filter((t) => t.result === 'missed').length };
}

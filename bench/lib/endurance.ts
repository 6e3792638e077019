/**
 * Shared by the soak (bench/soak) and chaos (bench/chaos) runners: the endurance origin as a
 * process, `weir run` as a process (optionally under shell limits), the metrics endpoint
 * parsed, percentiles, and the generated sections of docs/reliability.md.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop, waitFor200, type Started } from './proc.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WEIR_BIN = join(ROOT, 'host', 'bin', 'weir.ts');
const ORIGIN = join(ROOT, 'bench', 'soak', 'origin.ts');

export interface OriginProc {
  readonly ports: number[];
  readonly proc: Started;
  stop(): Promise<void>;
}

/** bench/soak/origin.ts in its own process: `count` fresh ports, or the given ones (a restart). */
export async function startEnduranceOrigin(opts: { count?: number; ports?: readonly number[] } = {}): Promise<OriginProc> {
  const args = opts.ports ? opts.ports.map((p) => `--port=${p}`) : [`--ports=${opts.count ?? 2}`];
  const proc = start('origin', process.execPath, [ORIGIN, ...args]);
  const until = Date.now() + 20_000;
  for (;;) {
    const m = /^\[[\d,]+\]$/m.exec(proc.output());
    if (m) return { ports: JSON.parse(m[0]) as number[], proc, stop: () => stop(proc, 1000) };
    if (proc.exited()) throw new Error(`origin exited:\n${proc.output()}`);
    if (Date.now() > until) throw new Error(`origin did not start:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * `weir run -c config` as a process, once `probeUrl` answers 200. `ulimit` runs it under
 * `sh -c 'ulimit …; exec node …'` (fd or file-size limits for the chaos scenarios).
 */
export async function startWeirProcess(config: string, probeUrl: string, opts: { ulimit?: string; env?: Record<string, string> } = {}): Promise<Started> {
  const proc = opts.ulimit
    ? start('weir', 'sh', ['-c', `ulimit ${opts.ulimit} && exec "$0" "$@"`, process.execPath, WEIR_BIN, 'run', '-c', config], { env: opts.env })
    : start('weir', process.execPath, [WEIR_BIN, 'run', '-c', config], { env: opts.env });
  await waitFor200(probeUrl, proc, 60_000);
  return proc;
}

/** One Prometheus text exposition parsed: `name{labels}` (labels as written) → value. */
export type Metrics = Map<string, number>;

export async function scrape(url: string): Promise<Metrics> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The sum of every series of `name` whose labels contain each of `having` (`result="ok"`). */
export function metricSum(m: Metrics, name: string, ...having: string[]): number {
  let total = 0;
  for (const [k, v] of m) {
    const base = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
    if (base === name && having.every((h) => k.includes(h))) total += v;
  }
  return total;
}

/** VmRSS of one process in bytes (0 once it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Open file descriptors of a process (0 once it is gone). */
export function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Nearest-rank percentile of unsorted values, rounded to 0.1 ms. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return Math.round(v * 10) / 10;
}

/** Replaces what is between `<!-- name:begin -->` and `<!-- name:end -->` in docs/reliability.md, appending the section when the markers are missing. */
export function writeReliabilitySection(name: string, heading: string, body: string): void {
  const file = join(ROOT, 'docs', 'reliability.md');
  const text = readFileSync(file, 'utf8');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a === -1 || b === -1) {
    writeFileSync(file, `${text.trimEnd()}\n\n${heading}\n\n${begin}\n${body}\n${end}\n`);
    return;
  }
  writeFileSync(file, `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`);
}

/** `--key=value` command-line flags. */
export function flags(argv: readonly string[]): Map<string, string | undefined> {
  return new Map(argv.map((a): [string, string | undefined] => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v];
  }));
}

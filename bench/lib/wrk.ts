// Closed-loop max-rate runs with wrk, pinned to its core; results parsed from wrk/report.lua.
import { join } from 'node:path';
import { run } from './proc.ts';

export interface WrkResult {
  readonly rps: number;
  readonly bytesPerSec: number;
  readonly requests: number;
  readonly errors: number;
  readonly latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

export interface WrkOpts {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  readonly cpus: string;
  /** Extra request headers, "Name: value". */
  readonly headers?: readonly string[];
}

export async function wrk(benchDir: string, o: WrkOpts): Promise<WrkResult> {
  const args = ['-c', o.cpus, 'wrk', `-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', join(benchDir, 'wrk', 'report.lua'), ...(o.headers ?? []).flatMap((h) => ['-H', h]), o.url];
  const r = await run('taskset', args, { timeoutMs: (o.seconds + 15) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (r.code !== 0 || !line) throw new Error(`wrk failed (code ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim() || r.stdout.trim()}`);
  const j = JSON.parse(line.slice(9));
  const secs = j.duration_us / 1e6;
  const e = j.errors;
  return {
    rps: j.requests / secs,
    bytesPerSec: j.bytes / secs,
    requests: j.requests,
    errors: e.connect + e.read + e.write + e.status + e.timeout,
    latencyUs: j.latency_us,
  };
}

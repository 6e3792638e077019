// Process plumbing: every child the harness starts is tracked here and stopped by PID,
// on normal exit, on error and on SIGINT/SIGTERM.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

export interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Last lines of stdout+stderr, for error messages. */
  readonly output: () => string;
  readonly exited: () => boolean;
}

const live = new Map<number, Started>();
/** Every command line the harness ran, in order, for docs/benchmarks.md. */
export const commandLog: string[] = [];

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[], env?: Record<string, string>): string {
  const envPart = env ? Object.entries(env).map(([k, v]) => `${k}=${quote(v)} `).join('') : '';
  return envPart + [cmd, ...args].map(quote).join(' ');
}

export function logCommand(line: string): void {
  if (!commandLog.includes(line)) commandLog.push(line);
}

/** Starts a long-running process; it is killed by stopAll() if not stopped before. */
export function start(name: string, cmd: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Started {
  logCommand(commandLine(cmd, args, opts.env));
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  };
  const child = spawn(cmd, args, spawnOpts);
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${cmd}`);
  let tail = '';
  let done = false;
  const keep = (b: Buffer): void => {
    tail = (tail + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A spawn error (ENOENT) must not crash the harness; it shows up as an early exit.
  child.on('error', (e) => {
    tail += `\n${e.message}`;
    done = true;
  });
  child.on('exit', () => {
    done = true;
    live.delete(child.pid as number);
  });
  const s: Started = { name, child, pid: child.pid, output: () => tail, exited: () => done };
  live.set(child.pid, s);
  return s;
}

/** SIGTERM, then SIGKILL after graceMs. */
export async function stop(s: Started, graceMs = 3000): Promise<void> {
  if (s.exited()) return;
  const gone = new Promise<void>((res) => s.child.once('exit', () => res()));
  try {
    process.kill(s.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await gone;
  clearTimeout(t);
  live.delete(s.pid);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((s) => stop(s, 2000)));
}

/** Synchronous last resort for 'exit' handlers, where nothing async runs. */
export function killAllSync(): void {
  for (const s of live.values()) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
}

/** Runs a harness's main: every child is killed on exit, on SIGINT and when main throws. */
export function runHarness(main: () => Promise<void>): void {
  process.on('exit', killAllSync);
  process.on('SIGINT', () => {
    killAllSync();
    process.exit(130);
  });
  main().catch(async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  });
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion, killed after timeoutMs so no run is unbounded. */
export function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; log?: boolean } = {}): Promise<RunResult> {
  if (opts.log !== false) logCommand(commandLine(cmd, args, opts.env));
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const pid = child.pid;
    const entry: Started | undefined = pid === undefined ? undefined : { name: cmd, child, pid, output: () => stderr, exited: () => child.exitCode !== null };
    if (entry) live.set(entry.pid, entry);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const finish = (code: number | null): void => {
      clearTimeout(t);
      if (pid !== undefined) live.delete(pid);
      resolve({ code, stdout, stderr, timedOut });
    };
    child.on('error', (e) => {
      stderr += e.message;
      finish(127);
    });
    child.on('close', (code) => finish(code));
  });
}

/** Every port handed out, so the report can print commands with placeholders instead. */
export const portsUsed: number[] = [];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      portsUsed.push(port);
      srv.close(() => resolve(port));
    });
  });
}

/** One GET without keep-alive; resolves to the status code, or 0 on a connection error. */
export function probe(url: string, timeoutMs = 1000, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/**
 * Polls until the URL answers 200 (sent with `headers`: an auth row's credentials); returns ms
 * waited. Throws with the process output on timeout or exit.
 */
export async function waitFor200(url: string, s: Started | undefined, timeoutMs: number, t0 = performance.now(), headers: Record<string, string> = {}): Promise<number> {
  for (;;) {
    if ((await probe(url, 500, headers)) === 200) return performance.now() - t0;
    if (s?.exited()) throw new Error(`${s.name} exited before serving:\n${s.output().trim().slice(-1500)}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`no 200 from ${url} within ${timeoutMs} ms${s ? `; output:\n${s.output().trim().slice(-1500)}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** VmRSS in bytes of a process and all its descendants (nginx master + workers). */
export function treeRss(pid: number): number {
  let total = 0;
  for (const p of descendants(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {}
  }
  return total;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU ticks: busy on the whole machine, and used by the harness and everything it started. */
export interface CpuSnapshot {
  readonly at: number;
  readonly busy: number;
  readonly ours: number;
}

function ticksOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime stime cutime cstime (fields 14-17); cutime/cstime hold reaped children such as
    // a finished wrk, so work done by processes that already exited still counts as ours.
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {}
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop() as number;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

export function cpuSnapshot(): CpuSnapshot {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user + nice + system + steal. irq/softirq are left out: loopback networking runs there
  // and is not charged to any process, so it would read as someone else's load.
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[7] ?? 0);
  return { at: performance.now(), busy, ours: descendants(process.pid).reduce((a, p) => a + ticksOf(p), 0) };
}

/** Cores' worth of CPU used by processes the harness did not start, between two snapshots. */
export function otherLoad(a: CpuSnapshot, b: CpuSnapshot): number {
  const secs = (b.at - a.at) / 1000;
  // USER_HZ is 100 on Linux.
  return secs > 0 ? Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / 100 / secs) : 0;
}

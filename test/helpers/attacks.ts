/**
 * Slow-client attacks and a normal load beside them, shared by test/edge/availability.test.ts
 * and bench/availability.ts. slowhttptest (a real tool operators run) drives slowloris,
 * slow body and slow read; a small client drives pipelining, which slowhttptest lacks.
 * Every attack is bounded in time and stopped by PID / socket at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

export type AttackKind = 'slowloris' | 'slow-body' | 'slow-read' | 'pipelining';
export const ATTACKS: readonly AttackKind[] = ['slowloris', 'slow-body', 'slow-read', 'pipelining'];

export interface Attack {
  readonly kind: AttackKind;
  /** What the attack does, for reports. */
  readonly description: string;
  stop(): Promise<void>;
}

/** True if slowhttptest can be run. */
export function slowhttptestAvailable(): boolean {
  const r = spawnSync('slowhttptest', ['-h'], { stdio: 'ignore' });
  return r.error === undefined;
}

export interface AttackOptions {
  /** Connections (slowhttptest) or pipelined requests in all (pipelining). */
  readonly size: number;
  /** Upper bound of the attack's own run time. */
  readonly seconds: number;
  /** Path of a ~1 MiB response (slow read, pipelining) and of a small one (the others). */
  readonly bigPath: string;
  readonly smallPath: string;
}

/**
 * Starts one attack on http://host:port. slowhttptest connects from 127.0.0.1 (it cannot
 * pick its source address); callers run the normal load from another loopback address.
 */
export function startAttack(kind: AttackKind, host: string, port: number, o: AttackOptions): Attack {
  const base = `http://${host}:${port}`;
  const common = ['-c', String(o.size), '-r', '200', '-l', String(o.seconds), '-p', '3'];
  switch (kind) {
    case 'slowloris':
      return slowhttptest(kind, `${o.size} connections send one header line a second`, ['-H', ...common, '-i', '1', '-x', '24', '-u', `${base}${o.smallPath}`]);
    case 'slow-body':
      return slowhttptest(kind, `${o.size} connections POST 8 KiB bodies at ~24 bytes a second`, ['-B', ...common, '-i', '1', '-x', '24', '-s', '8192', '-u', `${base}${o.smallPath}`]);
    case 'slow-read':
      return slowhttptest(kind, `${o.size} connections GET 1 MiB and read 32 bytes a second through a 512–1024-byte window`, ['-X', ...common, '-w', '512', '-y', '1024', '-n', '1', '-z', '32', '-k', '1', '-u', `${base}${o.bigPath}`]);
    case 'pipelining':
      return pipeliner(host, port, o.bigPath, o.size);
  }
}

function slowhttptest(kind: AttackKind, description: string, args: string[]): Attack {
  const child: ChildProcess = spawn('slowhttptest', args, { stdio: 'ignore' });
  child.on('error', () => {});
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    kind,
    description,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
        const t = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** Clients that pipeline `total` GETs of `path` (100 per connection) and never read a byte. */
function pipeliner(host: string, port: number, path: string, total: number): Attack {
  const perConnection = 100;
  const sockets: net.Socket[] = [];
  for (let sent = 0; sent < total; sent += perConnection) {
    const n = Math.min(perConnection, total - sent);
    const s = net.connect(port, host);
    s.on('error', () => {});
    s.pause();
    let out = '';
    for (let i = 0; i < n; i++) out += `GET ${path}?i=${sent + i} HTTP/1.1\r\nHost: weir.test\r\n\r\n`;
    s.write(out);
    sockets.push(s);
  }
  return {
    kind: 'pipelining',
    description: `${sockets.length} connections pipeline ${total} GETs of 1 MiB in all and never read`,
    stop: async () => {
      for (const s of sockets) s.destroy();
    },
  };
}

const ORIGIN_SOURCE = `
const http = require('node:http');
const big = Buffer.alloc(1024 * 1024, 0x62);
const small = Buffer.alloc(100, 0x61);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = req.url.startsWith('/big') ? big : small;
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/**
 * An origin in its own process (so its work does not share the proxy's thread): paths under
 * /big answer 1 MiB, others 100 bytes.
 */
export async function startOriginProcess(): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', ORIGIN_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`origin exited with ${code}`)));
  });
  return {
    port,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export interface NormalResult {
  readonly sent: number;
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * A normal client: `rate` requests per second for `ms`, from `localAddress`, over a small
 * keep-alive pool; a request that fails or takes longer than `timeoutMs` does not count as ok.
 */
export async function normalLoad(url: string, o: { rate: number; ms: number; localAddress: string; timeoutMs: number }): Promise<NormalResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, localAddress: o.localAddress });
  const latencies: number[] = [];
  let ok = 0;
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = http.get(url, { agent, headers: { host: 'weir.test' }, timeout: o.timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => {
          const ms = performance.now() - t0;
          latencies.push(ms);
          if (res.statusCode === 200 && ms <= o.timeoutMs) ok++;
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        latencies.push(o.timeoutMs);
        resolve();
      });
    });
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.round((o.rate * o.ms) / 1000);
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      // Fixed schedule: catch up if a tick came late, so the offered rate stays `rate`.
      const due = Math.min(total, Math.floor(((performance.now() - started) * o.rate) / 1000) + 1);
      while (sent < due) {
        sent++;
        pending.push(one());
      }
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(1, 1000 / o.rate / 2));
    };
    tick();
  });
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => +(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(1);
  return { sent, ok, p50: q(0.5), p99: q(0.99) };
}

/** Runs one attack beside the normal load: ramp-up, then `normalMs` of normal traffic. */
export async function underAttack(kind: AttackKind, target: { host: string; port: number }, o: AttackOptions & { rampMs: number; normalMs: number; rate: number; normalPath: string }): Promise<NormalResult & { attack: string }> {
  const attack = startAttack(kind, target.host, target.port, o);
  try {
    await new Promise((r) => setTimeout(r, o.rampMs));
    const res = await normalLoad(`http://${target.host}:${target.port}${o.normalPath}`, { rate: o.rate, ms: o.normalMs, localAddress: '127.0.0.2', timeoutMs: 2000 });
    return { ...res, attack: attack.description };
  } finally {
    await attack.stop();
  }
}

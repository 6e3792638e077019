/**
 * Real redis-server and memcached for store tests: started on free 127.0.0.1 ports and
 * stopped by PID (never by name). `available()` lets a suite skip where they are not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

export interface ServerProc {
  readonly port: number;
  readonly url: string;
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

export function available(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port (bounded: ~5 s). */
async function waitForPort(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function start(cmd: string, args: string[], port: number, url: string): Promise<ServerProc> {
  const proc = spawn(cmd, args, { stdio: 'ignore' });
  await waitForPort(port, proc);
  return {
    port,
    url,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        process.kill(proc.pid!, 'SIGKILL');
      }),
  };
}

/** redis-server without persistence on `port` (a free one by default). */
export async function startRedis(port?: number): Promise<ServerProc> {
  const p = port ?? (await freePort());
  return start('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], p, `redis://127.0.0.1:${p}`);
}

export async function startMemcached(port?: number): Promise<ServerProc> {
  const p = port ?? (await freePort());
  return start('memcached', ['-p', String(p), '-l', '127.0.0.1', '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])], p, `memcache://127.0.0.1:${p}`);
}

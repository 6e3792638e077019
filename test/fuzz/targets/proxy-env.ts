/**
 * The environment of the wire fuzzers: `weir run` as a child process on one h2c listener
 * (HTTP/1.1 and HTTP/2 prior knowledge) in front of an echo origin, with a headers filter and
 * a WebSocket route, and short header/request timeouts so a half-sent request ends quickly.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { rssOf } from '../../../bench/lib/endurance.ts';
import { startOrigin } from '../../helpers/origin.ts';
import { runWeir } from '../../helpers/process.ts';
import { freePort } from '../../helpers/servers.ts';
import { tmpDir } from '../../helpers/weir.ts';
import type { FuzzEnv } from '../target.ts';

export interface ProxyEnv extends FuzzEnv {
  readonly port: number;
  /** Weir's output since the last call (checked for internal errors after every case). */
  newOutput(): string;
}

/** The proxy's old-space cap under fuzzing (MB): far above what it needs, far below unbounded. */
export const HEAP_CAP_MB = 160;

/** Log lines that mean Weir lost track of an error instead of answering it. */
export const INTERNAL = /WEIR_ERR_INTERNAL|unhandled|uncaught/i;

export async function startProxyEnv(): Promise<ProxyEnv> {
  const origin = await startOrigin();
  const port = await freePort();
  const dir = tmpDir('weir-fuzz-');
  const file = join(dir, 'weir.kdl');
  writeFileSync(file, `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; protocol "h2c"; } }
filters { filter "hdrs" { type "headers"; request { set "x-fuzz" "1"; }; response { add "x-via" "weir"; } } }
routes {
    route "status" { priority 10; matches { path "/_/status"; }; builtin-handler "status"; }
    route "ws" { priority 5; matches { path-prefix "/ws"; }; upstream "origin"; policies { websocket #true; } }
    route "all" { matches { path-prefix "/"; }; upstream "origin"; filters "hdrs"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}"; } }
limits { header-timeout-ms 2000; request-timeout-ms 4000; }
observability { logging { level "info"; access-log #false; } }
`);
  // A capped old space: memory that grows without bound ends the process, which alive() reports.
  const p = runWeir(['run', '-c', file], { env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}` } });
  try {
    await p.waitFor(/weir started/, 60_000);
  } catch (e) {
    // A proxy that never started must not outlive the fuzzer.
    p.kill();
    await origin.close();
    throw e;
  }
  let seen = 0;
  return {
    port,
    newOutput: () => {
      const out = p.output();
      const fresh = out.slice(seen);
      seen = out.length;
      return fresh;
    },
    alive: async () => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`weir exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output().slice(-3000)}`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/alive', agent: false, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('timeout', () => req.destroy(new Error('a valid request had no answer within 10 s')));
        req.on('error', (e) => void statusOf(port).then((s) => reject(new Error(`${e.message}; status: ${s}`))));
      });
      if (status !== 200) throw new Error(`a valid request got ${status}; status: ${await statusOf(port)}`);
    },
    memory: () => rssOf(p.child.pid!),
    close: async () => {
      p.kill();
      await p.exited(5000);
      await origin.close();
    },
  };
}

/** Weir's status route, for failure messages. */
async function statusOf(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/_/status`, { signal: AbortSignal.timeout(5000) })).text()).slice(0, 1500);
  } catch (e) {
    return `unavailable (${(e as Error).message})`;
  }
}

/**
 * select-upstream's target stats over 2 proxy threads: in-flight counts and the latency EWMA
 * live in shared memory, so a balancer in one thread sees what the other thread sent. Each
 * test sends requests one after another over 16 keep-alive connections (the kernel spreads
 * them over both threads); with per-thread stats each thread would try the held or slow
 * target once itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startCluster } from '../../host/src/cluster/supervisor.ts';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { freePort } from '../helpers/servers.ts';
import { quiet, tmpDir } from '../helpers/weir.ts';

interface Origin {
  port: number;
  hits: number;
  close(): Promise<void>;
}

/** An origin that answers after `holdMs` (never, for -1), counting the requests it got. */
async function origin(name: string, holdMs: number): Promise<Origin> {
  const held: http.ServerResponse[] = [];
  const o = { port: 0, hits: 0, close: async () => {} };
  const server = http.createServer((_req, res) => {
    o.hits++;
    if (holdMs < 0) return void held.push(res);
    setTimeout(() => res.writeHead(200).end(name), holdMs);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  o.port = (server.address() as AddressInfo).port;
  o.close = async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return o;
}

async function run(algorithm: string, slow: Origin, fast: Origin, body: (send: (i: number) => Promise<number | undefined>) => Promise<void>): Promise<void> {
  await buildFirstPartyPlugins();
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, `schema-version "1.0"
system { worker-threads 2; graceful-shutdown-timeout-secs 1; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }
upstreams { upstream "u" { target "127.0.0.1:${slow.port}"; target "127.0.0.1:${fast.port}"; load-balancing "${algorithm}"; } }
observability { logging { level "silent"; access-log #false; } }
`);
  const cluster = await startCluster({ configPath: file, logger: quiet, watch: false });
  const agents = Array.from({ length: 16 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  // Resolves with the status, or undefined when no answer came within 300 ms (a held request).
  const send = (i: number): Promise<number | undefined> => new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 300);
    http.get({ host: '127.0.0.1', port, path: `/${i}`, agent: agents[i % agents.length] }, (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve(res.statusCode);
      });
    }).on('error', () => resolve(undefined));
  });
  try {
    await body(send);
  } finally {
    for (const a of agents) a.destroy();
    await cluster.close();
    await slow.close();
    await fast.close();
  }
}

test('least_connections over 2 threads: a request held by one target counts in both threads, so it gets no second one', async () => {
  const held = await origin('held', -1);
  const fast = await origin('fast', 0);
  await run('least_connections', held, fast, async (send) => {
    let answered = 0;
    for (let i = 0; i < 16; i++) if ((await send(i)) === 200) answered++;
    // The first request that meets a tie may go to the held target; after that it has one in
    // flight in every thread's view, and every later request goes to the other.
    assert.equal(held.hits, 1, `held target got ${held.hits} requests, fast ${fast.hits}`);
    assert.equal(answered, 15);
  });
});

test('least_latency over 2 threads: one slow answer is seen by both threads, so the slow target gets no second request', async () => {
  const slow = await origin('slow', 80);
  const fast = await origin('fast', 0);
  await run('least_latency', slow, fast, async (send) => {
    for (let i = 0; i < 24; i++) assert.equal(await send(i), 200);
    assert.equal(slow.hits, 1, `slow target got ${slow.hits} requests, fast ${fast.hits}`);
  });
});

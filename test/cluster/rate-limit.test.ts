/**
 * The first-party rate-limit filter through the real proxy on 2 threads: the bucket lives
 * in shared memory, so a 100 req/s burst 10 limit holds across both threads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../../host/src/cluster/supervisor.ts';
import { startOrigin } from '../helpers/origin.ts';
import { freePort } from '../helpers/servers.ts';
import { quiet, tmpDir } from '../helpers/weir.ts';

const WASM = fileURLToPath(new URL('../../plugins/rate-limit/build/rate-limit.wasm', import.meta.url));

test('rate-limit 100/s burst 10 over 2 proxy threads admits ≤ burst + rate × time', { skip: existsSync(WASM) ? false : 'rate-limit plugin not built' }, async () => {
  const origin = await startOrigin((_req, res) => res.writeHead(200).end('ok'));
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, `schema-version "1.0"
system { worker-threads 2; graceful-shutdown-timeout-secs 2; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
filters { filter "rl" { type "rate-limit"; max-rps 100; burst 10; key "route"; } }
routes {
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "api" { matches { path-prefix "/"; }; upstream "origin"; filters "rl"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}"; } }
observability { logging { level "silent"; access-log #false; } }
`);
  const cluster = await startCluster({ configPath: file, logger: quiet, watch: false });
  // 16 keep-alive connections: the kernel spreads connections over the two threads.
  const agents = Array.from({ length: 16 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const get = (agent: http.Agent, path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject);
    });
  try {
    // Open every connection on a path outside the limit first (the metrics route).
    await Promise.all(agents.map((a) => get(a, '/_/metrics')));
    const counts = new Map<number, number>();
    const start = Date.now();
    await Promise.all(agents.map(async (a) => {
      for (let i = 0; i < 100_000 && Date.now() - start < 1000; i++) {
        const s = await get(a, '/api');
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }));
    const span = Date.now() - start;
    const ok = counts.get(200) ?? 0;
    const limited = counts.get(429) ?? 0;
    console.log(`rate-limit through 2 proxy threads: ${ok} admitted, ${limited} refused over ${span} ms (bound ${Math.floor(10 + span / 10)})`);
    assert.deepEqual([...counts.keys()].filter((s) => s !== 200 && s !== 429), []);
    assert.ok(limited > 0, 'the flood went over the limit');
    assert.ok(ok <= Math.floor(10 + span / 10), `admitted ${ok} in ${span} ms`);
    const m = await get(agents[0]!, '/_/metrics').then(() => cluster.metricsText());
    for (const t of ['0', '1']) assert.match(m, new RegExp(`weir_requests_total\\{[^}]*route="api"[^}]*thread="${t}"`), `thread ${t} served the flood`);
  } finally {
    for (const a of agents) a.destroy();
    await cluster.close();
    await origin.close();
  }
});

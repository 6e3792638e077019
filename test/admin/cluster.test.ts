// Admin changes under load through the real proxy process with worker-threads 2: targets
// added, drained and removed while clients send requests, with no failed request, and every
// thread switching together (the change goes through the reload transaction).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { runWeir } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { tmpDir } from '../helpers/weir.ts';

const TOKEN = 'cluster-token';

test('worker-threads 2: 0 failed requests while targets are added, drained and removed through the admin API', async (t) => {
  const os = await Promise.all([0, 1, 2].map((i) => startOrigin((_q, res) => res.writeHead(200).end(`o${i}`))));
  const [port, adminPort] = [await freePort(), await freePort()];
  const dir = tmpDir('weir-admin-cluster-');
  const file = join(dir, 'weir.kdl');
  const addr = (i: number): string => `127.0.0.1:${os[i]!.port}`;
  writeFileSync(file, `system { worker-threads 2; graceful-shutdown-timeout-secs 2; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes { route "default" { matches { path-prefix "/" }; upstream "origin"; } }
upstreams {
    upstream "origin" {
        target "${addr(0)}"
    }
}
observability { logging { access-log #false; audit-log "${join(dir, 'audit.log')}"; } }
admin-api {
    address "127.0.0.1:${adminPort}"
    auth { type "bearer"; token "${TOKEN}"; }
}
`);
  const proc = runWeir(['run', '--config', file]);
  const agent = new Agent({ connections: 16 });
  t.after(async () => {
    proc.child.kill('SIGTERM');
    await proc.exited(15_000);
    proc.kill();
    await agent.close();
    for (const o of os) await o.close();
  });
  await proc.waitFor(/admin API listening/, 60_000);
  await proc.waitFor(/proxy threads started/, 60_000);
  const admin = async (method: string, path: string, body?: unknown): Promise<any> => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await r.body.json();
    assert.ok(r.statusCode < 300, `${method} ${path}: ${r.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  assert.equal((await admin('GET', '/api/v1/status')).threads, 2);

  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const served = new Map<string, number>();
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await request(`http://127.0.0.1:${port}/x`, { dispatcher: agent });
        const text = await r.body.text();
        if (r.statusCode === 200) {
          ok++;
          served.set(text, (served.get(text) ?? 0) + 1);
        } else failures.push(`${r.statusCode} ${text.slice(0, 200)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const clients = Array.from({ length: 8 }, () => client());
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
  try {
    await settle();
    const steps: Array<[string, string, unknown]> = [
      ['PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: addr(0), weight: 1 }, { address: addr(1), weight: 1 }] }],
      ['PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: addr(0), weight: 1 }, { address: addr(1), weight: 1 }, { address: addr(2), weight: 2 }] }],
      ['POST', '/api/v1/upstreams/origin/drain', { target: addr(0), 'timeout-ms': 10_000 }],
      ['PUT', '/api/v1/upstreams/origin/targets', { targets: [{ address: addr(1), weight: 1 }, { address: addr(2), weight: 2 }] }],
      ['POST', '/api/v1/upstreams', { id: 'spare', targets: [{ address: addr(0) }] }],
      ['DELETE', '/api/v1/upstreams/spare', undefined],
      ['POST', '/api/v1/upstreams/origin/drain', { target: addr(1), 'timeout-ms': 10_000 }],
      ['POST', '/api/v1/upstreams/origin/drain', { target: addr(1), drain: false }],
    ];
    let o0AfterDrain = -1;
    for (const [method, path, body] of steps) {
      const out = await admin(method, path, body);
      if (path.endsWith('/drain') && (body as { target: string }).target === addr(0)) {
        assert.equal(out.drained, true, 'drained on both threads');
        o0AfterDrain = os[0]!.seen.length;
      }
      await settle();
    }
    assert.equal(os[0]!.seen.length, o0AfterDrain, 'no request reached the drained, then removed, target');
    const status = await admin('GET', '/api/v1/status');
    assert.equal(status.ready, true, 'both threads run the same generation');
    const ups = await admin('GET', '/api/v1/upstreams');
    assert.deepEqual(ups.upstreams.map((u: { id: string }) => u.id), ['origin']);
    assert.deepEqual(ups.upstreams[0].targets.map((x: { address: string; weight: number }) => [x.address, x.weight]), [[addr(1), 1], [addr(2), 2]]);
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  t.diagnostic(`${ok} requests, ${failures.length} failed, served ${JSON.stringify([...served])}`);
  assert.deepEqual(failures, [], `${failures.length} failed of ${ok + failures.length}`);
  // The supervisor audits each call and each reload once, not once per thread.
  const audit = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const changes = audit.filter((l) => l['event'] === 'admin' && l['method'] !== 'GET');
  assert.equal(changes.length, 8, JSON.stringify(changes));
  assert.ok(changes.every((l) => l['status'] === 200 || l['status'] === 201));
  const reloads = audit.filter((l) => l['event'] === 'reload');
  assert.deepEqual(reloads.map((l) => [l['trigger'], l['ok']]), Array.from({ length: 5 }, () => ['admin-api', true]), 'five config changes, one line each');
  assert.ok(ok > 100, `${ok} requests`);
  assert.ok((served.get('o1') ?? 0) > 0 && (served.get('o2') ?? 0) > 0, JSON.stringify([...served]));
});

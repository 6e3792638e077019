// `weir health` as a real child process against a running proxy: well (exit 0), an unhealthy
// target (exit 1), unreachable or a refused token (exit 2); by admin URL, by --config and by
// a status route's URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin } from '../helpers/origin.ts';
import { runWeir } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { TOKEN, eventually, startAdmin } from './helpers.ts';

async function health(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  const p = runWeir(['health', ...args], { env: { ADMIN_API_TOKEN: '', ...env } });
  const code = await p.exited(60_000);
  p.kill();
  return { code, out: p.output() };
}

test('weir health: exit 0 when ready with no unhealthy target, 1 with one, 2 when unreachable or the token is refused', async (t) => {
  const o = await startOrigin();
  const closed = await freePort();
  const a = await startAdmin([o.port], {
    upstreams: `    upstream "dead" {\n        target "127.0.0.1:${closed}"\n        health-check { type "tcp"; interval-secs 0.1; timeout-secs 0.5; unhealthy-threshold 1; }\n    }`,
    routes: '    route "status" { priority 5; matches { path "/_status" }; builtin-handler "status"; }',
  });
  t.after(async () => {
    await a.close();
    await o.close();
  });
  await eventually(async () => (await a.call('GET', '/api/v1/status')).json.unhealthyTargets.length === 1, 'the dead target to be found unhealthy');
  const bad = await health([a.base, '--token', TOKEN]);
  assert.equal(bad.code, 1, bad.out);
  assert.match(bad.out, /NOT WELL/);
  assert.match(bad.out, new RegExp(`unhealthy targets: dead/127\\.0\\.0\\.1:${closed}`));
  assert.match(bad.out, /config generation: 1/);
  // The same through a status route, no token needed.
  const route = await health([`${a.proxy}/_status`, '--json']);
  assert.equal(route.code, 1, route.out);
  const report = JSON.parse(route.out.trim().split('\n').at(-1)!);
  assert.deepEqual([report.well, report.ready, report.generation, report.unhealthy], [false, true, 1, [{ upstream: 'dead', address: `127.0.0.1:${closed}` }]]);

  // Without the dead upstream the proxy is well; --config reads the address and token from the file.
  const del = await a.call('DELETE', '/api/v1/upstreams/dead');
  assert.equal(del.status, 200, JSON.stringify(del.json));
  const well = await health([a.base], { ADMIN_API_TOKEN: TOKEN });
  assert.equal(well.code, 0, well.out);
  assert.match(well.out, /^well: /m);
  assert.match(well.out, /config generation: 2/);

  const refused = await health([a.base, '--token', 'wrong']);
  assert.equal(refused.code, 2, refused.out);
  assert.match(refused.out, /token was refused/);
  const gone = await health([`http://127.0.0.1:${await freePort()}`, '--timeout', '3000']);
  assert.equal(gone.code, 2, gone.out);
});

test('weir health --config: asks the admin-api of that config file', async (t) => {
  const o = await startOrigin();
  const a = await startAdmin([o.port]);
  t.after(async () => {
    await a.close();
    await o.close();
  });
  // The file names port 0; point a copy at the bound port.
  const { readFileSync, writeFileSync } = await import('node:fs');
  const copy = `${a.dir}/bound.kdl`;
  writeFileSync(copy, readFileSync(a.file, 'utf8').replace('address "127.0.0.1:0"\n    auth', `address "127.0.0.1:${new URL(a.base).port}"\n    auth`).replace(/listener "main" \{ address "127\.0\.0\.1:0"; \}/, `listener "main" { address "127.0.0.1:${await freePort()}"; }`));
  const r = await health(['--config', copy]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^well: http:\/\/127\.0\.0\.1:\d+\/api\/v1\/status/m);
});

test('weir health --config against an mTLS admin listener: needs --cert/--key (exit 2 without), well with a client certificate the CA signed', async (t) => {
  const { createPki } = await import('../helpers/tls.ts');
  const { startWeirWith } = await import('../helpers/weir.ts');
  const { writeFileSync } = await import('node:fs');
  const pki = createPki();
  const server = pki.server('admin', ['127.0.0.1']);
  const ops = pki.client('ops', 'ops-admin');
  const o = await startOrigin();
  const adminPort = await freePort();
  const text = (port: number): string => `listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
admin-api {
    address "127.0.0.1:${adminPort}"
    tls { cert-file "${server.cert}"; key-file "${server.key}"; ca-file "${pki.caCert}"; }
    auth { type "mtls"; }
}
`;
  const w = await startWeirWith(text(0));
  t.after(async () => {
    await w.weir.close();
    await o.close();
  });
  const file = `${w.file}.bound.kdl`;
  writeFileSync(file, text(await freePort()));
  const without = await health(['--config', file]);
  assert.equal(without.code, 2, without.out);
  assert.match(without.out, /--cert FILE and --key FILE/);
  const ok = await health(['--config', file, '--cert', ops.cert, '--key', ops.key]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, new RegExp(`^well: https://127\\.0\\.0\\.1:${adminPort}/api/v1/status`, 'm'));
});

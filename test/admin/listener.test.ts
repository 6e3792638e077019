// The admin listener's own keys: loopback unless TLS or allow-remote, HTTPS, mTLS with
// read-only subjects, enabled #false, and the constraints between the auth keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { loadConfigText } from '../../host/src/config/load.ts';
import { createPki } from '../helpers/tls.ts';
import { startWeirWith } from '../helpers/weir.ts';

const BASE = `listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "h" { builtin-handler "health"; } }
`;

async function diags(text: string): Promise<Array<[string, number | undefined, string]>> {
  const r = await loadConfigText(text, 'weir.kdl', { skipFileChecks: true });
  return r.ok ? [] : r.diagnostics.map((d) => [d.code, d.loc?.line, d.message]);
}

test('admin-api constraints: a non-loopback address needs tls or allow-remote; bearer needs a token; each auth type refuses the other\'s keys', async () => {
  const remote = await diags(`${BASE}admin-api {\n    address "0.0.0.0:9901"\n    auth { type "bearer"; token "t"; }\n}\n`);
  assert.equal(remote.length, 1);
  assert.deepEqual(remote[0]!.slice(0, 2), ['WEIR_ERR_CONFIG_CONSTRAINT', 4]);
  assert.match(remote[0]![2], /not loopback and the admin API has no `tls`/);
  assert.deepEqual(await diags(`${BASE}admin-api {\n    address "0.0.0.0:9901"\n    allow-remote #true\n    auth { type "bearer"; token "t"; }\n}\n`), []);
  const noToken = await diags(`${BASE}admin-api {\n    address "127.0.0.1:9901"\n    auth { type "bearer"; }\n}\n`);
  assert.match(noToken[0]![2], /needs a `token`/);
  const mtlsNoCa = await diags(`${BASE}admin-api {\n    address "127.0.0.1:9901"\n    auth { type "mtls"; token "x"; }\n}\n`);
  assert.deepEqual(mtlsNoCa.map((d) => d[2].slice(0, 40)), ['admin-api `auth type "mtls"` needs `tls {', '`token` has no effect with `type "mtls"`'].map((s) => s.slice(0, 40)));
  const roSubjects = await diags(`${BASE}admin-api {\n    address "127.0.0.1:9901"\n    auth { type "bearer"; token "t"; read-only-subjects "ops"; }\n}\n`);
  assert.match(roSubjects[0]![2], /`read-only-subjects` has no effect with `type "bearer"`/);
  const noAuth = await diags(`${BASE}admin-api {\n    address "127.0.0.1:9901"\n}\n`);
  assert.equal(noAuth[0]![0], 'WEIR_ERR_CONFIG_MISSING');
  const samePort = await diags(`listeners { listener "main" { address "127.0.0.1:9911"; } }\nroutes { route "h" { builtin-handler "health"; } }\nadmin-api { address "127.0.0.1:9911"; auth { type "bearer"; token "t"; } }\n`);
  assert.match(samePort[0]![2], /also the address of listener `main`/);
});

test('admin-api allow-remote serves a non-loopback address; enabled #false serves nothing', async (t) => {
  const remote = await startWeirWith(`${BASE}admin-api { address "0.0.0.0:0"; allow-remote #true; auth { type "bearer"; token "t"; } }\n`);
  t.after(() => remote.weir.close());
  const a = remote.weir.adminAddress()!;
  assert.equal(a.host, '0.0.0.0');
  assert.equal((await fetch(`http://127.0.0.1:${a.port}/api/v1/status`, { headers: { authorization: 'Bearer t' } })).status, 200);
  const off = await startWeirWith(`${BASE}admin-api { enabled #false; address "127.0.0.1:0"; auth { type "bearer"; token "t"; } }\n`);
  t.after(() => off.weir.close());
  assert.equal(off.weir.adminAddress(), undefined);
});

function get(port: number, path: string, opts: https.RequestOptions): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, ...opts }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(b) }));
    });
    req.on('error', reject);
  });
}

test('admin-api tls serves HTTPS with a bearer token; auth type "mtls" takes a client certificate, read-only-subjects may only read', async (t) => {
  const pki = createPki();
  const server = pki.server('admin', ['127.0.0.1']);
  const ops = pki.client('ops', 'ops-admin');
  const viewer = pki.client('viewer', 'dashboard');
  const bearer = await startWeirWith(`${BASE}admin-api {\n    address "127.0.0.1:0"\n    tls { cert-file "${server.cert}"; key-file "${server.key}"; }\n    auth { type "bearer"; token "t"; }\n}\n`);
  t.after(() => bearer.weir.close());
  const bp = bearer.weir.adminAddress()!.port;
  assert.equal((await get(bp, '/api/v1/status', { ca: pki.caPem, headers: { authorization: 'Bearer t' } })).status, 200);
  assert.equal((await get(bp, '/api/v1/status', { ca: pki.caPem })).status, 401);

  const mtls = await startWeirWith(`${BASE}admin-api {\n    address "127.0.0.1:0"\n    tls { cert-file "${server.cert}"; key-file "${server.key}"; ca-file "${pki.caCert}"; }\n    auth { type "mtls"; read-only-subjects "dashboard"; }\n}\n`);
  t.after(() => mtls.weir.close());
  const mp = mtls.weir.adminAddress()!.port;
  const { readFileSync } = await import('node:fs');
  const cert = (c: { cert: string; key: string }): https.RequestOptions => ({ ca: pki.caPem, cert: readFileSync(c.cert), key: readFileSync(c.key) });
  const none = await get(mp, '/api/v1/status', { ca: pki.caPem });
  assert.deepEqual([none.status, none.body.error.code], [401, 'WEIR_ERR_ADMIN_UNAUTHORIZED']);
  assert.equal((await get(mp, '/api/v1/status', cert(ops))).status, 200);
  assert.equal((await get(mp, '/api/v1/routes', cert(viewer))).status, 200);
  const write = await new Promise<number>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: mp, path: '/api/v1/config/reload', method: 'POST', ...cert(viewer) }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(write, 403, 'a read-only subject may not write');
});

test('a reload that moves the admin listener answers the call that asked for it, then serves on the new address', async (t) => {
  const { freePort } = await import('../helpers/servers.ts');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const w = await startWeirWith(`${BASE}admin-api {\n    address "127.0.0.1:0"\n    auth { type "bearer"; token "t"; }\n}\n`);
  t.after(() => w.weir.close());
  const old = w.weir.adminAddress()!.port;
  const next = await freePort();
  writeFileSync(w.file, readFileSync(w.file, 'utf8').replace('address "127.0.0.1:0"\n    auth', `address "127.0.0.1:${next}"\n    auth`));
  const r = await fetch(`http://127.0.0.1:${old}/api/v1/config/reload`, { method: 'POST', headers: { authorization: 'Bearer t' } });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { applied: boolean }).applied, true);
  assert.equal(w.weir.adminAddress()!.port, next);
  assert.equal((await fetch(`http://127.0.0.1:${next}/api/v1/status`, { headers: { authorization: 'Bearer t' } })).status, 200);
});

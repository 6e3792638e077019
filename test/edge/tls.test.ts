/**
 * Downstream TLS: SNI (exact and wildcard), ALPN h2 + http/1.1 on one listener, mTLS with
 * the client subject visible to filters, min-version, and certificate hot reload (SIGHUP,
 * file change, invalid certificate). Certificates are generated at run time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import https from 'node:https';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Agent, request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import { createPki, type Pki, type CertFiles } from '../helpers/tls.ts';
import type { Weir } from '../../host/src/weir.ts';
import type { Phase } from '../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../host/src/pipeline/phases.ts';

let pki: Pki;
let origin: Origin;
let weir: Weir;
let certs: Record<string, CertFiles>;
const subjects: Array<string | undefined> = [];

function listenerKdl(name: string, tlsBlock: string): string {
  return `    listener "${name}" {
        address "127.0.0.1:0"
        protocol "https"
        tls {
${tlsBlock}
        }
    }`;
}

function config(originPort: number, listeners: string): string {
  return `schema-version "1.0"
listeners {
${listeners}
}
filters { filter "subject" { type "headers"; request { set "x-unused" "1"; } } }
routes {
    route "all" {
        matches { path-prefix "/"; }
        upstream "origin"
        filters "subject"
    }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}" } }
system { graceful-shutdown-timeout-secs 1 }
`;
}

// The schema only knows the shipped filter types: the test swaps the "headers" factory for
// the filter named "subject", which records what plugins see as the client certificate.
const recordSubject = {
  extendFilters: (registry: import('../../host/src/filters/registry.ts').FilterRegistry) => {
    const builtin = registry.get('headers')!;
    registry.register('headers', (cfg, env) =>
      cfg.name !== 'subject'
        ? builtin(cfg, env)
        : ({
            name: cfg.name,
            kind: 'test:subject',
            failureMode: 'closed',
            requestBody: NO_BODY,
            responseBody: NO_BODY,
            onRequestHeaders: (ctx) => {
              subjects.push(ctx.client.certSubject);
            },
          }) satisfies Phase,
    );
  },
};

before(async () => {
  pki = createPki();
  certs = {
    def: pki.server('default', ['default.test', '127.0.0.1']),
    api: pki.server('api', ['api.test']),
    wild: pki.server('wild', ['*.wild.test']),
    client: pki.client('client', 'alice', 'Weir Tests'),
  };
  origin = await startOrigin();
  const sniTls = `            cert-file "${certs.def!.cert}"
            key-file "${certs.def!.key}"
            sni { hostnames "api.test"; cert-file "${certs.api!.cert}"; key-file "${certs.api!.key}"; }
            sni { hostnames "*.wild.test"; cert-file "${certs.wild!.cert}"; key-file "${certs.wild!.key}"; }`;
  const mtls = `            cert-file "${certs.def!.cert}"
            key-file "${certs.def!.key}"
            ca-file "${pki.caCert}"
            client-auth #true`;
  const tls13 = `            cert-file "${certs.def!.cert}"
            key-file "${certs.def!.key}"
            min-version "TLSv1.3"`;
  ({ weir } = await startWeirWith(config(origin.port, [listenerKdl('sni', sniTls), listenerKdl('mtls', mtls), listenerKdl('tls13', tls13)].join('\n')), recordSubject));
});

after(async () => {
  await weir?.close();
  await origin?.close();
});

/** Handshake only: what certificate and protocol a client gets. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<{ cn: string; alpn: string | false | null; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, ...opts });
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate();
      resolve({ cn: String(cert.subject?.CN), alpn: s.alpnProtocol, socket: s });
    });
    s.once('error', reject);
  });
}

async function cnFor(port: number, servername?: string, ca?: Buffer): Promise<string> {
  const h = await handshake(port, { ...(servername ? { servername } : {}), ...(ca ? { ca } : {}) });
  h.socket.destroy();
  return h.cn;
}

test('SNI picks the certificate: exact name, wildcard (one label), default without SNI', async () => {
  const port = weir.address('sni').port;
  assert.equal(await cnFor(port, 'api.test'), 'api.test');
  assert.equal(await cnFor(port, 'API.Test'), 'api.test', 'server names are case-insensitive');
  assert.equal(await cnFor(port, 'x.wild.test'), '*.wild.test');
  assert.equal(await cnFor(port, 'other.wild.test'), '*.wild.test');
  await assert.rejects(cnFor(port, 'a.b.wild.test'), /altnames|Hostname/i, 'a wildcard covers one label: the default cert does not match');
  assert.equal(await cnFor(port), 'default.test', 'no SNI (an IP address): the default certificate');
});

test('SNI through a real HTTPS client (undici), verified against the test CA', async () => {
  const port = weir.address('sni').port;
  for (const name of ['api.test', 'x.wild.test']) {
    const agent = new Agent({ connect: { ca: pki.caPem, servername: name } });
    const res = await request(`https://127.0.0.1:${port}/sni`, { dispatcher: agent, headers: { host: name } });
    const body = (await res.body.json()) as { headers: Record<string, string> };
    assert.equal(res.statusCode, 200);
    assert.equal(body.headers['x-forwarded-proto'], 'https');
    assert.equal(body.headers['host'], name);
    await agent.close();
  }
});

test('ALPN: h2 and http/1.1 on the same listener', async () => {
  const port = weir.address('sni').port;
  const h2 = await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h2.alpn, 'h2');
  h2.socket.destroy();
  const h1 = await handshake(port, { ALPNProtocols: ['http/1.1'] });
  assert.equal(h1.alpn, 'http/1.1');
  h1.socket.destroy();
  // And real requests over each.
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.caPem });
  const status = await new Promise<number>((resolve, reject) => {
    const r = session.request({ ':path': '/alpn-h2' });
    r.on('response', (h) => resolve(Number(h[':status'])));
    r.on('error', reject);
    r.resume();
  });
  session.close();
  assert.equal(status, 200);
  const s1 = await new Promise<number>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/alpn-h1', ca: pki.caPem, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
  assert.equal(s1, 200);
  assert.deepEqual(origin.seen.slice(-2).map((s) => s.url), ['/alpn-h2', '/alpn-h1']);
});

test('openssl s_client sees the SNI certificate, ALPN h2 and a chain that verifies', async () => {
  const port = weir.address('sni').port;
  const out = await new Promise<string>((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'api.test', '-alpn', 'h2,http/1.1', '-CAfile', pki.caCert, '-verify_return_error'], { timeout: 15_000 }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
    child.stdin!.end();
  });
  assert.match(out, /subject=\/?CN ?= ?api\.test/);
  assert.match(out, /ALPN protocol: h2/);
  assert.match(out, /Verify return code: 0 \(ok\)/);
});

test('min-version TLSv1.3 refuses a TLS 1.2 client', async () => {
  const port = weir.address('tls13').port;
  await assert.rejects(handshake(port, { maxVersion: 'TLSv1.2' }));
  const ok = await handshake(port);
  assert.equal(ok.socket.getProtocol(), 'TLSv1.3');
  ok.socket.destroy();
});

test('mTLS: no client certificate, no connection; with one, filters see its subject (h1 and h2)', async () => {
  const port = weir.address('mtls').port;
  // TLS 1.3 reports the missing certificate after the handshake: make a request to see it fail.
  await assert.rejects(
    new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/no-cert', ca: pki.caPem, agent: false }, resolve).on('error', reject);
    }),
  );
  const stranger = createPki('Other CA').client('mallory', 'mallory');
  await assert.rejects(
    new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/bad-cert', ca: pki.caPem, agent: false, cert: readPem(stranger.cert), key: readPem(stranger.key) }, resolve).on('error', reject);
    }),
    'a certificate from another CA is refused',
  );
  const n = subjects.length;
  const clientOpts = { ca: pki.caPem, cert: readPem(certs.client!.cert), key: readPem(certs.client!.key) };
  const status = await new Promise<number>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/mtls-h1', agent: false, ...clientOpts }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
  assert.equal(status, 200);
  const session = http2.connect(`https://127.0.0.1:${port}`, clientOpts);
  const s2 = await new Promise<number>((resolve, reject) => {
    const r = session.request({ ':path': '/mtls-h2' });
    r.on('response', (h) => resolve(Number(h[':status'])));
    r.on('error', reject);
    r.resume();
  });
  session.close();
  assert.equal(s2, 200);
  assert.deepEqual(subjects.slice(n), ['O=Weir Tests,CN=alice', 'O=Weir Tests,CN=alice']);
  assert.equal(origin.seen.at(-1)!.headers['x-client-cert-subject'], undefined, 'the subject is for filters, not sent upstream');
});

function readPem(path: string): Buffer {
  return readFileSync(path);
}

// ── hot reload ─────────────────────────────────────────────────────────────────

/** A Weir with one TLS listener whose certificate files the test may replace. */
async function reloadable(logLines: string[]): Promise<{ w: Weir; live: CertFiles; port: number; p: Pki }> {
  const p = createPki('Reload CA');
  const first = p.server('v1', ['reload.test', '127.0.0.1'], 'v1.reload.test');
  const live = { cert: `${p.dir}/live.crt`, key: `${p.dir}/live.key` };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _e, cb) { logLines.push(String(chunk)); cb(); } }));
  const { weir: w } = await startWeirWith(
    config(origin.port, listenerKdl('r', `            cert-file "${live.cert}"\n            key-file "${live.key}"`)),
    { logger, signals: true },
  );
  return { w, live, port: w.address('r').port, p };
}

async function waitForCN(port: number, ca: Buffer, want: string): Promise<string> {
  let cn = '';
  // Bounded: 100 × 50 ms.
  for (let i = 0; i < 100; i++) {
    cn = await cnFor(port, undefined, ca);
    if (cn === want) return cn;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cn;
}

/** An HTTP/1.1 keep-alive connection kept open across the reload. */
function keepAlive(port: number, ca: Buffer): { get(path: string): Promise<number>; close(): void; handshakes(): number } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  let handshakes = 0;
  agent.on('keylog', () => {});
  const orig = agent.createConnection.bind(agent);
  (agent as unknown as { createConnection: typeof orig }).createConnection = (...args: Parameters<typeof orig>) => {
    handshakes++;
    return orig(...args);
  };
  return {
    handshakes: () => handshakes,
    get: (path) =>
      new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        }).on('error', reject);
      }),
    close: () => agent.destroy(),
  };
}

test('SIGHUP reloads certificates: new handshakes get the new one, open connections keep working', async () => {
  const logs: string[] = [];
  const { w, live, port, p } = await reloadable(logs);
  try {
    const conn = keepAlive(port, p.caPem);
    assert.equal(await conn.get('/before'), 200);
    const next = p.server('v2', ['reload.test', '127.0.0.1'], 'v2.reload.test');
    copyFileSync(next.cert, live.cert);
    copyFileSync(next.key, live.key);
    process.kill(process.pid, 'SIGHUP');
    assert.equal(await waitForCN(port, p.caPem, 'v2.reload.test'), 'v2.reload.test');
    // (The file watcher would also notice; the log shows the signal was handled.)
    for (let i = 0; i < 100 && !logs.some((l) => l.includes('configuration reloaded')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(logs.some((l) => l.includes('configuration reloaded')), 'SIGHUP ran a reload');
    // The kept-alive connection (handshaken with v1) still serves requests, on the same socket.
    assert.equal(await conn.get('/after'), 200);
    assert.equal(conn.handshakes(), 1, 'no new connection was needed');
    conn.close();
  } finally {
    await w.close();
  }
});

test('certificate file change reloads without a signal; an invalid certificate keeps the old one and logs why', async () => {
  const logs: string[] = [];
  const { w, live, port, p } = await reloadable(logs);
  try {
    const h2 = http2.connect(`https://127.0.0.1:${port}`, { ca: p.caPem });
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const r = h2.request({ ':path': path });
        r.on('response', (h) => resolve(Number(h[':status'])));
        r.on('error', reject);
        r.resume();
      });
    assert.equal(await get('/h2-before'), 200);
    const next = p.server('v2', ['reload.test', '127.0.0.1'], 'v2.reload.test');
    copyFileSync(next.cert, live.cert);
    copyFileSync(next.key, live.key);
    assert.equal(await waitForCN(port, p.caPem, 'v2.reload.test'), 'v2.reload.test', 'file watch picked up the new certificate');
    assert.equal(await get('/h2-after'), 200, 'the open HTTP/2 session keeps working');
    // Now an invalid certificate: the v2 one stays, the reason is logged.
    writeFileSync(live.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    let logged = false;
    for (let i = 0; i < 100 && !logged; i++) {
      await new Promise((r) => setTimeout(r, 50));
      logged = logs.some((l) => l.includes('certificate reload failed'));
    }
    assert.ok(logged, 'the failed reload is logged');
    const line = JSON.parse(logs.find((l) => l.includes('certificate reload failed'))!) as { err: string };
    assert.ok(line.err.length > 0, 'with the reason');
    assert.equal(await cnFor(port, undefined, p.caPem), 'v2.reload.test', 'the old certificate keeps serving');
    // SIGHUP with the invalid file: same outcome.
    process.kill(process.pid, 'SIGHUP');
    await w.reload();
    assert.equal(await cnFor(port, undefined, p.caPem), 'v2.reload.test');
    assert.equal(await get('/h2-still'), 200);
    h2.close();
  } finally {
    await w.close();
  }
});

/**
 * Upstream TLS: verification on by default, ca-file, sni, verify #false, upstream mTLS and
 * HTTP/2 to an upstream over TLS (ALPN h2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startWeirWith } from '../helpers/weir.ts';
import { createPki, type Pki } from '../helpers/tls.ts';
import type { Weir } from '../../host/src/weir.ts';
import { WebSocketServer, WebSocket } from 'ws';

let pki: Pki;
let weir: Weir;
const closers: Array<() => void> = [];
const seen: Array<{ server: string; path: string; httpVersion: string; servername: string | undefined; clientCN: string | undefined }> = [];

async function listen(server: tls.Server | https.Server | http2.Http2SecureServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

before(async () => {
  pki = createPki('Upstream CA');
  const originCert = pki.server('origin', ['origin.test']);
  const ipCert = pki.server('origin-ip', ['127.0.0.1']);
  const weirClient = pki.client('weir-client', 'weir-proxy');
  const opts = (c: { cert: string; key: string }) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
  const record = (server: string) => (req: import('node:http').IncomingMessage | http2.Http2ServerRequest, res: import('node:http').ServerResponse | http2.Http2ServerResponse) => {
    const sock = req.socket as tls.TLSSocket;
    const peer = sock.getPeerCertificate?.();
    seen.push({ server, path: req.url!, httpVersion: req.httpVersion, servername: (sock as unknown as { servername?: string }).servername, clientCN: peer?.subject?.CN as string | undefined });
    const r = res as import('node:http').ServerResponse;
    r.writeHead(200, { 'content-type': 'text/plain' });
    r.end(`${server} ${req.httpVersion}`);
  };
  // Named origin (needs SNI "origin.test" to verify), an IP origin, an mTLS origin, an h2 origin.
  const named = https.createServer(opts(originCert), record('named'));
  const ip = https.createServer(opts(ipCert), record('ip'));
  const mtls = https.createServer({ ...opts(ipCert), ca: pki.caPem, requestCert: true, rejectUnauthorized: true }, record('mtls'));
  const h2 = http2.createSecureServer({ ...opts(ipCert), allowHTTP1: false }, record('h2'));
  const wsOrigin = https.createServer(opts(ipCert), record('ws'));
  const wss = new WebSocketServer({ server: wsOrigin });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`tls:${d}`)));
  closers.push(() => wss.close());
  const ports = { named: await listen(named), ip: await listen(ip), mtls: await listen(mtls), h2: await listen(h2), ws: await listen(wsOrigin) };
  const kdl = `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
routes {
    route "default-verify" {
        matches { path-prefix "/default-verify"; }
        upstream "default-verify"
    }
    route "ca" {
        matches { path-prefix "/ca"; }
        upstream "ca"
    }
    route "sni" {
        matches { path-prefix "/sni"; }
        upstream "sni"
    }
    route "noverify" {
        matches { path-prefix "/noverify"; }
        upstream "noverify"
    }
    route "wrong-sni" {
        matches { path-prefix "/wrong-sni"; }
        upstream "wrong-sni"
    }
    route "mtls" {
        matches { path-prefix "/mtls"; }
        upstream "mtls"
    }
    route "mtls-nocert" {
        matches { path-prefix "/nocert"; }
        upstream "mtls-nocert"
    }
    route "h2" {
        matches { path-prefix "/h2"; }
        upstream "h2"
    }
    route "ws" {
        matches { path-prefix "/ws"; }
        upstream "ws"
        policies { websocket #true; }
    }
}
upstreams {
    upstream "default-verify" {
        target "127.0.0.1:${ports.ip}"
        tls { }
    }
    upstream "ca" {
        target "127.0.0.1:${ports.ip}"
        tls { ca-file "${pki.caCert}"; }
    }
    upstream "sni" {
        target "127.0.0.1:${ports.named}"
        tls { sni "origin.test"; ca-file "${pki.caCert}"; }
    }
    upstream "wrong-sni" {
        target "127.0.0.1:${ports.named}"
        tls { sni "other.test"; ca-file "${pki.caCert}"; }
    }
    upstream "noverify" {
        target "127.0.0.1:${ports.named}"
        tls { verify #false; }
    }
    upstream "mtls" {
        target "127.0.0.1:${ports.mtls}"
        tls { ca-file "${pki.caCert}"; client-cert "${weirClient.cert}"; client-key "${weirClient.key}"; }
    }
    upstream "mtls-nocert" {
        target "127.0.0.1:${ports.mtls}"
        tls { ca-file "${pki.caCert}"; }
    }
    upstream "h2" {
        target "127.0.0.1:${ports.h2}"
        protocol "h2"
        tls { ca-file "${pki.caCert}"; }
    }
    upstream "ws" {
        target "127.0.0.1:${ports.ws}"
        tls { ca-file "${pki.caCert}"; }
    }
}
system { graceful-shutdown-timeout-secs 1 }
`;
  ({ weir } = await startWeirWith(kdl));
});

after(async () => {
  await weir?.close();
  for (const c of closers) c();
});

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await request(`${weir.url()}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

test('verification is on by default: an unknown CA is refused (502 WEIR_ERR_UPSTREAM_TLS)', async () => {
  const r = await get('/default-verify');
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body).error.code, 'WEIR_ERR_UPSTREAM_TLS');
});

test('ca-file verifies the upstream', async () => {
  const r = await get('/ca/x');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ip 1.1');
});

test('sni names the upstream: sent in the handshake and checked against the certificate', async () => {
  const r = await get('/sni/x');
  assert.equal(r.status, 200);
  assert.equal(seen.at(-1)!.servername, 'origin.test');
  const wrong = await get('/wrong-sni/x');
  assert.equal(wrong.status, 502, 'a certificate that does not match the SNI name is refused');
  assert.equal(JSON.parse(wrong.body).error.code, 'WEIR_ERR_UPSTREAM_TLS');
});

test('verify #false accepts any certificate', async () => {
  const r = await get('/noverify/x');
  assert.equal(r.status, 200);
});

test('upstream mTLS: Weir presents its client certificate', async () => {
  const r = await get('/mtls/x');
  assert.equal(r.status, 200);
  assert.equal(seen.at(-1)!.clientCN, 'weir-proxy');
  const n = await get('/nocert/x');
  assert.equal(n.status, 502, 'without client-cert the origin refuses Weir');
});

test('HTTP/2 to an upstream over TLS (protocol "h2", ALPN)', async () => {
  const r = await get('/h2/x');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'h2 2.0');
  assert.equal(seen.at(-1)!.httpVersion, '2.0');
});

test('WebSocket to an upstream over TLS', async () => {
  const ws = new WebSocket(`${weir.url().replace('http', 'ws')}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const msg = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
  ws.send('hi');
  assert.equal(await msg, 'tls:hi');
  ws.close();
});

test("the client's Host picks neither the SNI name nor the name checked: sni, else the target host, does", async () => {
  for (const host of ['unrelated.example', 'origin.test']) {
    const named = await request(`${weir.url()}/sni/host`, { headers: { host } });
    assert.equal(named.statusCode, 200, `sni "origin.test" with Host ${host}`);
    await named.body.dump();
    assert.equal(seen.at(-1)!.servername, 'origin.test');
    // An IP target without sni: no SNI, the certificate is checked against the IP.
    const ip = await request(`${weir.url()}/ca/host`, { headers: { host } });
    assert.equal(ip.statusCode, 200, `IP target with Host ${host}`);
    assert.equal(await ip.body.text(), 'ip 1.1');
    assert.equal(seen.at(-1)!.servername, false, 'no SNI towards an IP target');
  }
});

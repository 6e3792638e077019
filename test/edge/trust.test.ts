/**
 * Trust boundaries at the edge, over real sockets: X-Forwarded-For / Forwarded / PROXY
 * protocol (v1 and v2, on h1, h2c and TLS) decide the client address only from a peer in
 * `trusted-proxies`; that one address is what geo, rate-limit keys, the access log and the
 * X-Forwarded-For sent upstream use. Headers Weir asserts are never taken from the client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import tls from 'node:tls';
import http2 from 'node:http2';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Client } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import { createPki } from '../helpers/tls.ts';
import { parseResponses } from './wire.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
const access: Array<Record<string, unknown>> = [];
const GB = '81.2.69.160'; // GB in the bundled database

before(async () => {
  origin = await startOrigin();
  const pki = createPki();
  const cert = pki.server('server', ['localhost', '127.0.0.1']);
  const l = (name: string, body: string): string => `listener "${name}" { address "127.0.0.1:0"; ${body} }`;
  const text = `schema-version "1.0"
listeners {
    ${l('direct', 'protocol "h2c";')}
    ${l('behind', 'protocol "h2c"; trusted-proxies "127.0.0.1/32" "10.0.0.0/8";')}
    ${l('pp1', 'protocol "http"; proxy-protocol "v1"; trusted-proxies "127.0.0.1";')}
    ${l('pp2', 'protocol "h2c"; proxy-protocol "v2"; trusted-proxies "::1/128" "127.0.0.0/8";')}
    ${l('ppany', 'protocol "http"; proxy-protocol "any"; trusted-proxies "10.9.9.9/32";')}
    ${l('pptls', `proxy-protocol "any"; trusted-proxies "127.0.0.1/32"; tls { cert-file "${cert.cert}"; key-file "${cert.key}"; }`)}
    ${l('noid', 'protocol "http"; request-id { trust-incoming #false; }')}
}
filters {
    filter "geo" { type "geo"; action "log-only"; on-failure "open"; }
    filter "rl" { type "rate-limit"; max-rps 0.001; burst 1; key "client-ip"; }
}
routes {
    route "geo" { priority 10; matches { path-prefix "/geo"; }; upstream "o"; filters "geo"; }
    route "rl" { priority 10; matches { path-prefix "/rl"; }; upstream "o"; filters "rl"; }
    route "all" { matches { path-prefix "/"; }; upstream "o"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}" } }
system { graceful-shutdown-timeout-secs 1 }
`;
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const line of chunk.toString().split('\n')) if (line) access.push(JSON.parse(line)); cb(); } });
  ({ weir } = await startWeirWith(text, { accessLog: pino({ level: 'info' }, sink) }));
});
after(async () => {
  await weir.close();
  await origin.close();
});

async function get(listener: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; seen: Origin['seen'][number] | undefined }> {
  const before = origin.seen.length;
  const c = new Client(weir.url(listener));
  try {
    const r = await c.request({ method: 'GET', path, headers: { host: 'weir.test', ...headers } });
    await r.body.dump();
    return { status: r.statusCode, headers: r.headers, seen: origin.seen.length > before ? origin.seen.at(-1) : undefined };
  } finally {
    await c.close();
  }
}

/** The access-log line of the request the origin saw last (matched by request id). */
async function logLine(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 50; i++) {
    const hit = access.find((a) => a['id'] === id);
    if (hit) return hit;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`no access log line for ${id}`);
}

/** Raw bytes over a socket; resolves with what came back and whether the server closed. */
function raw(port: number, bytes: Buffer | string, timeoutMs = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      if (parseResponses(text).length > 0) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      clearTimeout(t);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    const t = setTimeout(() => {
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    }, timeoutMs);
    s.write(bytes);
  });
}

function v2Header(src: string, sport: number, dst: string, dport: number, command: 'PROXY' | 'LOCAL' = 'PROXY'): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const six = net.isIPv6(src);
  const addr = (a: string): Buffer => {
    if (!six) return Buffer.from(a.split('.').map(Number));
    const sa = new net.SocketAddress({ address: a, family: 'ipv6' });
    // expand "::" into 8 groups
    const [head, tail] = sa.address.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
    return b;
  };
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  const body = Buffer.concat([addr(src), addr(dst), ports]);
  const meta = Buffer.from([command === 'PROXY' ? 0x21 : 0x20, six ? 0x21 : 0x11, 0, 0]);
  meta.writeUInt16BE(body.length, 2);
  return Buffer.concat([sig, meta, body]);
}

async function errorsCount(code: string): Promise<number> {
  const text = await weir.metrics.registry.metrics();
  const m = new RegExp(`weir_errors_total\\{code="${code}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

test('untrusted peer: X-Forwarded-For and Forwarded are ignored and dropped; the socket address is the client', async () => {
  const r = await get('direct', '/geo', { 'x-forwarded-for': GB, forwarded: `for=${GB}`, 'x-request-id': 'direct-1' });
  assert.equal(r.status, 200);
  assert.equal(r.seen!.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(r.seen!.headers['forwarded'], undefined);
  assert.equal(r.seen!.headers['x-geoip-country'], undefined, 'no country for 127.0.0.1');
  assert.equal((await logLine('direct-1'))['client'], '127.0.0.1');
});

test('trusted peer: the right-most untrusted X-Forwarded-For hop is the client, for geo and the log; XFF is appended', async () => {
  let r = await get('behind', '/geo', { 'x-forwarded-for': `${GB}, 10.1.2.3`, 'x-request-id': 'behind-1' });
  assert.equal(r.seen!.headers['x-geoip-country'], 'GB');
  assert.equal(r.seen!.headers['x-forwarded-for'], `${GB}, 10.1.2.3, 127.0.0.1`);
  assert.equal((await logLine('behind-1'))['client'], GB);
  // A spoofed left-most entry is not the client: the right-most untrusted one is.
  r = await get('behind', '/geo', { 'x-forwarded-for': `6.6.6.6, ${GB}`, 'x-request-id': 'behind-2' });
  assert.equal((await logLine('behind-2'))['client'], GB);
  // Forwarded (RFC 7239) is used instead of XFF when present.
  r = await get('behind', '/geo', { forwarded: 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.5', 'x-forwarded-for': GB, 'x-request-id': 'behind-3' });
  assert.equal((await logLine('behind-3'))['client'], '2001:db8::1');
  // A hop that is not an address ends the walk at the nearest trusted hop.
  r = await get('behind', '/geo', { 'x-forwarded-for': `${GB}, unknown, 10.0.0.7`, 'x-request-id': 'behind-4' });
  assert.equal((await logLine('behind-4'))['client'], '10.0.0.7');
  // Nothing forwarded: the trusted peer itself.
  await get('behind', '/geo', { 'x-request-id': 'behind-5' });
  assert.equal((await logLine('behind-5'))['client'], '127.0.0.1');
});

test('rate-limit keys use the same client address', async () => {
  assert.equal((await get('behind', '/rl', { 'x-forwarded-for': '198.51.100.1' })).status, 200);
  assert.equal((await get('behind', '/rl', { 'x-forwarded-for': '198.51.100.1' })).status, 429, 'same client, same bucket');
  assert.equal((await get('behind', '/rl', { 'x-forwarded-for': '198.51.100.2' })).status, 200, 'another client, another bucket');
  // From an untrusted peer XFF cannot buy a new bucket.
  assert.equal((await get('direct', '/rl', { 'x-forwarded-for': '198.51.100.3' })).status, 200);
  assert.equal((await get('direct', '/rl', { 'x-forwarded-for': '198.51.100.4' })).status, 429);
});

test('x-geoip-country from the client never reaches the origin (lookup failed, or a route without geo)', async () => {
  let r = await get('direct', '/geo', { 'x-geoip-country': 'US' });
  assert.equal(r.seen!.headers['x-geoip-country'], undefined);
  r = await get('direct', '/plain', { 'x-geoip-country': 'US' });
  assert.equal(r.seen!.headers['x-geoip-country'], undefined);
  r = await get('behind', '/geo', { 'x-geoip-country': 'US', 'x-forwarded-for': GB });
  assert.equal(r.seen!.headers['x-geoip-country'], 'GB');
});

test('request-id { trust-incoming #false }: a client X-Request-ID is replaced; by default a valid one is kept', async () => {
  let r = await get('noid', '/plain', { 'x-request-id': 'client-chosen-id' });
  assert.notEqual(r.seen!.headers['x-request-id'], 'client-chosen-id');
  assert.match(String(r.seen!.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  r = await get('direct', '/plain', { 'x-request-id': 'client-chosen-id' });
  assert.equal(r.seen!.headers['x-request-id'], 'client-chosen-id');
});

test('PROXY v1 from a trusted peer: its source is the client; a bad or missing header closes the connection', async () => {
  const port = weir.address('pp1').port;
  const before = await errorsCount('WEIR_ERR_PROXY_PROTOCOL');
  const ok = await raw(port, `PROXY TCP4 ${GB} 10.0.0.1 56324 443\r\nGET /geo HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pp1-ok\r\nConnection: close\r\n\r\n`);
  assert.match(ok.text, /^HTTP\/1\.1 200/);
  assert.equal(origin.seen.at(-1)!.headers['x-geoip-country'], 'GB');
  assert.equal(origin.seen.at(-1)!.headers['x-forwarded-for'], GB);
  assert.equal((await logLine('pp1-ok'))['client'], GB);
  const seen = origin.seen.length;
  for (const bad of [
    'GET /geo HTTP/1.1\r\nHost: weir.test\r\n\r\n', // no header from a trusted peer
    'PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n',
    'PROXY TCP6 1.2.3.4 10.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n', // family mismatch
    'PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n',
    `PROXY TCP4 1.2.3.4 10.0.0.1 1 2 ${'x'.repeat(120)}\r\n`,
  ]) {
    const r = await raw(port, bad);
    assert.equal(r.text, '', `no reply to ${JSON.stringify(bad.slice(0, 40))}`);
    assert.ok(r.closed, 'closed');
  }
  const v2 = await raw(port, Buffer.concat([v2Header(GB, 1, '10.0.0.1', 2), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]));
  assert.equal(v2.text, '', 'a v2 header on a v1 listener');
  assert.equal(origin.seen.length, seen, 'nothing reached the origin');
  assert.equal(await errorsCount('WEIR_ERR_PROXY_PROTOCOL'), before + 6);
  // UNKNOWN: the peer itself is the client.
  const unk = await raw(port, 'PROXY UNKNOWN\r\nGET /plain HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pp1-unknown\r\nConnection: close\r\n\r\n');
  assert.match(unk.text, /^HTTP\/1\.1 200/);
  assert.equal((await logLine('pp1-unknown'))['client'], '127.0.0.1');
});

test('PROXY v2 (binary, IPv4 and IPv6, LOCAL) on an h2c listener, HTTP/1.1 and HTTP/2 after it', async () => {
  const port = weir.address('pp2').port;
  const h1 = await raw(port, Buffer.concat([v2Header(GB, 40000, '10.0.0.1', 443), Buffer.from('GET /geo HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pp2-h1\r\nConnection: close\r\n\r\n')]));
  assert.match(h1.text, /^HTTP\/1\.1 200/);
  assert.equal(origin.seen.at(-1)!.headers['x-geoip-country'], 'GB');
  assert.equal((await logLine('pp2-h1'))['client'], GB);
  const six = await raw(port, Buffer.concat([v2Header('2001:db8::7', 40000, '2001:db8::1', 443), Buffer.from('GET /plain HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pp2-v6\r\nConnection: close\r\n\r\n')]));
  assert.match(six.text, /^HTTP\/1\.1 200/);
  assert.equal((await logLine('pp2-v6'))['client'], '2001:db8::7');
  const local = await raw(port, Buffer.concat([v2Header('0.0.0.0', 0, '0.0.0.0', 0, 'LOCAL'), Buffer.from('GET /plain HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pp2-local\r\nConnection: close\r\n\r\n')]));
  assert.match(local.text, /^HTTP\/1\.1 200/);
  assert.equal((await logLine('pp2-local'))['client'], '127.0.0.1');
  // HTTP/2 prior knowledge after the header
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => {
      const s = net.connect(port, '127.0.0.1');
      s.write(v2Header(GB, 40001, '10.0.0.1', 443));
      return s;
    },
  });
  const status = await new Promise<number>((resolve, reject) => {
    const st = session.request({ ':path': '/geo', ':authority': 'weir.test', 'x-request-id': 'pp2-h2' });
    st.on('response', (h) => resolve(Number(h[':status'])));
    st.on('error', reject);
    st.resume();
    st.end();
  });
  session.close();
  assert.equal(status, 200);
  assert.equal(origin.seen.at(-1)!.headers['x-geoip-country'], 'GB');
  assert.equal((await logLine('pp2-h2'))['client'], GB);
});

test('proxy-protocol from an untrusted peer: plain HTTP is served with the socket address; a PROXY header closes', async () => {
  const port = weir.address('ppany').port;
  const plain = await raw(port, 'GET /plain HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: ppany-plain\r\nConnection: close\r\n\r\n');
  assert.match(plain.text, /^HTTP\/1\.1 200/);
  assert.equal((await logLine('ppany-plain'))['client'], '127.0.0.1');
  const spoof = await raw(port, `PROXY TCP4 ${GB} 10.0.0.1 1 2\r\nGET /plain HTTP/1.1\r\nHost: weir.test\r\n\r\n`);
  assert.equal(spoof.text, '');
  assert.ok(spoof.closed);
  const spoof2 = await raw(port, Buffer.concat([v2Header(GB, 1, '10.0.0.1', 2), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]));
  assert.equal(spoof2.text, '');
});

test('PROXY header before TLS on an https listener (HTTP/1.1 and HTTP/2)', async () => {
  const port = weir.address('pptls').port;
  const text = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`PROXY TCP4 ${GB} 10.0.0.1 5555 443\r\n`);
      const t = tls.connect({ socket: sock, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        t.write('GET /geo HTTP/1.1\r\nHost: weir.test\r\nX-Request-ID: pptls-1\r\nConnection: close\r\n\r\n');
      });
      const chunks: Buffer[] = [];
      t.on('data', (c: Buffer) => chunks.push(c));
      t.on('end', () => resolve(Buffer.concat(chunks).toString()));
      t.on('error', reject);
    });
    sock.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.equal(origin.seen.at(-1)!.headers['x-geoip-country'], 'GB');
  assert.equal((await logLine('pptls-1'))['client'], GB);
  // HTTP/2 over TLS after a v2 header
  const session = http2.connect(`https://localhost:${port}`, {
    createConnection: () => {
      const raw = net.connect(port, '127.0.0.1');
      raw.write(v2Header(GB, 40002, '10.0.0.1', 443));
      return tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    },
  });
  const status = await new Promise<number>((resolve, reject) => {
    const st = session.request({ ':path': '/geo', ':authority': 'weir.test', 'x-request-id': 'pptls-h2' });
    st.on('response', (h) => resolve(Number(h[':status'])));
    st.on('error', reject);
    st.resume();
    st.end();
  });
  session.close();
  assert.equal(status, 200);
  assert.equal((await logLine('pptls-h2'))['client'], GB);
});

test('config: bad CIDRs are refused with their location; proxy-protocol needs trusted-proxies', async () => {
  const { loadConfigText } = await import('../../host/src/config/load.ts');
  const bad = await loadConfigText('listener "a" { address "127.0.0.1:0"; trusted-proxies "10.0.0.0/8" "10.0.0.0/33" "nope"; }\n', 'w.kdl');
  assert.ok(!bad.ok);
  if (!bad.ok) {
    assert.deepEqual(bad.diagnostics.map((d) => [d.code, d.loc?.line, d.loc?.column]), [['WEIR_ERR_CONFIG_VALUE', 1, 68], ['WEIR_ERR_CONFIG_VALUE', 1, 82]]);
  }
  const pp = await loadConfigText('listener "a" { address "127.0.0.1:0"; proxy-protocol "v2"; }\n', 'w.kdl');
  assert.ok(!pp.ok);
  if (!pp.ok) assert.equal(pp.diagnostics[0]!.code, 'WEIR_ERR_CONFIG_CONSTRAINT');
});

test('geo: client-ip-header is refused (the client address comes from trusted-proxies)', async () => {
  const { loadConfigText } = await import('../../host/src/config/load.ts');
  const r = await loadConfigText('filter "g" { type "geo"; action "log-only"; client-ip-header "x-forwarded-for"; }\n', 'w.kdl');
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.deepEqual(r.diagnostics.map((d) => [d.code, d.loc?.line, d.loc?.column]), [['WEIR_ERR_CONFIG_UNSUPPORTED', 1, 45]]);
    assert.match(r.diagnostics[0]!.message, /trusted-proxies/);
  }
  // The same key in a user plugin's config block: the plugin's own configure refuses it.
  const geoWasm = new URL('../../plugins/geo/build/geo.wasm', import.meta.url).pathname;
  await assert.rejects(
    startWeirWith(`listener "m" { address "127.0.0.1:0"; }
plugins { plugin "g" { path "${geoWasm}"; config { action "log-only"; client-ip-header "x-forwarded-for"; } } }
filters { filter "g" { type "wasm"; plugin "g"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "g"; } }
upstreams { upstream "o" { target "127.0.0.1:1"; } }
`),
    /client-ip-header is not supported: set trusted-proxies/,
  );
});

test('a reload that adds trusted-proxies to a listener takes effect on new connections', async () => {
  const text = (trust: string): string => `listener "r" { address "127.0.0.1:0"; protocol "http"; ${trust} }
routes { route "all" { matches { path-prefix "/"; }; upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`;
  const { weir: w, file } = await startWeirWith(text(''));
  try {
    const send = async (): Promise<unknown> => {
      const c = new Client(w.url('r'));
      try {
        const r = await c.request({ method: 'GET', path: '/reload', headers: { host: 'weir.test', 'x-forwarded-for': '198.51.100.9' } });
        await r.body.dump();
        return origin.seen.at(-1)!.headers['x-forwarded-for'];
      } finally {
        await c.close();
      }
    };
    assert.equal(await send(), '127.0.0.1');
    writeFileSync(file, text('trusted-proxies "127.0.0.1/32";'));
    const r = await w.reload();
    assert.ok(r.ok, r.error);
    assert.equal(await send(), '198.51.100.9, 127.0.0.1');
  } finally {
    await w.close();
  }
});

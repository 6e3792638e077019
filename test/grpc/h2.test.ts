/**
 * HTTP/2 end to end through Weir with plain node:http2 peers: bodies that end with trailers
 * are delivered whole to a slow reader, a response that ends with its head is forwarded as
 * one HEADERS frame with END_STREAM, and a body limit firing mid-stream resets the upstream.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { startWeirWith } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

async function h2Origin(onStream: StreamHandler): Promise<number> {
  const server = http2.createServer();
  server.on('stream', onStream);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
  });
  return (server.address() as AddressInfo).port;
}

async function weirTo(port: number, extra = ''): Promise<number> {
  const { weir } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "h2"; ${extra} } }
upstreams { upstream "h2" { target "127.0.0.1:${port}"; protocol "h2"; } }`);
  cleanups.push(() => weir.close());
  return weir.address().port;
}

function client(port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  cleanups.push(() => {
    s.destroy();
  });
  return s;
}

interface Got {
  status: number;
  headers: http2.IncomingHttpHeaders;
  headFlags: number;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number;
}

/** One request; the response is read only after `holdMs` (a slow client), then whole. */
function get(session: http2.ClientHttp2Session, path: string, opts: { holdUntil?: Promise<unknown>; body?: Buffer; method?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':method': opts.method ?? (opts.body ? 'POST' : 'GET') }, { endStream: opts.body === undefined });
    if (opts.body) req.end(opts.body);
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders | undefined;
    let headers: http2.IncomingHttpHeaders = {};
    let headFlags = 0;
    req.on('response', (h, flags) => {
      headers = h;
      headFlags = flags;
      if (opts.holdUntil) {
        req.pause();
        opts.holdUntil.then(() => req.resume(), reject);
      }
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => resolve({ status: Number(headers[':status']), headers, headFlags, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode ?? 0 }));
    req.setTimeout(20_000, () => reject(new Error('request timed out')));
  });
}

test('128 KiB + trailers from an HTTP/2 upstream reach a slow-reading HTTP/2 client whole', async () => {
  const size = 128 * 1024;
  const payload = Buffer.alloc(size, 7);
  let sent!: () => void;
  const origin = await h2Origin((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      stream.sendTrailers({ 'x-sum': String(size) });
      sent();
    });
    stream.end(payload);
  });
  const port = await weirTo(origin);
  const session = client(port);
  for (let i = 0; i < 5; i++) {
    // The client reads nothing until the origin has sent everything, trailers included.
    const allSent = new Promise<void>((r) => (sent = r));
    const got = await get(session, `/big-${i}`, { holdUntil: allSent.then(() => new Promise((r) => setTimeout(r, 50))) });
    assert.equal(got.status, 200);
    assert.equal(got.body.length, size, `round ${i}: every byte arrives`);
    assert.ok(got.body.equals(payload));
    assert.equal(got.trailers?.['x-sum'], String(size), 'the trailers follow the body');
  }
});

test('a response that ends with its head (trailers-only) is forwarded as one HEADERS frame with END_STREAM', async () => {
  const origin = await h2Origin((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '3', 'grpc-message': 'bad%20arg' }, { endStream: true });
  });
  const port = await weirTo(origin);
  const got = await get(client(port), '/pkg.S/M', { body: Buffer.from([0, 0, 0, 0, 0]) });
  assert.equal(got.status, 200);
  assert.equal(got.headFlags & http2.constants.NGHTTP2_FLAG_END_STREAM, http2.constants.NGHTTP2_FLAG_END_STREAM, 'END_STREAM on the response HEADERS');
  assert.equal(got.headers['grpc-status'], '3');
  assert.equal(got.headers['grpc-message'], 'bad%20arg');
  assert.equal(got.body.length, 0);
  assert.equal(got.trailers, undefined, 'no separate trailers frame');
});

test('a 204 from an HTTP/2 upstream ends with its head too', async () => {
  const origin = await h2Origin((stream) => stream.respond({ ':status': 204, 'x-a': '1' }, { endStream: true }));
  const port = await weirTo(origin);
  const got = await get(client(port), '/nothing');
  assert.equal(got.status, 204);
  assert.equal(got.headers['x-a'], '1');
  assert.equal(got.headFlags & http2.constants.NGHTTP2_FLAG_END_STREAM, http2.constants.NGHTTP2_FLAG_END_STREAM);
});

test('h2c on the shared h1/h2c port answers small requests without a Nagle stall', async () => {
  // The origin writes its head and its body separately: without TCP_NODELAY on Weir's
  // sockets the second small write waits for the client's delayed ACK (~40 ms).
  const origin = await h2Origin((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    setImmediate(() => stream.end(Buffer.from([0, 0, 0, 0, 1, 8])));
  });
  const port = await weirTo(origin);
  const session = client(port);
  await get(session, '/warm', { body: Buffer.from([0, 0, 0, 0, 0]) });
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    const got = await get(session, '/pkg.S/M', { body: Buffer.from([0, 0, 0, 0, 0]) });
    times.push(performance.now() - t0);
    assert.equal(got.trailers?.['grpc-status'], '0');
  }
  times.sort((a, b) => a - b);
  const median = times[15]!;
  assert.ok(median < 20, `median ${median.toFixed(1)} ms per request (a Nagle stall is ~40 ms)`);
});

test('a body over the route limit mid-stream resets the upstream stream (never a clean end) and gets 413 at once', async () => {
  const events: string[] = [];
  let closed!: () => void;
  const originClosed = new Promise<void>((r) => (closed = r));
  const origin = await h2Origin((stream) => {
    stream.on('data', () => {});
    stream.on('aborted', () => events.push('aborted'));
    stream.on('end', () => events.push('end'));
    stream.on('error', () => {});
    stream.on('close', () => {
      events.push(`close:${stream.rstCode}`);
      closed();
    });
  });
  const port = await weirTo(origin, 'policies { max-body-size "1MiB"; }');
  const session = client(port);
  const t0 = performance.now();
  const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/upload' });
    req.on('error', () => {});
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    // The reply ends the response; the request side stays the client's to end.
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    const t = setTimeout(() => reject(new Error('no answer')), 10_000);
    cleanups.push(() => clearTimeout(t));
    // 6 × 256 KiB, never ended: the limit fires mid-stream.
    for (let i = 0; i < 6; i++) req.write(Buffer.alloc(256 * 1024, 1));
  });
  assert.equal(got.status, 413);
  assert.match(got.body, /WEIR_ERR_BODY_TOO_LARGE/);
  assert.ok(performance.now() - t0 < 5000, 'answered at once');
  await originClosed;
  assert.equal(events[0], 'aborted', `the origin saw a reset first, not END_STREAM: ${events.join(' ')}`);
  assert.ok(events.includes(`close:${http2.constants.NGHTTP2_CANCEL}`), events.join(' '));
});

/** Sends `bytes` on a fresh connection and returns everything read until the server closes. */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error('the server did not close the connection'));
    });
    s.write(bytes);
  });
}

/** HTTP/2 frames in `buf`: [type, flags, stream, payload]. */
function frames(buf: Buffer): Array<{ type: number; payload: Buffer }> {
  const out: Array<{ type: number; payload: Buffer }> = [];
  for (let i = 0; i + 9 <= buf.length; ) {
    const len = buf.readUIntBE(i, 3);
    out.push({ type: buf[i + 3]!, payload: buf.subarray(i + 9, i + 9 + len) });
    i += 9 + len;
  }
  return out;
}

test('a broken connection preface starting with PRI on the shared h1/h2c port gets GOAWAY(PROTOCOL_ERROR), not HTTP/1.1 (RFC 9113 §3.4)', async () => {
  const origin = await h2Origin((stream) => stream.respond({ ':status': 200 }, { endStream: true }));
  const port = await weirTo(origin);
  const reply = await rawExchange(port, Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'));
  assert.ok(!reply.toString('latin1').startsWith('HTTP/1.1'), 'no HTTP/1.1 answer');
  const goaway = frames(reply).find((f) => f.type === 0x7);
  assert.ok(goaway, `a GOAWAY frame (got ${reply.length} bytes)`);
  assert.equal(goaway.payload.readUInt32BE(4), 0x1, 'error code PROTOCOL_ERROR');
  // Bytes that are not preface-like are still HTTP/1.1 on this port.
  const h1 = await rawExchange(port, Buffer.from('INVALID CONNECTION PREFACE\r\n\r\n'));
  assert.match(h1.toString('latin1'), /^HTTP\/1\.1 400/);
});

test('HTTP/2: too many request headers get 431 like HTTP/1.1 (not an ENHANCE_YOUR_CALM reset)', async () => {
  const origin = await h2Origin((stream) => stream.respond({ ':status': 200 }, { endStream: true }));
  const port = await weirTo(origin);
  const headers: http2.OutgoingHttpHeaders = { ':path': '/many' };
  for (let i = 0; i < 150; i++) headers[`x-h-${i}`] = 'v';
  const got = await new Promise<{ status: number; rst: number; body: string }>((resolve) => {
    const req = client(port).request(headers, { endStream: true });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => resolve({ status, rst: req.rstCode ?? 0, body: Buffer.concat(chunks).toString() }));
  });
  assert.equal(got.rst, 0, 'no stream reset');
  assert.equal(got.status, 431);
  assert.match(got.body, /WEIR_ERR_HEADERS_TOO_LARGE/);
});

test('HTTP/1.1 upstream: a body over the limit mid-stream aborts the upstream request too', async () => {
  const { default: http } = await import('node:http');
  const events: string[] = [];
  let closed!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const srv = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      events.push('end');
      res.end('ok');
    });
    req.on('aborted', () => events.push('aborted'));
    req.on('close', () => closed());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  const { weir } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "h1"; policies { max-body-size "1MiB"; } } }
upstreams { upstream "h1" { target "127.0.0.1:${(srv.address() as AddressInfo).port}"; } }`);
  cleanups.push(() => weir.close());
  const status = await new Promise<number>((resolve) => {
    const req = client(weir.address().port).request({ ':method': 'POST', ':path': '/upload' });
    req.on('error', () => {});
    req.on('response', (h) => resolve(Number(h[':status'])));
    for (let i = 0; i < 6; i++) req.write(Buffer.alloc(256 * 1024, 1));
  });
  assert.equal(status, 413);
  await done;
  assert.deepEqual(events, ['aborted'], 'the origin saw the request aborted, never ended');
});

/**
 * The keys that contain slow clients, one behaviour each, over real sockets:
 * limits max-upstream-requests-per-client, response-buffer-bytes, request-body-buffer-bytes,
 * min-request-body-rate; connection-pool queue-timeout; timeouts write (the send timeout).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const BIG = 16 * 1024 * 1024;
const big = Buffer.alloc(BIG, 0x61);

/** An origin: `/hold` waits until released, `/big` sends 16 MiB, anything else says ok. */
async function origin(): Promise<{ port: number; release(): void; bigFinished: Promise<void>[]; seenHeads: string[] }> {
  const held: http.ServerResponse[] = [];
  const bigFinished: Promise<void>[] = [];
  const seenHeads: string[] = [];
  const o = await startOrigin(
    (req, res) => {
      seenHeads.push(req.url!);
      if (req.url === '/hold') return void held.push(res);
      if (req.url === '/big') {
        bigFinished.push(new Promise((r) => res.once('finish', () => r())));
        res.writeHead(200, { 'content-length': String(BIG) });
        return void res.end(big);
      }
      if (req.url === '/upload') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.end(`got ${Buffer.concat(chunks).length}`));
        return;
      }
      res.end('ok');
    },
    { collectBody: false },
  );
  cleanups.push(() => o.close());
  return {
    port: o.port,
    seenHeads,
    bigFinished,
    release: () => {
      for (const r of held.splice(0)) r.end('released');
    },
  };
}

async function weirFor(port: number, limits: string, pool = '', timeouts = ''): Promise<Weir> {
  const { weir } = await startWeirWith(`schema-version "1.0"
listeners { listener "h1" { address "127.0.0.1:0"; protocol "http"; } }
limits { ${limits} }
routes { route "all" { matches { path-prefix "/"; }; upstream "origin"; } }
upstreams {
    upstream "origin" {
        target "127.0.0.1:${port}"
        ${pool ? `connection-pool { ${pool}; }` : ''}
        ${timeouts ? `timeouts { ${timeouts}; }` : ''}
    }
}
system { graceful-shutdown-timeout-secs 1 }
`);
  cleanups.push(() => weir.close());
  return weir;
}

/** One request from `localAddress` on a fresh connection: status, error code, body. */
function get(weir: Weir, path: string, localAddress = '127.0.0.1'): Promise<{ status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: weir.address('h1').port, path, localAddress, agent: false, headers: { host: 'weir.test' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = JSON.parse(body).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode!, code, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A client that sends a request and never reads: the socket stays open. */
function nonReader(weir: Weir, path: string): net.Socket {
  const s = net.connect({ port: weir.address('h1').port, host: '127.0.0.1' });
  s.on('error', () => {});
  s.write(`GET ${path} HTTP/1.1\r\nHost: weir.test\r\n\r\n`);
  s.pause();
  cleanups.push(async () => void s.destroy());
  return s;
}

async function errorsCounted(weir: Weir, code: string): Promise<number> {
  const m = await weir.metrics.errors.get();
  return m.values.find((v) => v.labels['code'] === code)?.value ?? 0;
}

function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const iv = setInterval(() => {
      if (cond()) {
        clearInterval(iv);
        resolve(true);
      } else if (performance.now() - t0 > ms) {
        clearInterval(iv);
        resolve(false);
      }
    }, 10);
  });
}

test('limits max-upstream-requests-per-client: over the cap → 503 WEIR_ERR_CLIENT_LIMIT; another client is served', async () => {
  const o = await origin();
  const weir = await weirFor(o.port, 'max-upstream-requests-per-client 2');
  const held = [get(weir, '/hold'), get(weir, '/hold')];
  assert.ok(await waitFor(() => o.seenHeads.length === 2, 5000), 'two requests reached the origin');
  const third = await get(weir, '/hold');
  assert.equal(third.status, 503);
  assert.equal(third.code, 'WEIR_ERR_CLIENT_LIMIT');
  const other = await get(weir, '/other', '127.0.0.2');
  assert.equal(other.status, 200, 'another client address is not capped');
  o.release();
  for (const r of await Promise.all(held)) assert.equal(r.status, 200);
  // The count went back down: the first client is served again.
  assert.equal((await get(weir, '/again')).status, 200);
});

test('connection-pool queue-timeout: a full pool answers 503 WEIR_ERR_QUEUE_TIMEOUT after the timeout; a connection freed in time serves the waiter', async () => {
  const o = await origin();
  const weir = await weirFor(o.port, '', 'max-connections 1; queue-timeout 0.4');
  const first = get(weir, '/hold');
  assert.ok(await waitFor(() => o.seenHeads.length === 1, 5000));
  const t0 = performance.now();
  const waited = await get(weir, '/x');
  const ms = performance.now() - t0;
  assert.equal(waited.status, 503);
  assert.equal(waited.code, 'WEIR_ERR_QUEUE_TIMEOUT');
  assert.ok(ms >= 350 && ms < 3000, `answered after ${ms} ms`);
  const second = get(weir, '/y');
  await new Promise((r) => setTimeout(r, 100));
  o.release();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200, 'the waiter got the freed connection');
});

for (const [buffer, freed] of [['32MiB', true], ['16KiB', false]] as const) {
  test(`limits response-buffer-bytes ${buffer}: a client that does not read a 16 MiB response ${freed ? 'frees' : 'keeps'} the upstream connection`, async () => {
    const o = await origin();
    const weir = await weirFor(o.port, `response-buffer-bytes "${buffer}"`, 'max-connections 1; queue-timeout 1');
    nonReader(weir, '/big');
    assert.ok(await waitFor(() => o.bigFinished.length === 1, 5000));
    const next = await get(weir, '/next', '127.0.0.2');
    if (freed) {
      assert.equal(next.status, 200, 'the next request got the upstream connection');
      await o.bigFinished[0];
    } else {
      assert.equal(next.status, 503, 'the slow reader still holds the only connection');
      assert.equal(next.code, 'WEIR_ERR_QUEUE_TIMEOUT');
    }
  });
}

test('timeouts write: a response that makes no progress for that long ends the exchange (WEIR_ERR_SEND_TIMEOUT) and frees the upstream connection', async () => {
  const o = await origin();
  const weir = await weirFor(o.port, 'response-buffer-bytes "16KiB"', 'max-connections 1; queue-timeout 10', 'write 0.5');
  const s = nonReader(weir, '/big');
  assert.ok(await waitFor(() => o.seenHeads.length === 1, 5000));
  const t0 = performance.now();
  const next = await get(weir, '/next', '127.0.0.2');
  const ms = performance.now() - t0;
  assert.equal(next.status, 200, 'the waiting request got the connection');
  assert.ok(ms >= 400 && ms < 5000, `served after ${ms} ms`);
  // The slow client's connection was closed: reading it now reaches the end.
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.resume();
  await closed;
  assert.equal(await errorsCounted(weir, 'WEIR_ERR_SEND_TIMEOUT'), 1);
});

/** Sends a POST with Content-Length `length`, `step` bytes every `everyMs`; resolves with what came back. */
function slowUpload(weir: Weir, length: number, step: number, everyMs: number): Promise<{ raw: string; afterMs: number }> {
  return new Promise((resolve) => {
    const s = net.connect({ port: weir.address('h1').port, host: '127.0.0.1' });
    const t0 = performance.now();
    let raw = '';
    let sent = 0;
    s.on('error', () => {});
    s.write(`POST /upload HTTP/1.1\r\nHost: weir.test\r\nContent-Length: ${length}\r\n\r\n`);
    const iv = setInterval(() => {
      if (sent >= length || s.destroyed) return clearInterval(iv);
      const n = Math.min(step, length - sent);
      sent += n;
      s.write('b'.repeat(n));
    }, everyMs);
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      raw += c;
      if (/\r\n\r\n[^]*$/.test(raw) && /got \d+|"code"/.test(raw)) {
        clearInterval(iv);
        s.destroy();
      }
    });
    s.once('close', () => {
      clearInterval(iv);
      resolve({ raw, afterMs: performance.now() - t0 });
    });
  });
}

for (const buffer of ['64KiB', '0']) {
  test(`limits request-body-buffer-bytes ${buffer}: a small body ${buffer === '0' ? 'is streamed: the origin sees the request before the body is complete' : 'is read whole before the origin sees the request'}`, async () => {
    const o = await origin();
    const weir = await weirFor(o.port, `request-body-buffer-bytes ${buffer === '0' ? 0 : `"${buffer}"`}; min-request-body-rate 0`);
    const done = slowUpload(weir, 1000, 250, 200);
    await new Promise((r) => setTimeout(r, 450));
    const seenMidway = o.seenHeads.length;
    const { raw } = await done;
    assert.match(raw, /got 1000/);
    assert.equal(seenMidway, buffer === '0' ? 1 : 0);
  });
}

test('limits min-request-body-rate: a body slower than the rate gets 408 WEIR_ERR_REQUEST_TIMEOUT and never reaches the origin; off (0) it completes', async () => {
  const o = await origin();
  const weir = await weirFor(o.port, 'min-request-body-rate 1024');
  // 50 bytes/s for 400 bytes: 8 s to complete, slower than 1024 bytes/s.
  const slow = await slowUpload(weir, 400, 10, 200);
  assert.match(slow.raw, /^HTTP\/1\.1 408 /);
  assert.match(slow.raw, /WEIR_ERR_REQUEST_TIMEOUT/);
  assert.ok(slow.afterMs >= 4900 && slow.afterMs < 8000, `408 after ${slow.afterMs} ms`);
  assert.equal(o.seenHeads.length, 0, 'no upstream request was made');
  const off = await weirFor(o.port, 'min-request-body-rate 0');
  const ok = await slowUpload(off, 300, 25, 200);
  assert.match(ok.raw, /got 300/);
});

test('limits min-request-body-rate on streamed bodies: a chunked upload slower than the rate gets 408 mid-stream; a gRPC stream as slow is left alone', async () => {
  const o = await origin();
  const { weir } = await startWeirWith(`schema-version "1.0"
listeners {
    listener "h1" { address "127.0.0.1:0"; protocol "http"; }
    listener "h2c" { address "127.0.0.1:0"; protocol "h2c"; }
}
limits { min-request-body-rate 1024; }
routes { route "all" { matches { path-prefix "/"; }; upstream "origin"; } }
upstreams { upstream "origin" { target "127.0.0.1:${o.port}"; } }
system { graceful-shutdown-timeout-secs 1 }
`);
  cleanups.push(() => weir.close());
  // 50 bytes/s for 6.5 s: chunked (streamed to the origin as it comes) over HTTP/1.1 ...
  const chunked = new Promise<{ raw: string; afterMs: number }>((resolve) => {
    const s = net.connect({ port: weir.address('h1').port, host: '127.0.0.1' });
    const t0 = performance.now();
    let raw = '';
    let ticks = 0;
    s.on('error', () => {});
    s.setEncoding('latin1');
    s.on('data', (c: string) => (raw += c));
    s.write('POST /upload HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n');
    const iv = setInterval(() => {
      if (s.destroyed) return clearInterval(iv);
      if (++ticks > 32) {
        clearInterval(iv);
        return s.end('0\r\n\r\n');
      }
      s.write('a\r\nbbbbbbbbbb\r\n');
    }, 200);
    s.once('close', () => {
      clearInterval(iv);
      resolve({ raw, afterMs: performance.now() - t0 });
    });
  });
  // ... and the same trickle as a gRPC-typed HTTP/2 stream.
  const grpc = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${weir.address('h2c').port}`);
    c.on('error', reject);
    const st = c.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/grpc' });
    let status = 0;
    let body = '';
    st.on('response', (h) => (status = Number(h[':status'])));
    st.setEncoding('utf8');
    st.on('data', (d: string) => (body += d));
    st.on('end', () => {
      c.close();
      resolve({ status, body });
    });
    st.on('error', reject);
    let ticks = 0;
    const iv = setInterval(() => {
      if (++ticks > 32) {
        clearInterval(iv);
        return st.end();
      }
      st.write('bbbbbbbbbb');
    }, 200);
  });
  const [h1, g] = await Promise.all([chunked, grpc]);
  assert.match(h1.raw, /^HTTP\/1\.1 408 /);
  assert.match(h1.raw, /WEIR_ERR_REQUEST_TIMEOUT/);
  assert.ok(h1.afterMs >= 4900 && h1.afterMs < 6400, `408 after ${h1.afterMs} ms, before the body was complete`);
  assert.equal(g.status, 200);
  assert.equal(g.body, 'got 320');
});

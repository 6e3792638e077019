/**
 * An origin that answers before reading the request body (413 to a 20 MiB upload): the
 * client gets that answer and its request ends promptly instead of hanging, blocked on a
 * body nobody reads, until the request timeout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const SIZE = 20 * 1024 * 1024;
let origin: net.Server;
let h1: Weir;
let h2: Weir;

before(async () => {
  // Reads the request head only, answers 413 and never reads on.
  origin = net.createServer((s) => {
    let head = '';
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.pause();
      s.write('HTTP/1.1 413 Payload Too Large\r\ncontent-type: text/plain\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n');
    };
    s.on('data', onData);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const port = (origin.address() as net.AddressInfo).port;
  const config = (protocol: string): string => `listeners { listener "m" { address "127.0.0.1:0"; protocol "${protocol}"; request-timeout-secs 60; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; policies { max-body-size "64MiB"; }; } }
upstreams { upstream "o" { target "127.0.0.1:${port}"; } }`;
  ({ weir: h1 } = await startWeirWith(config('http')));
  ({ weir: h2 } = await startWeirWith(config('h2c')));
});

after(async () => {
  await h1?.close();
  await h2?.close();
  origin?.close();
});

test('HTTP/1.1: the early 413 reaches the client with connection: close, and the connection ends at once', async () => {
  const t0 = performance.now();
  const c = net.connect(Number(new URL(h1.url()).port), '127.0.0.1');
  c.on('error', () => {}); // EPIPE/ECONNRESET while still uploading is expected
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const closed = new Promise<number>((r) => c.on('close', () => r(performance.now() - t0)));
  c.write(`POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: ${SIZE}\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 97);
  let sent = 0;
  const pump = (): void => {
    while (sent < SIZE && !c.destroyed) {
      sent += chunk.length;
      if (!c.write(chunk)) return void c.once('drain', pump);
    }
  };
  pump();
  const timeout = setTimeout(() => c.destroy(), 10_000);
  const ms = await closed;
  clearTimeout(timeout);
  assert.match(got, /^HTTP\/1\.1 413 /, 'the origin answer is relayed');
  assert.match(got, /\r\nconnection: close\r\n/i);
  assert.ok(got.endsWith('too big\n'), 'with its whole body');
  assert.ok(ms < 5000, `the connection ended after ${Math.round(ms)} ms (request timeout 60 s)`);
});

test('HTTP/2: the early 413 reaches the client and its stream ends promptly', async () => {
  const t0 = performance.now();
  const session = http2.connect(h2.url());
  session.on('error', () => {});
  try {
    const st = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': String(SIZE) });
    st.on('error', () => {});
    let status = 0;
    let body = '';
    st.on('response', (h) => (status = Number(h[':status'])));
    st.on('data', (d: Buffer) => (body += String(d)));
    const closed = new Promise<number>((r) => st.on('close', () => r(performance.now() - t0)));
    const chunk = Buffer.alloc(64 * 1024, 97);
    let sent = 0;
    const pump = (): void => {
      while (sent < SIZE && !st.destroyed) {
        sent += chunk.length;
        if (!st.write(chunk)) return void st.once('drain', pump);
      }
      st.end();
    };
    pump();
    const timeout = setTimeout(() => st.close(), 15_000);
    const ms = await closed;
    clearTimeout(timeout);
    assert.equal(status, 413);
    assert.equal(body, 'too big\n');
    assert.ok(ms < 8000, `the stream ended after ${Math.round(ms)} ms (request timeout 60 s)`);
  } finally {
    session.close();
  }
});

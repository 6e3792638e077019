/**
 * HTTP/1.1 pipelining: requests pipelined on one downstream connection reach the origin one
 * at a time and in order, and their responses come back in order.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';

/** Content-Length framed responses in `raw`, in order. */
function parseAll(raw: string): Array<{ status: number; body: string }> {
  const out: Array<{ status: number; body: string }> = [];
  let i = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', i);
    if (end === -1) return out;
    const head = raw.slice(i, end);
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (end + 4 + len > raw.length) return out;
    out.push({ status: Number(head.slice(9, 12)), body: raw.slice(end + 4, end + 4 + len) });
    i = end + 4 + len;
  }
}

const N = 300;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test(`${N} pipelined requests on one connection reach the origin one at a time, in order`, async () => {
  let active = 0;
  let maxActive = 0;
  const order: number[] = [];
  const origin = await startOrigin((req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    const i = Number(new URL(req.url!, 'http://x').searchParams.get('i'));
    order.push(i);
    // Answer out of order in time: later requests answer sooner.
    setTimeout(() => {
      active--;
      const body = String(i);
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    }, i % 3 === 0 ? 3 : 0);
  });
  const { weir } = await startWeirWith(`schema-version "1.0"
listeners { listener "h1" { address "127.0.0.1:0"; protocol "http"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "origin"; } }
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}" } }
system { graceful-shutdown-timeout-secs 1 }
`);
  cleanups.push(() => origin.close(), () => weir.close());
  const s = net.connect(weir.address('h1').port, '127.0.0.1');
  s.on('error', () => {});
  let raw = '';
  s.setEncoding('latin1');
  const all = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${parseAll(raw).length} of ${N} responses`)), 30_000);
    s.on('data', (c: string) => {
      raw += c;
      if (parseAll(raw).length >= N) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  let out = '';
  for (let i = 0; i < N; i++) out += `GET /p?i=${i} HTTP/1.1\r\nHost: weir.test\r\n\r\n`;
  s.write(out);
  await all;
  s.destroy();
  const responses = parseAll(raw);
  assert.equal(responses.length, N);
  assert.deepEqual(responses.map((r) => Number(r.body)), Array.from({ length: N }, (_, i) => i), 'responses in request order');
  assert.deepEqual(order, Array.from({ length: N }, (_, i) => i), 'origin saw the requests in order');
  assert.equal(maxActive, 1, 'one request of the connection at the origin at a time');
});

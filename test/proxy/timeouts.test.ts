/**
 * Upstream timeouts: `timeouts request` bounds one attempt's whole exchange (head and body),
 * `timeouts read` a pause between two body reads, and `retry-on "timeout"` retries an
 * upstream timeout on another target without needing the route's `timeout-secs`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function origin(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Origin> {
  const o = await startOrigin((req, res) => handler(req, res));
  cleanups.push(() => o.close());
  return o;
}

async function weirOn(upstream: string, policies = ''): Promise<Weir> {
  const { weir } = await startWeirWith(`schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
routes {
    route "r" {
        matches { path-prefix "/" }
        upstream "u"
        ${policies ? `policies { ${policies} }` : ''}
    }
}
upstreams {
${upstream}
}
system { graceful-shutdown-timeout-secs 1 }
`);
  cleanups.push(() => weir.close());
  return weir;
}

/** Reads a response to its end or its reset; tells which, with the bytes and the time. */
async function fetchAll(url: string): Promise<{ status: number; bytes: number; reset: boolean; ms: number; body: string }> {
  const t0 = performance.now();
  const res = await request(url);
  let bytes = 0;
  let body = '';
  let reset = false;
  try {
    for await (const c of res.body) {
      bytes += (c as Buffer).length;
      body += String(c);
    }
  } catch {
    reset = true;
  }
  return { status: res.statusCode, bytes, reset, ms: performance.now() - t0, body };
}

test('retry-on "timeout" retries a target that exceeds `timeouts request`, without a route timeout-secs', async () => {
  const hang = await origin(() => {}); // never answers
  const ok = await origin((_req, res) => res.end('ok'));
  const weir = await weirOn(
    `upstream "u" { target "127.0.0.1:${hang.port}"; target "127.0.0.1:${ok.port}"; timeouts { request 0.3; } }`,
    'retry { max-attempts 2; backoff-ms 1; max-backoff-ms 2; retry-on "timeout"; }',
  );
  for (let i = 0; i < 4; i++) {
    const r = await fetchAll(`${weir.url()}/r${i}`);
    assert.equal(r.status, 200, `request ${i}: the timed-out attempt is retried on the other target`);
    assert.equal(r.body, 'ok');
  }
  assert.ok(hang.seen.length >= 1, 'the hanging target was tried');
});

test('without retry, `timeouts request` ends a silent target with 504 WEIR_ERR_UPSTREAM_TIMEOUT on time', async () => {
  const hang = await origin(() => {});
  const weir = await weirOn(`upstream "u" { target "127.0.0.1:${hang.port}"; timeouts { request 0.3; read 10; } }`);
  const r = await fetchAll(`${weir.url()}/x`);
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.body).error.code, 'WEIR_ERR_UPSTREAM_TIMEOUT');
  assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
});

test('`timeouts request` is the whole exchange: a body still trickling past it is cut', async () => {
  // Head at once, then 10 bytes every 100 ms for 3 s: no pause is longer than `read`.
  const trickle = await origin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const t = setInterval(() => {
      res.write('0123456789');
      if (++n === 30) {
        clearInterval(t);
        res.end();
      }
    }, 100);
    res.on('close', () => clearInterval(t));
  });
  const weir = await weirOn(`upstream "u" { target "127.0.0.1:${trickle.port}"; timeouts { request 0.8; read 5; } }`);
  const r = await fetchAll(`${weir.url()}/x`);
  assert.equal(r.status, 200);
  assert.ok(r.reset, 'the response is reset at the deadline');
  assert.ok(r.bytes < 300, `only part of the body arrived (${r.bytes} of 300 bytes)`);
  assert.ok(r.ms < 2500, `cut after ${r.ms} ms`);
});

test('`timeouts read` cuts a body that pauses longer than it, well before `timeouts request`', async () => {
  const pause = await origin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first');
    const t = setTimeout(() => res.end('late'), 5000);
    res.on('close', () => clearTimeout(t));
  });
  const weir = await weirOn(`upstream "u" { target "127.0.0.1:${pause.port}"; timeouts { request 30; read 0.3; } }`);
  const r = await fetchAll(`${weir.url()}/x`);
  assert.equal(r.status, 200);
  assert.ok(r.reset, 'the response is reset after the pause');
  assert.equal(r.body, 'first');
  assert.ok(r.ms < 3000, `cut after ${r.ms} ms`);
});

/**
 * Error replies to clients, over real sockets: every path that writes one (the exchange, the
 * listener's pre-exchange refusals and parser errors, WebSocket refusals, builtin handlers)
 * sends the same JSON: the code, the table's message and the request id. Internal detail
 * (plugin trap text, fuel budgets, upstream error strings and addresses) is in the log only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { ERRORS, type ErrorCode } from '../../host/src/errors.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { writeProbe } from '../helpers/probe.ts';
import { rawRequest } from '../helpers/http.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let url: string;
let closedPort: number;
const logs: Array<Record<string, unknown>> = [];

before(async () => {
  origin = await startOrigin();
  const probe = await writeProbe(tmpDir());
  // A port nothing listens on: bind, note, close.
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line)); cb(); } });
  ({ weir, url } = await startWeirWith(`schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
plugins {
    plugin "trap" { path "${probe}"; config { mode "trap"; } }
    plugin "loop" { path "${probe}"; fuel 100000; config { mode "loop"; } }
}
filters {
    filter "trap" { type "wasm"; plugin "trap"; failure-mode "closed"; }
    filter "loop" { type "wasm"; plugin "loop"; failure-mode "closed"; }
}
routes {
    route "trap" { priority 10; matches { path "/trap"; }; upstream "o"; filters "trap"; }
    route "loop" { priority 10; matches { path "/loop"; }; upstream "o"; filters "loop"; }
    route "down" { priority 10; matches { path "/down"; }; upstream "down"; }
    route "nf" { priority 10; matches { path "/nf"; }; builtin-handler "not-found"; }
    route "all" { matches { path-prefix "/ok"; }; upstream "o"; }
}
upstreams {
    upstream "o" { target "127.0.0.1:${origin.port}" }
    upstream "down" { target "127.0.0.1:${closedPort}" }
}
system { graceful-shutdown-timeout-secs 1 }
`, { logger: pino({ level: 'debug' }, sink) }));
});
after(async () => {
  await weir.close();
  await origin.close();
});

/** The exact body every error reply must have. */
function expected(code: ErrorCode, id: string): unknown {
  return { error: { code, status: ERRORS[code].status, message: ERRORS[code].message, request_id: id } };
}

async function call(path: string, headers: Record<string, string> = {}): Promise<{ status: number; id: string; text: string }> {
  const r = await request(`${url}${path}`, { headers: { 'x-trap': '1', ...headers } });
  return { status: r.statusCode, id: String(r.headers['x-request-id']), text: await r.body.text() };
}

test('a trapping plugin: 503 with the code and table message; the trap text is only in the log', async () => {
  const r = await call('/trap');
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.text), expected('WEIR_ERR_PLUGIN_TRAP', r.id));
  const line = logs.find((l) => (l['id'] === r.id || l['requestId'] === r.id) && typeof l['err'] === 'string' && l['err'] !== ERRORS.WEIR_ERR_PLUGIN_TRAP.message);
  assert.ok(line, `the trap detail is logged: ${JSON.stringify(logs.filter((l) => l['id'] === r.id || l['requestId'] === r.id))}`);
  assert.ok(!r.text.includes(String(line['err'])), 'the logged detail is not in the body');
});

test('a plugin out of fuel: no budget numbers in the body', async () => {
  const r = await call('/loop', { 'x-loop': '1' });
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.text), expected('WEIR_ERR_PLUGIN_FUEL', r.id));
  assert.ok(!r.text.includes('100000'));
});

test('an upstream connect failure: 502 without ECONNREFUSED or the target address', async () => {
  const r = await call('/down');
  assert.equal(r.status, 502);
  assert.deepEqual(JSON.parse(r.text), expected('WEIR_ERR_UPSTREAM_CONNECT', r.id));
  assert.ok(!/ECONNREFUSED|127\.0\.0\.1/.test(r.text), r.text);
  assert.ok(!r.text.includes(String(closedPort)));
});

test('no route and the not-found builtin: the table message, not the request echoed back', async () => {
  const r = await call('/nowhere/<script>');
  assert.equal(r.status, 404);
  assert.deepEqual(JSON.parse(r.text), expected('WEIR_ERR_NO_ROUTE', r.id));
  const nf = await call('/nf');
  assert.deepEqual(JSON.parse(nf.text), expected('WEIR_ERR_NO_ROUTE', nf.id));
});

/** Status, x-request-id and JSON body of a raw HTTP/1.1 exchange. */
async function rawJson(bytes: string): Promise<{ status: number; id: string | undefined; body: unknown }> {
  const text = await rawRequest(weir.address().port, bytes);
  const [head, body] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)![1]), id: /\r\nx-request-id: *([^\r]+)/i.exec(head)?.[1], body: JSON.parse(body) };
}

test('a request without Host gets the same JSON 400 as other refusals (with a request id)', async () => {
  const noHost = await rawJson('GET /ok HTTP/1.1\r\nX-A: 1\r\n\r\n');
  assert.equal(noHost.status, 400);
  assert.ok(noHost.id);
  assert.deepEqual(noHost.body, expected('WEIR_ERR_BAD_REQUEST', noHost.id!));
  const lookalike = await rawJson('GET /ok HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\n');
  assert.deepEqual(lookalike.body, expected('WEIR_ERR_BAD_REQUEST', lookalike.id!));
  // refused by Node's parser (bare LF): the listener's raw reply, same body
  const parser = await rawJson('GET /ok HTTP/1.1\nHost: x\n\n');
  assert.equal(parser.status, 400);
  assert.deepEqual(parser.body, expected('WEIR_ERR_BAD_REQUEST', parser.id!));
  // a path refusal from the exchange
  const path = await rawJson('GET /ok/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(path.body, expected('WEIR_ERR_PATH_REJECTED', path.id!));
});

test('a refused WebSocket upgrade: the same body, the table message', async () => {
  const r = await rawJson('GET /ok HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.equal(r.status, 400);
  assert.deepEqual(r.body, expected('WEIR_ERR_UPGRADE_REFUSED', r.id!));
});

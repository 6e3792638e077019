/**
 * filter type "grpc-web": browsers' gRPC-Web (binary and -text) over HTTP/1.1 reaches a
 * grpc-js server as gRPC, and the answer comes back as gRPC-Web with the status in a
 * trailer frame (or in the headers for a trailers-only error).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const PROTO = fileURLToPath(new URL('../fixtures/grpc/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: String, defaults: true })) as unknown as { weirtest: { Echo: grpc.ServiceClientConstructor } };

let server: grpc.Server;
let weir: Weir;
let base = '';
let served = 0;

before(async () => {
  server = new grpc.Server();
  server.addService(pkg.weirtest.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<{ data: Buffer; fail: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      served++;
      const f = call.request.fail;
      if (f) return cb({ code: Number(f.split(':')[0]), details: f.split(':')[1] } as grpc.ServiceError);
      cb(null, { data: call.request.data, count: 1 });
    },
    ServerStream(call: grpc.ServerWritableStream<{ data: Buffer; count: number; fail: string }, unknown>) {
      for (let i = 0; i < call.request.count; i++) call.write({ data: call.request.data, count: i + 1 });
      if (call.request.fail) call.emit('error', { code: Number(call.request.fail.split(':')[0]), details: call.request.fail.split(':')[1] });
      else call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  ({ weir } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
filters { filter "gw" { type "grpc-web"; } }
routes { route "r" { matches { path-prefix "/weirtest.Echo/"; }; upstream "grpc"; filters "gw"; } }
upstreams { upstream "grpc" { target "127.0.0.1:${port}"; protocol "h2"; } }`));
  base = weir.url().replace(/\/$/, '');
});

after(async () => {
  await weir?.close();
  server?.forceShutdown();
});

/** Msg { bytes data = 1; int32 count = 2; string fail = 3; } encoded by hand. */
function msg(fields: { data?: Buffer; count?: number; fail?: string }): Buffer {
  const parts: Buffer[] = [];
  const varint = (n: number): Buffer => {
    const o: number[] = [];
    for (; n > 0x7f; n >>>= 7) o.push((n & 0x7f) | 0x80);
    o.push(n);
    return Buffer.from(o);
  };
  const lenField = (tag: number, b: Buffer): void => void parts.push(Buffer.from([tag]), varint(b.length), b);
  if (fields.data) lenField(0x0a, fields.data);
  if (fields.count) parts.push(Buffer.from([0x10, fields.count]));
  if (fields.fail) lenField(0x1a, Buffer.from(fields.fail));
  return Buffer.concat(parts);
}

const frame = (payload: Buffer, flag = 0): Buffer => {
  const h = Buffer.alloc(5);
  h[0] = flag;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
};

function frames(buf: Buffer): Array<{ flag: number; payload: Buffer }> {
  const out: Array<{ flag: number; payload: Buffer }> = [];
  for (let i = 0; i + 5 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 1);
    out.push({ flag: buf[i]!, payload: buf.subarray(i + 5, i + 5 + len) });
    i += 5 + len;
  }
  return out;
}

/** The `data` field (1) of a Msg. */
function dataOf(m: Buffer): string {
  if (m[0] !== 0x0a) return '';
  let len = 0;
  let i = 1;
  for (let shift = 0; ; shift += 7) {
    const b = m[i++]!;
    len |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
  }
  return m.subarray(i, i + len).toString('latin1');
}

async function call(method: string, body: Buffer, text: boolean): Promise<{ status: number; headers: Record<string, unknown>; frames: Array<{ flag: number; payload: Buffer }> }> {
  const res = await request(`${base}/weirtest.Echo/${method}`, {
    method: 'POST',
    headers: { 'content-type': text ? 'application/grpc-web-text' : 'application/grpc-web+proto', 'x-grpc-web': '1', accept: text ? 'application/grpc-web-text' : 'application/grpc-web' },
    body: text ? frame(body).toString('base64') : frame(body),
  });
  const raw = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, frames: frames(text ? Buffer.from(raw.toString('latin1'), 'base64') : raw) };
}

test('gRPC-Web binary unary over HTTP/1.1: the message, then the status in a trailer frame', async () => {
  const r = await call('Unary', msg({ data: Buffer.from('hello web') }), false);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(r.frames.length, 2);
  assert.equal(r.frames[0]!.flag, 0);
  assert.equal(dataOf(r.frames[0]!.payload), 'hello web');
  assert.equal(r.frames[1]!.flag, 0x80, 'trailer frame');
  assert.match(r.frames[1]!.payload.toString(), /grpc-status:0\r\n/);
  assert.equal(served, 1, 'grpc-js served it (it refuses a content-type other than application/grpc*)');
});

test('gRPC-Web text: base64 both ways, server streaming with a status after the messages', async () => {
  const r = await call('ServerStream', msg({ data: Buffer.from('tick'), count: 3, fail: '9:after three' }), true);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web-text', 'the client\'s own content-type comes back');
  assert.deepEqual(r.frames.slice(0, 3).map((f) => [f.flag, dataOf(f.payload)]), [[0, 'tick'], [0, 'tick'], [0, 'tick']]);
  const t = r.frames[3]!;
  assert.equal(t.flag, 0x80);
  assert.match(t.payload.toString(), /grpc-status:9\r\n/);
  assert.match(t.payload.toString(), /grpc-message:after%20three\r\n/);
});

test('gRPC-Web: a trailers-only error keeps its status in the response headers', async () => {
  const r = await call('Unary', msg({ fail: '5:no such thing' }), false);
  assert.equal(r.status, 200);
  assert.equal(r.headers['grpc-status'], '5');
  assert.equal(r.headers['grpc-message'], 'no%20such%20thing');
  assert.equal(r.frames.length, 0);
});

test('gRPC-Web text: a 300 KiB message survives base64 across chunk boundaries both ways', async () => {
  const data = Buffer.alloc(300 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = 32 + ((i * 7) % 90);
  const r = await call('Unary', msg({ data }), true);
  assert.equal(r.status, 200);
  assert.equal(r.frames[0]!.flag, 0);
  assert.equal(dataOf(r.frames[0]!.payload), data.toString('latin1'));
  assert.match(r.frames.at(-1)!.payload.toString(), /grpc-status:0\r\n/);
});

/**
 * HTTP/2 frame sequences sent raw after the connection preface to the h2c listener: frames
 * of every type (and unknown ones) with random flags, stream ids and payloads, HEADERS and
 * CONTINUATION carrying HPACK literal fields (valid pseudo-headers mixed with garbage), and
 * corpus/http2 sequences mutated. Weir must answer the preface with SETTINGS, close or go
 * quiet within bounds, never log an internal error, and keep serving.
 */
import fc from 'fast-check';
import { corpus, edits, applyEdits } from '../mutate.ts';
import type { FuzzEnv, FuzzTarget } from '../target.ts';
import { exchange } from './http1.ts';
import { INTERNAL, startProxyEnv, type ProxyEnv } from './proxy-env.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, stream: number, payload: Uint8Array, length = payload.length): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length & 0xffffff, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK literal field without indexing, name and value as raw (non-Huffman) strings. */
export function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0]), int7(n.length), n, int7(v.length), v]);
}

function int7(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  n -= 127;
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const name = fc.oneof(fc.constantFrom(':method', ':path', ':scheme', ':authority', ':status', ':protocol', 'content-length', 'te', 'connection', 'host', 'x-a', 'cookie', 'transfer-encoding', 'upgrade'), fc.string({ maxLength: 12 }));
const value = fc.oneof(fc.constantFrom('GET', 'POST', 'CONNECT', '/', '/a?b', '*', 'http', 'https', 'a.example', '0', '5', '-1', 'trailers', 'chunked', ''), fc.string({ maxLength: 40 }), fc.string({ maxLength: 3 }).map((s) => s.repeat(3000)));
const headerBlock = fc.tuple(
  fc.boolean(),
  fc.array(fc.tuple(name, value), { maxLength: 8 }),
).map(([valid, fields]) => Buffer.concat([
  ...(valid ? [literal(':method', 'GET'), literal(':path', '/h2'), literal(':scheme', 'http'), literal(':authority', 'a')] : []),
  ...fields.map(([n, v]) => literal(n, v)),
]));
const stream = fc.oneof(fc.constantFrom(0, 1, 3, 5, 2), fc.nat({ max: 2 ** 31 - 1 }), fc.constant(2 ** 32 - 1));
const bytes = fc.uint8Array({ maxLength: 64 });

const anyFrame: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.constantFrom(0x1, 0x9), fc.nat({ max: 255 }), stream, headerBlock).map(([t, f, s, p]) => frame(t, f, s, p)),
  fc.tuple(fc.nat({ max: 255 }), stream, bytes).map(([f, s, p]) => frame(0x0, f, s, p)), // DATA
  fc.tuple(fc.nat({ max: 1 }), fc.array(fc.tuple(fc.nat({ max: 10 }), fc.nat({ max: 2 ** 32 - 1 })), { maxLength: 6 })).map(([f, settings]) => {
    const p = Buffer.alloc(settings.length * 6);
    settings.forEach(([id, v], i) => {
      p.writeUInt16BE(id, i * 6);
      p.writeUInt32BE(v >>> 0, i * 6 + 2);
    });
    return frame(0x4, f, 0, p);
  }),
  fc.tuple(stream, fc.nat({ max: 2 ** 32 - 1 })).map(([s, inc]) => {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(inc >>> 0);
    return frame(0x8, 0, s, p); // WINDOW_UPDATE
  }),
  fc.tuple(stream, fc.nat({ max: 20 })).map(([s, code]) => frame(0x3, 0, s, Buffer.from([0, 0, 0, code]))), // RST_STREAM
  fc.tuple(fc.nat({ max: 1 }), bytes).map(([f, p]) => frame(0x6, f, 0, Buffer.from(p.slice(0, 8)))), // PING
  fc.tuple(stream, bytes).map(([s, p]) => frame(0x2, 0, s, p)), // PRIORITY
  fc.tuple(stream, bytes).map(([s, p]) => frame(0x7, 0, s, p)), // GOAWAY
  fc.tuple(stream, headerBlock).map(([s, p]) => frame(0x5, 0x4, s, Buffer.concat([Buffer.from([0, 0, 0, 2]), p]))), // PUSH_PROMISE
  fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 255 }), stream, bytes, fc.option(fc.nat({ max: 2 ** 24 - 1 }), { nil: undefined })).map(([t, f, s, p, len]) => frame(t, f, s, p, len)),
);

const generated = fc.array(anyFrame, { minLength: 1, maxLength: 12 }).map((fs) => Buffer.concat(fs));

export const http2: FuzzTarget<Buffer> = {
  name: 'http2',
  description: 'HTTP/2 frame sequences after the preface: every frame type and unknown ones, random flags, stream ids and lengths, HPACK literal headers; corpus sequences mutated',
  ext: 'h2',
  setup: startProxyEnv,
  arbitrary: fc.oneof(generated, fc.tuple(fc.nat(), edits(['\0\0\0\x04\0\0\0\0\0', '\0\0\0\x01\x05\0\0\0\x01', '\xff\xff\xff', '\x80\0\0\0'])).map(([i, e]) => {
    const seeds = corpus('http2').map((c) => c.bytes);
    return applyEdits(seeds[i % seeds.length]!, e);
  })),
  check: async (env: FuzzEnv, input: Buffer) => {
    const e = env as ProxyEnv;
    const { data, closed } = await exchange(e.port, Buffer.concat([PREFACE, input]));
    if (!closed) throw new Error(`no close within 10 s of the client's FIN (got ${data.length} bytes)`);
    if (data.length > 0 && data[3] !== 4) throw new Error(`the preface was not answered with SETTINGS: ${data.subarray(0, 16).toString('hex')}`);
    if (data.includes('WEIR_ERR_INTERNAL')) throw new Error('internal error in an answer');
    const log = e.newOutput();
    if (INTERNAL.test(log)) throw new Error(`Weir logged an internal error:\n${log.slice(0, 2000)}`);
  },
  encode: (b) => b,
  decode: (b) => b,
};

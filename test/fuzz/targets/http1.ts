/**
 * HTTP/1.1 requests mutated from valid seeds (corpus/http1), sent raw to `weir run`. Weir
 * must answer or close within 10 s of the client's FIN, start every answer with a status
 * line, give every error it makes a WEIR_ERR_* body, never log an internal error, and keep
 * serving.
 */
import net from 'node:net';
import { mutated } from '../mutate.ts';
import type { FuzzEnv, FuzzTarget } from '../target.ts';
import { INTERNAL, startProxyEnv, type ProxyEnv } from './proxy-env.ts';

export const HTTP1_TOKENS = [
  '\r\n', '\n', '\r', ' ', '\t', ':', '\0', '\x7f', '\xff', ',', ';', '"', '%', '%2f', '%00', '..', '/', '\\', '?', '#', '@',
  'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip, chunked\r\n', 'Content-Length: 0\r\n', 'Content-Length: 5\r\n',
  'Content-Length: 99999999999999999999\r\n', 'Content-Length: -1\r\n', 'Content-Length : 5\r\n', 'Content_Length: 5\r\n',
  '0\r\n\r\n', 'ffffffffffffffff\r\n', '5;ext=1\r\n', 'Host: a\r\n', 'Host: \r\n', 'Connection: close\r\n', 'Connection: upgrade\r\n',
  'Upgrade: websocket\r\n', 'Upgrade: h2c\r\n', 'Expect: 100-continue\r\n', 'X-Forwarded-For: 1.2.3.4\r\n', 'Forwarded: for=_x\r\n',
  'HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1\r\n\r\n', 'GET ', 'POST ', 'CONNECT ', 'OPTIONS * ', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'http://a/', 'https://a:99999/', '//', '/ws', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n',
  'a'.repeat(100), 'x-a: '.concat('b'.repeat(4000), '\r\n'), 'é', '\u00c3\u00a9',
];

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Sends `bytes`, half-closes, and collects everything until the server closes (bounded). */
export function exchange(port: number, bytes: Uint8Array, ms = 10_000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(bytes);
      s.end();
    });
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

/** What every answer to raw HTTP/1.1 bytes must look like. */
export function checkHttp1Answer(input: Buffer, data: Buffer, closed: boolean): void {
  if (!closed) throw new Error(`no close within 10 s of the client's FIN (got ${data.length} bytes)`);
  if (data.length === 0) return;
  // The h2c listener takes the HTTP/2 preface as HTTP/2: its answer starts with SETTINGS.
  if (input.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) {
    if (data[3] !== 4) throw new Error(`an HTTP/2 preface was not answered with SETTINGS: ${data.subarray(0, 16).toString('hex')}`);
    return;
  }
  const text = data.toString('latin1');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  if (!m) throw new Error(`answer does not start with a status line: ${JSON.stringify(text.slice(0, 80))}`);
  const head = text.slice(0, text.indexOf('\r\n\r\n') + 4 || undefined);
  const fromOrigin = /\r\nx-origin: yes\r\n/i.test(head);
  const status = Number(m[1]);
  if (status >= 400 && !fromOrigin && !text.slice(head.length, head.length + 2000).includes('"WEIR_ERR_')) {
    throw new Error(`an error answer Weir made has no WEIR_ERR_* body: ${JSON.stringify(text.slice(0, 300))}`);
  }
  if (text.includes('WEIR_ERR_INTERNAL')) throw new Error(`internal error in the answer: ${JSON.stringify(text.slice(0, 300))}`);
}

export const http1: FuzzTarget<Buffer> = {
  name: 'http1',
  description: 'HTTP/1.1 requests mutated from valid seeds (flips, protocol tokens, deletions, repeats), sent raw to `weir run`',
  ext: 'http',
  setup: startProxyEnv,
  arbitrary: mutated('http1', HTTP1_TOKENS),
  check: async (env: FuzzEnv, input: Buffer) => {
    const e = env as ProxyEnv;
    const { data, closed } = await exchange(e.port, input);
    checkHttp1Answer(input, data, closed);
    const log = e.newOutput();
    if (INTERNAL.test(log)) throw new Error(`Weir logged an internal error:\n${log.slice(0, 2000)}`);
  },
  encode: (b) => b,
  decode: (b) => b,
};

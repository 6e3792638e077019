/** A raw client: sends bytes, collects responses, tells whether the server closed. */
import net from 'node:net';
import tls from 'node:tls';

export interface WireResult {
  /** Final (non-1xx) responses, in order. */
  readonly responses: Array<{ status: number; head: string; body: string }>;
  readonly closed: boolean;
  readonly raw: string;
}

/** Parses as many complete responses (Content-Length framed) as `raw` holds. */
export function parseResponses(raw: string, bodiless = false): WireResult['responses'] {
  const out: WireResult['responses'] = [];
  let i = 0;
  for (let guard = 0; guard < 100 && i < raw.length; guard++) {
    const end = raw.indexOf('\r\n\r\n', i);
    if (end === -1) break;
    const head = raw.slice(i, end);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) break;
    const status = Number(m[1]);
    if (!bodiless && status >= 200 && /\r\ntransfer-encoding: *chunked/i.test(head)) {
      // Chunked: sizes, data, then the last chunk and an empty trailer section.
      let j = end + 4;
      let body = '';
      let complete = false;
      for (let n = 0; n < 10_000; n++) {
        const eol = raw.indexOf('\r\n', j);
        if (eol === -1) break;
        const size = parseInt(raw.slice(j, eol), 16);
        if (size === 0) {
          const fin = raw.indexOf('\r\n\r\n', eol);
          if (fin === -1) break;
          j = fin + 4;
          complete = true;
          break;
        }
        if (eol + 2 + size + 2 > raw.length) break;
        body += raw.slice(eol + 2, eol + 2 + size);
        j = eol + 2 + size + 2;
      }
      if (!complete) break;
      out.push({ status, head, body });
      i = j;
      continue;
    }
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    const len = cl && !bodiless ? Number(cl[1]) : 0;
    if (end + 4 + len > raw.length) break;
    if (status >= 200 || status < 100) out.push({ status, head, body: raw.slice(end + 4, end + 4 + len) });
    i = end + 4 + len;
  }
  return out;
}

/**
 * Writes `bytes`; resolves once `expect` final responses arrived (then closes), or the server
 * closed, or `timeoutMs` passed.
 */
export function wire(port: number, bytes: string | Buffer, opts: { expect?: number; timeoutMs?: number; tls?: tls.ConnectionOptions } = {}): Promise<WireResult> {
  if (typeof bytes === 'string') bytes = Buffer.from(bytes, 'latin1');
  const out = bytes;
  return new Promise((resolve) => {
    const s: net.Socket = opts.tls ? tls.connect({ port, host: '127.0.0.1', ...opts.tls }) : net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    // Responses to HEAD carry Content-Length but no body.
    const head = out.subarray(0, 5).toString('latin1') === 'HEAD ';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      s.destroy();
      resolve({ responses: parseResponses(raw, head), closed, raw });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 5000);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (opts.expect !== undefined && parseResponses(Buffer.concat(chunks).toString('latin1'), head).length >= opts.expect) finish(false);
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
    s.once(opts.tls ? 'secureConnect' : 'connect', () => s.write(out));
  });
}

/** Real upstream servers on port 0 for tests. */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface Origin {
  readonly port: number;
  readonly url: string;
  /** Every request head the origin saw. */
  readonly seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: Buffer }>;
  close(): Promise<void>;
}

export type OriginHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** An origin that records requests; the default handler echoes the request as JSON. */
export async function startOrigin(handler?: OriginHandler, opts: { collectBody?: boolean } = {}): Promise<Origin> {
  const seen: Origin['seen'] = [];
  const server = http.createServer((req, res) => {
    const collect = opts.collectBody !== false;
    const chunks: Buffer[] = [];
    if (!collect) {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
      return (handler ?? echo)(req, res, Buffer.alloc(0));
    }
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body });
      (handler ?? echo)(req, res, body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

export const echo: OriginHandler = (req, res, body) => {
  const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
  res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' });
  res.end(out);
};

/** An h2c (HTTP/2 cleartext) origin that echoes and sends trailers. */
export async function startH2Origin(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-h2-origin': 'yes' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(Buffer.concat(chunks).length) }));
      stream.end(JSON.stringify({ path: headers[':path'], method: headers[':method'], te: headers['te'] ?? null, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

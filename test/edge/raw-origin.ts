/**
 * An origin that records exactly the bytes reaching it (per connection) and also parses
 * them with Node's strict parser to answer, so tests can compare what was sent upstream.
 */
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  connection: number;
}

export interface RawOrigin {
  readonly port: number;
  /** Raw bytes per connection, in connection order. */
  readonly connections: Buffer[][];
  readonly requests: SeenRequest[];
  /** Parse errors at the origin (a request that reached it broken). */
  readonly errors: string[];
  /** Whether each connection (same index) has closed. */
  readonly closed: boolean[];
  /** Every chunk in arrival order (for "nothing arrived since" checks). */
  readonly chunks: Buffer[];
  rawText(): string;
  close(): Promise<void>;
}

export async function startRawOrigin(): Promise<RawOrigin> {
  const connections: Buffer[][] = [];
  const requests: SeenRequest[] = [];
  const errors: string[] = [];
  const chunks: Buffer[] = [];
  const closed: boolean[] = [];
  const h1 = http.createServer({ insecureHTTPParser: false, keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const conn = (req.socket as unknown as { weirConn: number }).weirConn;
      requests.push({ method: req.method!, url: req.url!, httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks), connection: conn });
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '9' });
      res.end('origin-ok');
    });
    req.on('error', (e) => errors.push(`request: ${e.message}`));
  });
  h1.on('clientError', (err, socket) => {
    errors.push(`clientError: ${err.message}`);
    socket.destroy();
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const idx = connections.length;
    const log: Buffer[] = [];
    connections.push(log);
    closed.push(false);
    socket.once('close', () => (closed[idx] = true));
    // Node's http server reads through JS 'data' events when given a plain Duplex.
    const d = new Duplex({
      read() {
        socket.resume();
      },
      write(chunk: Buffer, _e, cb) {
        socket.write(chunk, cb);
      },
      final(cb) {
        socket.end();
        cb();
      },
      destroy(err, cb) {
        socket.destroy();
        cb(err);
      },
    });
    (d as unknown as { weirConn: number }).weirConn = idx;
    socket.on('data', (c: Buffer) => {
      log.push(c);
      chunks.push(c);
      if (!d.push(c)) socket.pause();
    });
    socket.on('end', () => d.push(null));
    socket.on('close', () => d.destroy());
    socket.on('error', () => d.destroy());
    h1.emit('connection', d);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    requests,
    errors,
    chunks,
    closed,
    rawText: () => connections.map((c) => Buffer.concat(c).toString('latin1')).join('\n--\n'),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

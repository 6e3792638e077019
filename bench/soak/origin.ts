/**
 * The endurance origin, run as its own process so its memory and CPU are not counted as
 * Weir's: HTTP/1.1 on `--ports` ports (two by default, for the balancer) answering
 *   GET /small         a 64-byte body
 *   GET /big           1 MiB (the same bytes every time, so clients check the length)
 *   POST /upload       {"bytes": N}: the request body's length
 *   GET …/slow?ms=N    answers after N ms (any path ending in /slow)
 *   upgrade (any path) a WebSocket echo (ws)
 * and prints its ports as one JSON line on stdout once listening.
 *
 *   node bench/soak/origin.ts [--ports=2] [--port=P ...]   (--port reuses fixed ports: a restarted origin)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export const SMALL_BODY = 'weir endurance origin: sixty-four bytes of small response body ok\n'.slice(0, 64);
export const BIG_BYTES = 1024 * 1024;
const big = Buffer.alloc(BIG_BYTES, 'w');

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://origin');
  if (req.method === 'POST' || req.method === 'PUT') {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes }));
    });
    req.on('error', () => res.destroy());
    return;
  }
  req.resume();
  if (url.pathname === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG_BYTES });
    res.end(big);
  } else if (url.pathname.endsWith('/slow')) {
    const t = setTimeout(() => res.end(SMALL_BODY), Number(url.searchParams.get('ms') ?? 5000));
    res.on('close', () => clearTimeout(t));
  } else {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL_BODY.length });
    res.end(SMALL_BODY);
  }
}

async function listen(port: number): Promise<number> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  wss.on('error', () => {});
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const fixed = args.filter((a) => a.startsWith('--port=')).map((a) => Number(a.slice(7)));
  const n = Number(args.find((a) => a.startsWith('--ports='))?.slice(8) ?? 2);
  const ports = fixed.length ? fixed : Array.from({ length: n }, () => 0);
  const bound = await Promise.all(ports.map(listen));
  process.stdout.write(`${JSON.stringify(bound)}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

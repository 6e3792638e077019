/** A separate listener for /metrics (`observability { metrics { address "…" } }`). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.ts';
import type { ProxyMetrics } from '../observability/metrics.ts';
import { parseHostPort } from './address.ts';

export interface MetricsServer {
  readonly key: string;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startMetricsServer(address: string, path: string, metrics: ProxyMetrics, logger: Logger): Promise<MetricsServer> {
  const { host, port } = parseHostPort(address);
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, resolve);
  });
  const a = server.address() as AddressInfo;
  logger.info({ address: `${a.address}:${a.port}${path}` }, 'metrics listening');
  return {
    key: `${address}${path}`,
    address: { host: a.address, port: a.port },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

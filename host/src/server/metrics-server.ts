/** A separate listener for /metrics (`observability { metrics { address "…" } }`). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ObservabilityConfig } from '../config/types.ts';
import { WeirError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { renderMetrics, type ProxyMetrics } from '../observability/metrics.ts';
import { parseHostPort } from './address.ts';

export interface MetricsServer {
  /** The configured address (a changed path keeps the server). */
  readonly key: string;
  readonly address: { host: string; port: number };
  /** Serves metrics on `path` from now on. */
  setPath(path: string): void;
  close(): Promise<void>;
}

/** Binds the metrics listener; a bind failure is WEIR_ERR_LISTEN with the address. */
export async function startMetricsServer(address: string, path: string, metrics: ProxyMetrics, logger: Logger): Promise<MetricsServer> {
  const { host, port } = parseHostPort(address);
  let served = path;
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== served) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    renderMetrics(metrics.registry, req.headers.accept).then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new WeirError('WEIR_ERR_LISTEN', `metrics listener cannot bind ${address}: ${err.message}`, { cause: err })));
    server.listen({ host, port }, resolve);
  });
  server.removeAllListeners('error');
  // Accept errors (EMFILE) after the bind: report them, keep the listener.
  server.on('error', (err) => {
    metrics.errors.labels('WEIR_ERR_LISTEN').inc();
    logger.error({ code: 'WEIR_ERR_LISTEN', address, err: err.message }, 'metrics listener error');
  });
  const a = server.address() as AddressInfo;
  logger.info({ address: `${a.address}:${a.port}${path}` }, 'metrics listening');
  return {
    key: address,
    address: { host: a.address, port: a.port },
    setPath: (p) => {
      served = p;
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * The metrics listener of a reload, as a transaction step: a new address is bound before the
 * old one closes (at commit); a bind failure throws with the running one untouched.
 */
export async function planMetricsServer(
  current: MetricsServer | undefined,
  cfg: ObservabilityConfig['metrics'],
  wanted: boolean,
  metrics: ProxyMetrics,
  logger: Logger,
): Promise<{ commit(): MetricsServer | undefined; abort(): void }> {
  const address = wanted && cfg.enabled && cfg.address ? cfg.address : undefined;
  if (current && current.key === address) {
    return { commit: () => (current.setPath(cfg.path), current), abort: () => {} };
  }
  const next = address ? await startMetricsServer(address, cfg.path, metrics, logger) : undefined;
  return {
    commit: () => {
      void current?.close();
      return next;
    },
    abort: () => void next?.close(),
  };
}

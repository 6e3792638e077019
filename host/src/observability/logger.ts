/**
 * Logging with pino. Writes go through an asynchronous SonicBoom destination, so the
 * write(2) calls run on libuv's thread pool and the proxy thread only appends to a buffer.
 * (A pino transport would add a worker thread per process; not worth it for stdout.)
 */
import { pino, type Logger, type Level } from 'pino';
import type { ObservabilityConfig } from '../config/types.ts';

export type { Logger };

export interface LoggerOptions {
  readonly level: Level | 'silent';
  readonly format: 'json' | 'pretty';
  /** Destination: a file descriptor (1 = stdout) or a path. */
  readonly destination?: number | string;
  /** Synchronous writes (tests, CLI commands that exit right after). */
  readonly sync?: boolean;
}

export function createLogger(opts: LoggerOptions): Logger {
  const dest = pino.destination({
    dest: opts.destination ?? 1,
    sync: opts.sync ?? false,
    // No minimum batch: lines appear promptly; lines written while a write is in flight still coalesce.
    minLength: 0,
  });
  return pino(
    {
      level: opts.level,
      base: { service: 'weir' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/** The access log is its own logger so it can go elsewhere than the event log. */
export function createAccessLogger(cfg: ObservabilityConfig['logging'], sync = false): Logger | undefined {
  if (cfg.accessLog === false) return undefined;
  return createLogger({
    level: 'info',
    format: cfg.format,
    destination: typeof cfg.accessLog === 'string' ? cfg.accessLog : 1,
    sync,
  });
}

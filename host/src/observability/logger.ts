/**
 * Logging with pino. Writes go through an asynchronous SonicBoom destination, so the
 * write(2) calls run on libuv's thread pool and the proxy thread only appends to a buffer.
 * (A pino transport would add a worker thread per process; not worth it for stdout.)
 */
import { pino, type Logger, type Level } from 'pino';
import type { ObservabilityConfig } from '../config/types.ts';
import { SINK_BUFFER_BYTES, guardSink, whenOpen, type Destination, type SinkErrorCounter } from './sinks.ts';
import { prettyDestination } from './pretty.ts';

export type { Logger };

export interface LoggerOptions {
  readonly level: Level | 'silent';
  readonly format: 'json' | 'pretty';
  /** Destination: a file descriptor (1 = stdout) or a path. */
  readonly destination?: number | string;
  /** Synchronous writes (tests, CLI commands that exit right after). */
  readonly sync?: boolean;
  /** Names the sink in failure reports and `weir_log_sink_errors_total` (default: main). */
  readonly sink?: { readonly name: string; readonly what: string };
  /** Counts this sink's failures (sinks.ts). */
  readonly errors?: SinkErrorCounter;
}

/** Longest a shutdown waits for a log file's last write and close. */
const CLOSE_WAIT_MS = 2000;

const destinations = new WeakMap<Logger, { dest: Destination; unguard: () => void }>();

export function createLogger(opts: LoggerOptions): Logger {
  const dest = pino.destination({
    dest: opts.destination ?? 1,
    sync: opts.sync ?? false,
    // No minimum batch: lines appear promptly; lines written while a write is in flight still coalesce.
    minLength: 0,
    // A failing target must not grow memory without bound: past this, new lines are dropped.
    maxLength: SINK_BUFFER_BYTES,
  }) as unknown as Destination;
  const sink = opts.sink ?? { name: 'main', what: 'log' };
  const unguard = guardSink(dest, sink.name, sink.what, opts.errors, typeof opts.destination === 'string' ? opts.destination : undefined);
  const logger = pino(
    {
      level: opts.level,
      base: { service: 'weir' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.format === 'pretty' ? prettyDestination(dest as unknown as { write(chunk: string): boolean }) : dest) as unknown as pino.DestinationStream,
  );
  destinations.set(logger, { dest, unguard });
  return logger;
}

/** Resolves once the logger's file is open; rejects with WEIR_ERR_LOG_SINK and the path if not. */
export function loggerReady(logger: Logger, what: string): Promise<void> {
  const d = destinations.get(logger);
  return d ? whenOpen(d.dest, what) : Promise.resolve();
}

/**
 * Flushes and closes a logger made by createLogger (a replaced access log, shutdown). The
 * promise settles once buffered lines are written and the file is closed, so a shutdown that
 * awaits it loses no line; callers that only swap a logger need not await.
 */
export function closeLogger(logger: Logger): Promise<void> {
  const d = destinations.get(logger);
  if (!d) return Promise.resolve();
  d.unguard();
  const dest = d.dest as unknown as { end(): void; once(ev: string, fn: () => void): void; destroyed?: boolean };
  return new Promise<void>((resolve) => {
    if (dest.destroyed) return resolve();
    dest.once('close', resolve);
    // A file that never opened never closes either: do not hold a shutdown on it.
    setTimeout(resolve, CLOSE_WAIT_MS).unref();
    // A failing target closes with an error; the guard has already reported it.
    dest.once('error', resolve);
    try {
      dest.end();
    } catch {
      resolve();
    }
  });
}

/** The access log is its own logger so it can go elsewhere than the event log. */
export function createAccessLogger(cfg: ObservabilityConfig['logging'], sync = false, errors?: SinkErrorCounter): Logger | undefined {
  if (cfg.accessLog === false) return undefined;
  return createLogger({
    level: 'info',
    format: cfg.format,
    destination: typeof cfg.accessLog === 'string' ? cfg.accessLog : 1,
    sync,
    sink: { name: 'access', what: 'access log' },
    errors,
  });
}

/**
 * The access log of a reload, as a transaction step: a changed target is opened before
 * anything is committed (an unopenable one fails the reload); `commit` returns the logger
 * to use and closes the replaced one. An unchanged target keeps its logger (which follows
 * its path across rotations by itself).
 */
export async function planAccessLog(
  current: Logger | undefined,
  from: ObservabilityConfig['logging'],
  to: ObservabilityConfig['logging'],
  errors?: SinkErrorCounter,
): Promise<{ commit(): Logger | undefined; abort(): void }> {
  if (from.accessLog === to.accessLog && from.format === to.format) return { commit: () => current, abort: () => {} };
  const next = createAccessLogger(to, false, errors);
  if (next) {
    try {
      await loggerReady(next, 'access log');
    } catch (err) {
      closeLogger(next);
      throw err;
    }
  }
  return {
    commit: () => {
      if (current) closeLogger(current);
      return next;
    },
    abort: () => {
      if (next) closeLogger(next);
    },
  };
}

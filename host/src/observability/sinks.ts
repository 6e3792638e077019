/**
 * Log sinks that cannot take the proxy down. A destination (stdout or a file) that fails
 * while Weir runs (disk full, a deleted or unwritable directory, a closed pipe) is reported
 * once on stderr with WEIR_ERR_LOG_SINK, counted in `weir_log_sink_errors_total{sink}`, and
 * serving continues; lines that cannot be written are dropped past a bounded buffer.
 *
 * A file sink follows its path: when the path stops naming the open file (rotated by rename,
 * deleted), the sink reopens it, and keeps trying while the directory is gone or unwritable.
 * Unwritable paths are refused before anything runs: config/log-target.ts when a config is
 * loaded, and `whenOpen` at start and reload.
 */
import { closeSync, fstat, openSync, stat, writeSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import { WeirError } from '../errors.ts';

/** The parts of a SonicBoom destination a guard uses. */
export interface Destination extends EventEmitter {
  fd: number;
  reopen(file?: string): void;
  flushSync(): void;
}

/** SonicBoom's buffers, read by the bounded exit flush. */
interface Buffers {
  _bufs?: Array<string | Buffer>;
  _writingBuf?: string | Buffer;
  _writing?: boolean;
  _len?: number;
  destroyed?: boolean;
}

/** Counts sink failures (a prom-client counter with a `sink` label fits). */
export interface SinkErrorCounter {
  labels(sink: string): { inc(): void };
}

/** Most bytes a sink buffers while its target fails; newer lines are dropped beyond it. */
export const SINK_BUFFER_BYTES = 16 * 1024 * 1024;
/** How often a file sink checks that its path still names the open file. */
const FOLLOW_MS = 1000;

/** Resolves once the destination's file is open; rejects with WEIR_ERR_LOG_SINK if it cannot be. */
export function whenOpen(dest: Destination, what: string): Promise<void> {
  if (dest.fd >= 0) return Promise.resolve();
  return new Promise((resolvePromise, reject) => {
    const onReady = (): void => {
      dest.off('error', onError);
      resolvePromise();
    };
    const onError = (err: Error): void => {
      dest.off('ready', onReady);
      reject(new WeirError('WEIR_ERR_LOG_SINK', `${what}: ${err.message}`, { cause: err }));
    };
    dest.once('ready', onReady);
    dest.once('error', onError);
  });
}

/**
 * Keeps a destination's errors from ending the process: each one is counted; the first of
 * a run of failures is written to stderr, and so is the recovery. A file destination also
 * follows its path (see the module comment). Returns a function that stops the following.
 */
export function guardSink(dest: Destination, sink: string, what: string, counter?: SinkErrorCounter, path?: string): () => void {
  const name = `${what}${path ? ` ${path}` : ''}`;
  // Two runs of failures: writes (cleared by a good write) and reopening a moved path
  // (cleared by the reopen; writes to the old file may well succeed meanwhile).
  const failing = { write: false, path: false };
  const report = (kind: keyof typeof failing, err: Error): void => {
    counter?.labels(sink).inc();
    if (failing[kind]) return;
    failing[kind] = true;
    process.stderr.write(`weir: WEIR_ERR_LOG_SINK: ${name}: ${err.message}; serving continues\n`);
  };
  dest.on('error', (err: Error) => report('write', err));
  dest.on('write', () => {
    if (!failing.write) return;
    failing.write = false;
    process.stderr.write(`weir: ${name} is writable again\n`);
  });
  // SonicBoom's flushSync (pino runs it at exit) retries a failing write forever (ENOSPC
  // would hang the exit): one pass instead, giving up at the first error.
  dest.flushSync = () => {
    const d = dest as Destination & Buffers;
    if (d.destroyed || d.fd < 0) return;
    const parts = [...(!d._writing && d._writingBuf ? [d._writingBuf] : []), ...(d._bufs ?? [])];
    d._bufs = [];
    if (!d._writing) d._writingBuf = '';
    d._len = d._writing && d._writingBuf ? Buffer.byteLength(d._writingBuf) : 0;
    try {
      for (const part of parts) {
        let buf = Buffer.isBuffer(part) ? part : Buffer.from(part);
        while (buf.length > 0) buf = buf.subarray(writeSync(d.fd, buf));
      }
    } catch (err) {
      report('write', err as Error);
    }
  };
  if (!path) return () => {};
  let reopening = false;
  const follow = (): void => {
    if (reopening || dest.fd < 0) return;
    fstat(dest.fd, (err, open) => {
      if (err) return;
      stat(path, (err2, named) => {
        if (!err2 && named.ino === open.ino && named.dev === open.dev) return;
        // The path names another file or none: reopen, if the path can be opened now.
        try {
          closeSync(openSync(path, 'a'));
        } catch (e) {
          report('path', e as Error);
          return;
        }
        reopening = true;
        dest.once('ready', () => {
          reopening = false;
          if (!failing.path) return;
          failing.path = false;
          process.stderr.write(`weir: ${name} reopened\n`);
        });
        dest.reopen();
      });
    });
  };
  const timer = setInterval(follow, FOLLOW_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Watches that keep slow clients from holding resources without bound:
 * - a minimum request body rate (`limits min-request-body-rate`), checked over 5-second
 *   windows by one shared ticker;
 * - a send timeout (upstream `timeouts write`): a response that makes no progress towards
 *   the client for that long ends the exchange.
 */
import type { EventEmitter } from 'node:events';

/** Length of one body rate window. */
export const BODY_RATE_WINDOW_MS = 5_000;
const TICK_MS = 1_000;

interface BodyEntry {
  readonly minRate: number;
  readonly bytes: () => number;
  readonly stalled: () => boolean;
  readonly onSlow: () => void;
  windowStart: number;
  windowBytes: number;
}

const bodies = new Set<BodyEntry>();
let ticker: NodeJS.Timeout | undefined;

function tick(): void {
  const now = performance.now();
  for (const e of bodies) {
    if (now - e.windowStart < BODY_RATE_WINDOW_MS) continue;
    const n = e.bytes();
    // Paused by backpressure (the upstream reads slowly): not the client's fault.
    if (!e.stalled() && ((n - e.windowBytes) * 1000) / (now - e.windowStart) < e.minRate) {
      bodies.delete(e);
      e.onSlow();
      continue;
    }
    e.windowStart = now;
    e.windowBytes = n;
  }
  if (bodies.size === 0 && ticker !== undefined) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

/**
 * Calls `onSlow` once if fewer than `minRate` bytes per second (`bytes()` counts them) arrive
 * over a window in which the reader was not `stalled()`. Returns the function that stops
 * watching (call it when the body is complete or the exchange ends).
 */
export function watchBodyRate(minRate: number, bytes: () => number, stalled: () => boolean, onSlow: () => void): () => void {
  if (minRate <= 0) return noop;
  const e: BodyEntry = { minRate, bytes, stalled, onSlow, windowStart: performance.now(), windowBytes: bytes() };
  bodies.add(e);
  if (ticker === undefined) {
    ticker = setInterval(tick, TICK_MS);
    ticker.unref();
  }
  return () => void bodies.delete(e);
}

/** The part of a response stream the send watch needs (ServerResponse, Http2ServerResponse). */
export interface SendTarget extends EventEmitter {
  readonly writableLength: number;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
}

const kSendWatch = Symbol('weir.send-watch');

/**
 * Starts (once per response) the send timeout: while bytes wait in `res`'s buffer, they must
 * drain a little at least every `ms`, else `onTimeout` runs once. Stops when the response is
 * finished or closed. Call it when a write reports backpressure.
 */
export function watchSend(res: SendTarget, ms: number, onTimeout: () => void): void {
  const r = res as SendTarget & { [kSendWatch]?: true };
  if (r[kSendWatch] || ms <= 0) return;
  r[kSendWatch] = true;
  let last = res.writableLength;
  let lastProgress = performance.now();
  let drained = false;
  const onDrain = (): void => void (drained = true);
  const stop = (): void => {
    clearInterval(timer);
    res.off('drain', onDrain);
    res.off('finish', stop);
    res.off('close', stop);
    r[kSendWatch] = undefined;
  };
  const timer = setInterval(() => {
    if (res.destroyed || res.writableFinished) return stop();
    const len = res.writableLength;
    const now = performance.now();
    if (len === 0 || len < last || drained) lastProgress = now;
    last = len;
    drained = false;
    if (now - lastProgress >= ms) {
      stop();
      onTimeout();
    }
  }, Math.max(10, Math.min(TICK_MS, Math.floor(ms / 4))));
  timer.unref();
  res.on('drain', onDrain);
  res.once('finish', stop);
  res.once('close', stop);
}

function noop(): void {}

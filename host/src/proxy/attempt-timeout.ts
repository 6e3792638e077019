/**
 * The upstream's `timeouts request`: a deadline on one attempt's whole exchange with the
 * upstream, from dispatch to the end of the response body (undici's own timeouts are per
 * phase: the head, then each gap between body reads, which is `timeouts read`).
 */
import type { Dispatcher } from 'undici';
import { WeirError } from '../errors.ts';

/** What the timer needs of an exchange. */
export interface Attempt {
  controller: Dispatcher.DispatchController | undefined;
  retrying: boolean;
  attemptTimer: NodeJS.Timeout | undefined;
  fail(err: unknown): void;
}

/**
 * Starts the attempt's deadline (replacing the previous attempt's). When it passes, the
 * upstream call is aborted with WEIR_ERR_UPSTREAM_TIMEOUT, which the exchange retries under
 * `retry-on "timeout"` while the response head has not been sent, and otherwise turns into
 * a 504 or a reset of a response already under way.
 */
export function armAttemptTimeout(ex: Attempt, ms: number): NodeJS.Timeout | undefined {
  clearTimeout(ex.attemptTimer);
  if (!(ms > 0)) return undefined;
  return setTimeout(() => {
    ex.attemptTimer = undefined;
    const err = new WeirError('WEIR_ERR_UPSTREAM_TIMEOUT', `upstream request timeout of ${ms} ms exceeded`);
    const c = ex.controller;
    if (c === undefined) return ex.fail(err); // still queued for a connection
    if (c.aborted) return; // already ending (a retry or the client leaving)
    ex.retrying = false;
    c.abort(err);
  }, ms);
}

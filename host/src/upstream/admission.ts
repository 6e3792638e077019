/**
 * Admission to upstream connections, so that pool exhaustion degrades per client rather than
 * for everyone:
 * - a cap on the upstream requests one client address has in flight (or waiting) at once
 *   (`limits max-upstream-requests-per-client`, 503 WEIR_ERR_CLIENT_LIMIT over it);
 * - a FIFO wait for a free connection of an HTTP/1 target whose pool is full, bounded by
 *   `connection-pool queue-timeout` (503 WEIR_ERR_QUEUE_TIMEOUT), instead of undici's
 *   unbounded queue.
 */
import { WeirError } from '../errors.ts';
import type { Target } from './upstream.ts';

interface Waiter {
  go: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class Admission {
  private readonly perClient = new Map<string, number>();
  private readonly queues = new WeakMap<Target, Waiter[]>();

  /** Counts one upstream request for `client`; false (and nothing counted) at the cap (0 = no cap). */
  enterClient(client: string, cap: number): boolean {
    const n = this.perClient.get(client) ?? 0;
    if (cap > 0 && n >= cap) return false;
    this.perClient.set(client, n + 1);
    return true;
  }

  /** Undoes one `enterClient`. */
  leaveClient(client: string): void {
    const n = (this.perClient.get(client) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(client);
    else this.perClient.set(client, n);
  }

  /** Upstream requests `client` has in flight or waiting. */
  clientCount(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /**
   * Runs `go` now when `target` has fewer than `max` requests in flight, else once one ends
   * (FIFO); calls `fail` with WEIR_ERR_QUEUE_TIMEOUT if none ends within `timeoutMs`.
   * Returns a cancel function (for a client that leaves while waiting).
   */
  whenFree(target: Target, max: number, timeoutMs: number, go: () => void, fail: (err: WeirError) => void): () => void {
    const q = this.queues.get(target);
    if (target.localInFlight < max && (q === undefined || q.length === 0)) {
      go();
      return noop;
    }
    const w: Waiter = { go, timer: undefined };
    w.timer = setTimeout(() => {
      w.go = undefined;
      this.prune(target);
      fail(new WeirError('WEIR_ERR_QUEUE_TIMEOUT', `no connection to ${target.address} became free within ${timeoutMs} ms`));
    }, timeoutMs);
    if (q) q.push(w);
    else this.queues.set(target, [w]);
    return () => {
      if (w.go === undefined) return;
      w.go = undefined;
      clearTimeout(w.timer);
      this.prune(target);
    };
  }

  /** A request of `target` ended: start waiters while it has room. */
  freed(target: Target, max: number): void {
    const q = this.queues.get(target);
    if (q === undefined) return;
    while (q.length > 0 && target.localInFlight < max) {
      const w = q.shift()!;
      const go = w.go;
      if (go === undefined) continue;
      w.go = undefined;
      clearTimeout(w.timer);
      go();
    }
  }

  private prune(target: Target): void {
    const q = this.queues.get(target);
    if (q === undefined) return;
    let i = 0;
    while (i < q.length && q[i]!.go === undefined) i++;
    if (i > 0) q.splice(0, i);
  }
}

function noop(): void {}

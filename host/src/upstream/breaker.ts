/**
 * The `circuit-breaker` of an upstream or a route: closed → open after `failure-threshold`
 * failed attempts in a row; open fails fast for `timeout-seconds`; then half-open lets up to
 * `half-open-max-requests` attempts through at once, `success-threshold` successes in a row
 * close it and one failure opens it again. State is per proxy thread.
 */
import type { CircuitBreakerConfig, RouteConfig } from '../config/types.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** One admitted attempt; settle it exactly once (success, failure, or release with no outcome). */
export interface BreakerTicket {
  readonly breaker: CircuitBreaker;
  /** Counted in the half-open probes in flight. */
  readonly probe: boolean;
  settled: boolean;
}

export class CircuitBreaker {
  readonly config: CircuitBreakerConfig;
  private mode: 'closed' | 'open' = 'closed';
  private failures = 0;
  private successes = 0;
  private openedAt = 0;
  private probes = 0;
  /** Times it opened, for the admin API and metrics. */
  opens = 0;

  constructor(config: CircuitBreakerConfig) {
    this.config = config;
  }

  /** `open` until its timeout passes, then `half-open` (probing) until it closes or opens again. */
  state(now = Date.now()): BreakerState {
    if (this.mode === 'closed') return 'closed';
    return now - this.openedAt >= this.config.timeoutMs ? 'half-open' : 'open';
  }

  /** A ticket for one attempt, or undefined when the breaker refuses it (503 WEIR_ERR_CIRCUIT_OPEN). */
  admit(now = Date.now()): BreakerTicket | undefined {
    const s = this.state(now);
    if (s === 'closed') return { breaker: this, probe: false, settled: false };
    if (s === 'open' || this.probes >= this.config.halfOpenMaxRequests) return undefined;
    this.probes++;
    return { breaker: this, probe: true, settled: false };
  }

  /** Records the attempt's outcome: `true` success, `false` failure, `undefined` none (the client left, a queue timed out). */
  settle(t: BreakerTicket, ok: boolean | undefined, now = Date.now()): void {
    if (t.settled) return;
    t.settled = true;
    if (t.probe) this.probes--;
    if (ok === undefined) return;
    if (this.mode === 'closed') {
      if (ok) this.failures = 0;
      else if (++this.failures >= this.config.failureThreshold) this.open(now);
      return;
    }
    // Open or half-open: only outcomes of attempts admitted as probes decide (older ones
    // were sent while closed and say nothing about recovery).
    if (!t.probe || this.state(now) !== 'half-open') return;
    if (!ok) return this.open(now);
    if (++this.successes >= this.config.successThreshold) {
      this.mode = 'closed';
      this.failures = 0;
      this.successes = 0;
    }
  }

  private open(now: number): void {
    this.mode = 'open';
    this.openedAt = now;
    this.successes = 0;
    this.failures = 0;
    this.opens++;
  }
}

/**
 * The routes' own breakers of one proxy (keyed by its core): a route keeps its breaker across
 * reloads while its thresholds stay the same.
 */
class RouteBreakers {
  private readonly byName = new Map<string, CircuitBreaker>();
  private readonly byConfig = new WeakMap<RouteConfig, CircuitBreaker>();

  get(route: RouteConfig, cfg: CircuitBreakerConfig): CircuitBreaker {
    const known = this.byConfig.get(route);
    if (known !== undefined) return known;
    let b = this.byName.get(route.name);
    if (b === undefined || JSON.stringify(b.config) !== JSON.stringify(cfg)) {
      b = new CircuitBreaker(cfg);
      this.byName.set(route.name, b);
    }
    this.byConfig.set(route, b);
    return b;
  }
}

const routeBreakersOf = new WeakMap<object, RouteBreakers>();

/** The `circuit-breaker` of `route` in the proxy `owner` (its ProxyCore), if the route has one. */
export function routeBreaker(owner: object, route: RouteConfig): CircuitBreaker | undefined {
  const cfg = route.circuitBreaker;
  if (cfg === undefined) return undefined;
  let all = routeBreakersOf.get(owner);
  if (all === undefined) routeBreakersOf.set(owner, (all = new RouteBreakers()));
  return all.get(route, cfg);
}

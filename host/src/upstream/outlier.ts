/**
 * Passive outlier detection of one upstream (`outlier-detection`, Envoy's model): a target is
 * ejected on N consecutive 5xx / gateway errors, or when its success rate over an interval is
 * below the fleet's mean − stdev-factor × stdev. The n-th ejection lasts n × base-ejection-time;
 * an ejection that would put more than max-ejection-percent of the targets out does not happen.
 * State is per proxy thread (each judges from the requests it carries).
 */
import type { OutlierDetectionConfig } from '../config/types.ts';

/** What one attempt told about its target. */
export type Outcome = 'success' | '5xx' | 'gateway';

export type EjectReason = 'consecutive-5xx' | 'consecutive-gateway-errors' | 'success-rate';

export interface OutlierState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** This interval's attempts and successes (success-rate). */
  requests: number;
  successes: number;
  /** Ejections so far, lowered by one each interval the target is not ejected. */
  timesEjected: number;
  /** Total ejections, for the admin API. */
  ejections: number;
  ejectedUntil: number;
  reason: EjectReason | undefined;
}

export class OutlierDetector {
  readonly config: OutlierDetectionConfig;
  readonly states: OutlierState[];
  private readonly timer: NodeJS.Timeout;
  private readonly onEject: (index: number, reason: EjectReason, ms: number) => void;

  /** `onEject(index, reason, ms)` is told of each ejection (logs). */
  constructor(config: OutlierDetectionConfig, targets: number, onEject: (index: number, reason: EjectReason, ms: number) => void) {
    this.config = config;
    this.onEject = onEject;
    this.states = Array.from({ length: targets }, () => ({ consecutive5xx: 0, consecutiveGateway: 0, requests: 0, successes: 0, timesEjected: 0, ejections: 0, ejectedUntil: 0, reason: undefined }));
    this.timer = setInterval(() => this.sweep(), config.intervalMs);
    this.timer.unref();
  }

  ejected(index: number, now = Date.now()): boolean {
    return this.states[index]!.ejectedUntil > now;
  }

  observe(index: number, outcome: Outcome, now = Date.now()): void {
    const s = this.states[index]!;
    const c = this.config;
    s.requests++;
    if (outcome === 'success') {
      s.successes++;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return;
    }
    s.consecutive5xx++;
    if (outcome === 'gateway') s.consecutiveGateway++;
    else s.consecutiveGateway = 0;
    if (c.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= c.consecutiveGatewayErrors) this.eject(index, 'consecutive-gateway-errors', now);
    else if (c.consecutive5xx > 0 && s.consecutive5xx >= c.consecutive5xx) this.eject(index, 'consecutive-5xx', now);
  }

  private eject(index: number, reason: EjectReason, now: number): void {
    const s = this.states[index]!;
    if (s.ejectedUntil > now) return;
    const out = this.states.filter((x) => x.ejectedUntil > now).length;
    if ((out + 1) * 100 > this.config.maxEjectionPercent * this.states.length) return;
    s.timesEjected++;
    s.ejections++;
    const ms = this.config.baseEjectionMs * s.timesEjected;
    s.ejectedUntil = now + ms;
    s.reason = reason;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    this.onEject(index, reason, ms);
  }

  /** Each interval: success-rate ejections, then the ejection counts of targets back in service decay. */
  sweep(now = Date.now()): void {
    const sr = this.config.successRate;
    if (sr) {
      const judged = this.states.map((s, i) => ({ i, s })).filter(({ s }) => s.requests >= sr.minRequests && s.ejectedUntil <= now);
      if (judged.length >= sr.minHosts) {
        const rates = judged.map(({ s }) => s.successes / s.requests);
        const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
        const stdev = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
        const floor = mean - sr.stdevFactor * stdev;
        judged.forEach(({ i }, k) => {
          if (rates[k]! < floor) this.eject(i, 'success-rate', now);
        });
      }
    }
    for (const s of this.states) {
      s.requests = 0;
      s.successes = 0;
      if (s.ejectedUntil <= now && s.timesEjected > 0 && s.consecutive5xx === 0) s.timesEjected--;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

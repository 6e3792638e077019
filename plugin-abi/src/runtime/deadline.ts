/**
 * Per-call deadlines for plugin hooks. A synchronous wasm call cannot be interrupted on its
 * own thread, so the deadline is enforced three ways:
 *
 * - fuel: each call's fuel is capped at min(`fuel`, `timeout-ms` × the calibrated fuel per
 *   ms), so a compute loop runs out near the deadline;
 * - host calls: every import charges fuel for its cost (a fixed charge, more per byte copied
 *   and for I/O), and the clock is checked every few calls, so a loop of cheap host calls
 *   (`now-ms`) ends too;
 * - JSPI calls (callouts, remote stores) are raced against a timer and aborted.
 */
import type { HostImports } from '../../generated/codec.ts';
import { fuelPerMs } from '../metering/calibrate.ts';
import type { CallScope } from './host-services.ts';

/** Thrown inside a host call past the call's deadline; the caller reports WEIR_ERR_PLUGIN_TIMEOUT. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}

/** Thrown inside a host call that the request no longer waits for (client gone, timer fired). */
export class CallAbandoned extends Error {
  override readonly name = 'CallAbandoned';
}

/** What a host call costs, in nanoseconds of guest time (turned into fuel with the calibration). */
export const HOST_COST_NS = {
  /** Every call: crossing into JS, lifting arguments, the clock check. */
  call: 500,
  /** Per byte of string or list copied in or out. */
  byte: 1,
  /** Calls that may wait on I/O (callouts, store calls): the wait itself is bounded by the timer. */
  io: 20_000,
  /** A signature verification (an RSA-2048 or P-256 check is ≈ 20–60 µs of CPU). */
  verify: 50_000,
} as const;

/** Host charges are applied to the fuel global (and the clock read) at least this often, in ns of charges… */
const FLUSH_NS = 20_000;
/** …and at least every this many host calls (a power of two). */
const CHECK_EVERY = 32;

/** The fuel a call may burn: `fuel`, capped by what `timeoutMs` buys on this machine. */
export function callFuel(fuel: number, timeoutMs: number): { fuel: bigint; timeBound: boolean } {
  const byTime = Math.floor(timeoutMs * fuelPerMs());
  return byTime < fuel ? { fuel: BigInt(Math.max(1, byTime)), timeBound: true } : { fuel: BigInt(fuel), timeBound: false };
}

/**
 * Wraps one instance's host imports so each call charges `scope.fuel` and checks
 * `scope.deadline`. Outside a hook (instantiation, describe, configure) the scope has no
 * deadline and the charge comes out of the configure budget.
 */
export function chargedHost(host: HostImports, scope: CallScope): HostImports {
  const perNs = fuelPerMs() / 1e6;
  const fixed = Math.ceil(HOST_COST_NS.call * perNs);
  const perByte = HOST_COST_NS.byte * perNs;
  const io = Math.ceil(HOST_COST_NS.io * perNs);
  const verify = Math.ceil(HOST_COST_NS.verify * perNs);
  const flushAt = Math.ceil(FLUSH_NS * perNs);
  // Charges add up in a JS number and reach the i64 global (BigInt work, ≈ 100 ns) and the
  // clock (≈ 50 ns) every FLUSH_NS worth of charges or CHECK_EVERY calls, not on each call.
  const flush = (): void => {
    const f = scope.fuel;
    if (f !== undefined && scope.pendingFuel > 0) {
      const left = f.value - BigInt(scope.pendingFuel);
      f.value = left;
      scope.pendingFuel = 0;
      // The guest traps at its next metering check; stopping here names the host call.
      if (left < 0n) throw new DeadlineExceeded('out of fuel in a host call');
    }
    if (performance.now() > scope.deadline) throw new DeadlineExceeded('deadline passed during a host call');
  };
  const charge = (extra: number): void => {
    if (scope.abandoned) throw new CallAbandoned('the request no longer waits for this call');
    scope.pendingFuel += fixed + extra;
    if (scope.pendingFuel >= flushAt || (++scope.hostCalls & (CHECK_EVERY - 1)) === 0) flush();
  };
  const bytes = (n: number): number => (n > 0 ? Math.ceil(n * perByte) : 0);
  // After an await the request may be gone: the guest must not run on.
  const resumed = <T>(v: T): T => {
    if (scope.abandoned) throw new CallAbandoned('the request no longer waits for this call');
    return v;
  };
  // A remote store call is bounded by the store's own deadline (and answered by its fallback
  // past it): its wait does not count against the hook's deadline, which moves by as much.
  const storeWait = <T>(r: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    scope.storeWaits = (scope.storeWaits ?? 0) + 1;
    return r.finally(() => {
      scope.storeWaits!--;
      scope.deadline += performance.now() - t0;
    }).then(resumed);
  };
  const listed = <T extends Array<{ name: string; value: string } | { key: string; value: string }>>(list: T): T => {
    let n = 0;
    for (const e of list) n += ('name' in e ? e.name.length : e.key.length) + e.value.length;
    charge(bytes(n));
    return list;
  };
  const maybeAsync = <T>(r: T | Promise<T>): T | Promise<T> => (r instanceof Promise ? storeWait(r) : r);
  return {
    log: (level, message) => {
      charge(bytes(message.length));
      if (level === 'error') scope.lastError = message;
      host.log(level, message);
    },
    defineMetric: (name, kind, help, labelNames) => (charge(bytes(name.length + help.length)), host.defineMetric(name, kind, help, labelNames)),
    recordMetric: (id, value, labelValues) => (charge(bytes(labelValues.reduce((n, v) => n + v.length, 0))), host.recordMetric(id, value, labelValues)),
    counterAdd: (key, delta, windowMs) => (charge(bytes(key.length)), maybeAsync(host.counterAdd(key, delta, windowMs))),
    tokenBucketTake: (key, rate, burst, cost) => (charge(bytes(key.length)), maybeAsync(host.tokenBucketTake(key, rate, burst, cost))),
    kvGet: (key) => {
      charge(bytes(key.length));
      const r = host.kvGet(key);
      const out = (e: Awaited<typeof r>): Awaited<typeof r> => (charge(bytes(e?.value.length ?? 0)), e);
      return r instanceof Promise ? storeWait(r).then(out) : out(r);
    },
    kvCas: (key, value, expected, ttlMs) => (charge(bytes(key.length + value.length)), maybeAsync(host.kvCas(key, value, expected, ttlMs))),
    geoCountry: (ip) => (charge(bytes(ip.length)), host.geoCountry(ip)),
    nowMs: () => (charge(0), host.nowMs()),
    monotonicNs: () => (charge(0), host.monotonicNs()),
    randomU64: () => (charge(0), host.randomU64()),
    digest: (algorithm, data) => (charge(bytes(data.length + 64)), host.digest(algorithm, data)),
    hmac: (algorithm, key, data) => (charge(bytes(key.length + data.length + 64)), host.hmac(algorithm, key, data)),
    constantTimeEqual: (a, b) => (charge(bytes(a.length + b.length)), host.constantTimeEqual(a, b)),
    base64urlEncode: (data) => (charge(bytes(data.length * 2)), host.base64urlEncode(data)),
    base64urlDecode: (text) => (charge(bytes(text.length * 2)), host.base64urlDecode(text)),
    verifySignature: (algorithm, jwk, data, signature) => (charge(verify + bytes(jwk.length + data.length + signature.length)), host.verifySignature(algorithm, jwk, data, signature)),
    // The hashing happens while the guest is suspended: like a store wait, not the hook's time.
    passwordVerify: (password, hash) => (charge(io + bytes(password.length + hash.length)), storeWait(Promise.resolve(host.passwordVerify(password, hash)))),
    spanSetAttribute: (key, value) => (charge(bytes(key.length + value.length)), host.spanSetAttribute(key, value)),
    spanAddEvent: (name, attributes) => (charge(bytes(attributes.reduce((n, a) => n + a.key.length + a.value.length, name.length))), host.spanAddEvent(name, attributes)),
    httpCallout: async (req) => {
      charge(io + bytes(req.url.length + req.body.length));
      const r = resumed(await host.httpCallout(req));
      if (r.tag === 'ok') charge(bytes(r.val.body.length));
      return r;
    },
    // Exchange reads: the fixed charge, plus the bytes copied out for the whole-list ones.
    requestMethod: () => (charge(0), host.requestMethod()),
    requestScheme: () => (charge(0), host.requestScheme()),
    requestAuthority: () => (charge(0), host.requestAuthority()),
    requestPath: () => (charge(0), host.requestPath()),
    requestQuery: () => (charge(0), host.requestQuery()),
    requestHeader: (name) => (charge(0), host.requestHeader(name)),
    requestHeaderValues: (name) => (charge(0), host.requestHeaderValues(name)),
    requestHeaders: () => listed(host.requestHeaders()),
    clientAddress: () => (charge(0), host.clientAddress()),
    clientPort: () => (charge(0), host.clientPort()),
    routeName: () => (charge(0), host.routeName()),
    httpVersion: () => (charge(0), host.httpVersion()),
    requestProperty: (key) => (charge(0), host.requestProperty(key)),
    requestProperties: () => listed(host.requestProperties()),
    responseStatus: () => (charge(0), host.responseStatus()),
    responseHeader: (name) => (charge(0), host.responseHeader(name)),
    responseHeaderValues: (name) => (charge(0), host.responseHeaderValues(name)),
    responseHeaders: () => listed(host.responseHeaders()),
  };
}

// Weir's first-party rate limiter: a token bucket per key, kept in the host store (so it is
// shared by every proxy thread, and by every instance when the filter's backend is Redis).
//
//   filter "api" { type "rate-limit"; max-rps 100; burst 20; key "client-ip"; on-limit "reject" }
import {
  Box, Config, ConfigError, Decision, Hook, HttpContext, LogLevel, MetricKind, Request, Response, RootContext,
  defineMetric, fromUtf8, header, kvCas, kvGet, log, nowMs, recordMetric, registerPlugin, tokenBucketTake, utf8,
} from "@weir/sdk-assemblyscript";

const KEYS = ["client-ip", "path", "route", "client-ip-and-path"];

class RateLimit extends RootContext {
  maxRps: f64 = 0;
  burst: u32 = 0;
  key: string = "client-ip";
  propertyKey: string = "";
  headerKey: string = "";
  onLimit: string = "reject";
  status: u16 = 429;
  delayMaxMs: i64 = 1000;
  filter: string = "";
  decisions: u32 = 0;

  constructor() {
    super("rate-limit", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders, Hook.OnResponseHeaders];
  }

  configure(config: Config): ConfigError | null {
    this.maxRps = config.getFloat("max-rps", 0);
    if (this.maxRps <= 0) config.error("max-rps must be a positive number");
    const burst = config.getInt("burst", <i64>Math.max(1, Math.ceil(this.maxRps)));
    if (burst < 1 || burst > 1_000_000_000) config.error("burst must be between 1 and 1e9");
    this.burst = <u32>burst;
    this.key = config.getString("key", "client-ip");
    if (this.key.startsWith("header:")) {
      this.headerKey = this.key.slice(7).toLowerCase();
      if (this.headerKey.length == 0) config.error("key header:NAME needs a header name");
    } else if (this.key.startsWith("property:")) {
      this.propertyKey = this.key.slice(9);
      if (this.propertyKey.length == 0) config.error("key property:NAME needs a property name");
    } else if (!KEYS.includes(this.key)) {
      config.error("key must be client-ip, path, route, header:NAME, property:NAME or client-ip-and-path");
    }
    this.onLimit = config.getString("on-limit", "reject");
    if (this.onLimit != "reject" && this.onLimit != "delay" && this.onLimit != "log-only") config.error("on-limit must be reject, delay or log-only");
    this.status = <u16>config.getInt("status-code", 429);
    this.delayMaxMs = config.getInt("delay-max-ms", 1000);
    this.filter = config.getString("filter-name", "rate-limit");
    this.decisions = defineMetric("rate_limit_decisions_total", MetricKind.Counter, "Rate-limit decisions", ["filter", "decision"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Limit(id, this);
  }

  keyFor(request: Request): string {
    if (this.headerKey.length > 0) {
      const v = request.header(this.headerKey);
      return "h:" + this.headerKey + ":" + (v === null ? "-" : v);
    }
    if (this.propertyKey.length > 0) {
      // Set by an earlier filter (an auth filter's `auth.subject`): one bucket per identity.
      const v = request.property(this.propertyKey);
      return "prop:" + this.propertyKey + ":" + (v === null ? "-" : v);
    }
    if (this.key == "path") return "p:" + request.path;
    if (this.key == "route") return "r:" + request.routeName;
    if (this.key == "client-ip-and-path") return "ip+p:" + request.clientAddress + " " + request.path;
    return "ip:" + request.clientAddress;
  }
}

/** Outcome of a reservation: the wait before the request may go (ms), or a refusal. */
class Reservation {
  constructor(public allowed: bool, public waitMs: u64, public remaining: u32, public resetMs: u64) {}
}

/** Compare-and-swap attempts before a reservation gives up (the key is that contended). */
const CAS_ATTEMPTS = 16;

/**
 * on-limit "delay": every request reserves its own slot, as a virtual schedule (GCRA: one
 * "theoretical arrival time" per key in the store's kv, moved on by 1/max-rps per request).
 * A request over the limit waits for its slot, so requests held together leave one by one at
 * the limit's pace instead of all at once when the next token is due. The first `burst`
 * requests of an idle key go at once, as with the token bucket. A request whose slot is
 * further than delay-max-ms is refused and reserves nothing.
 */
function reserve(key: string, maxRps: f64, burst: u32, delayMaxMs: i64): Reservation {
  const interval = 1000.0 / maxRps;
  const tolerance = <f64>(burst - 1) * interval;
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const now = <f64>nowMs();
    const entry = kvGet(key);
    let tat = now;
    if (entry !== null) {
      const stored = parseFloat(fromUtf8(entry.value));
      if (stored > now) tat = stored;
    }
    const early = tat - tolerance - now;
    const waitMs = early > 0.0 ? <u64>Math.ceil(early) : 0;
    if (<i64>waitMs > delayMaxMs) return new Reservation(false, <u64>Math.ceil(early - <f64>delayMaxMs), 0, <u64>Math.ceil(tat - now));
    const next = tat + interval;
    // Forgotten once the schedule is back in the past (an idle key is a full bucket).
    const ttl = <u64>Math.ceil(next - now) + 1000;
    const version = kvCas(key, utf8(next.toString()), entry === null ? null : new Box<u64>(entry.version), ttl);
    if (version !== null) {
      const free = Math.floor((now + tolerance - next) / interval) + 1.0;
      return new Reservation(true, waitMs, free > 0.0 ? <u32>free : 0, <u64>Math.ceil(next - now));
    }
  }
  return new Reservation(false, <u64>Math.ceil(interval), 0, <u64>Math.ceil(interval));
}

function seconds(ms: u64): string {
  return ((ms + 999) / 1000).toString();
}

class Limit extends HttpContext {
  remaining: u32 = 0;
  resetMs: u64 = 0;
  limited: bool = false;

  constructor(id: u64, private root: RateLimit) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    if (root.onLimit == "delay") return this.delay(request);
    const r = tokenBucketTake("rl:" + root.keyFor(request), root.maxRps, root.burst, 1);
    this.remaining = r.remaining;
    // Time until the bucket is full again (RateLimit-Reset).
    this.resetMs = <u64>Math.ceil((<f64>(root.burst - r.remaining)) * 1000.0 / root.maxRps);
    if (r.allowed) {
      recordMetric(root.decisions, 1, [root.filter, "allowed"]);
      return Decision.continue();
    }
    this.limited = true;
    if (root.onLimit == "log-only") {
      recordMetric(root.decisions, 1, [root.filter, "logged"]);
      log(LogLevel.Info, "over the limit (log-only): " + root.keyFor(request));
      return Decision.continue();
    }
    return this.reject(r.retryAfterMs);
  }

  /** on-limit "delay": reserve a slot; a `pause` decision holds the request until it. */
  delay(request: Request): Decision {
    const root = this.root;
    const r = reserve("rl-gcra:" + root.filter + ":" + root.keyFor(request), root.maxRps, root.burst, root.delayMaxMs);
    this.remaining = r.remaining;
    this.resetMs = r.resetMs;
    if (!r.allowed) {
      this.limited = true;
      return this.reject(r.waitMs);
    }
    if (r.waitMs == 0) {
      recordMetric(root.decisions, 1, [root.filter, "allowed"]);
      return Decision.continue();
    }
    this.limited = true;
    recordMetric(root.decisions, 1, [root.filter, "delayed"]);
    return Decision.pause(<u32>r.waitMs);
  }

  reject(retryAfterMs: u64): Decision {
    const root = this.root;
    recordMetric(root.decisions, 1, [root.filter, "rejected"]);
    return Decision.respond(root.status, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many requests\"}}\n", [
      header("content-type", "application/json"),
      header("retry-after", seconds(retryAfterMs)),
      header("ratelimit-limit", root.burst.toString()),
      header("ratelimit-remaining", "0"),
      header("ratelimit-reset", seconds(this.resetMs)),
    ]);
  }

  onResponseHeaders(request: Request, response: Response): Decision {
    if (response.header("ratelimit-limit") === null) {
      response.setHeader("ratelimit-limit", this.root.burst.toString());
      response.setHeader("ratelimit-remaining", this.remaining.toString());
      response.setHeader("ratelimit-reset", seconds(this.resetMs));
    }
    return Decision.continue();
  }
}

registerPlugin(new RateLimit());

export * from "@weir/sdk-assemblyscript/exports";

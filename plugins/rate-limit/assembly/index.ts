// Weir's first-party rate limiter: a token bucket per key, kept in the host store (so it is
// shared by every proxy thread, and by every instance when the filter's backend is Redis).
//
//   filter "api" { type "rate-limit"; max-rps 100; burst 20; key "client-ip"; on-limit "reject" }
import {
  Config, ConfigError, Decision, Hook, HttpContext, LogLevel, MetricKind, Request, Response, RootContext,
  defineMetric, header, log, recordMetric, registerPlugin, tokenBucketTake,
} from "@weir/sdk-assemblyscript";

const KEYS = ["client-ip", "path", "route", "client-ip-and-path"];

class RateLimit extends RootContext {
  maxRps: f64 = 0;
  burst: u32 = 0;
  key: string = "client-ip";
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
    } else if (!KEYS.includes(this.key)) {
      config.error("key must be client-ip, path, route, header:NAME or client-ip-and-path");
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
    if (this.key == "path") return "p:" + request.path;
    if (this.key == "route") return "r:" + request.routeName;
    if (this.key == "client-ip-and-path") return "ip+p:" + request.clientAddress + " " + request.path;
    return "ip:" + request.clientAddress;
  }
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
    if (root.onLimit == "delay" && <i64>r.retryAfterMs <= root.delayMaxMs) {
      // The host holds the request this long before sending it upstream.
      recordMetric(root.decisions, 1, [root.filter, "delayed"]);
      request.setProperty("weir.delay-ms", r.retryAfterMs.toString());
      return Decision.continue();
    }
    recordMetric(root.decisions, 1, [root.filter, "rejected"]);
    return Decision.respond(root.status, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many requests\"}}\n", [
      header("content-type", "application/json"),
      header("retry-after", seconds(r.retryAfterMs)),
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

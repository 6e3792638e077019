// Weir's first-party load balancer on select-upstream: `round_robin` (smooth weighted, as
// nginx) and `p2c` (power of two choices on in-flight requests per weight, ties broken at
// random, a target with no latency measured yet first), the hashing ones of hashing.ts and
// the load-aware ones of load.ts.
// Behind an upstream's `load-balancing` key.
import {
  Config, ConfigError, Hook, HttpContext, LogSummary, Request, RootContext, Target, UpstreamInfo, randomU64, registerPlugin,
} from "@weir/sdk-assemblyscript";
import { HashKey, Ketama, Maglev, ipHash, parseHashKey, requestKey } from "./hashing";
import { localityPool } from "./locality";
import { LoadBalancer, LoadContext, isLoadAlgorithm } from "./load";
import { Subsets } from "./subset";

class Balancer extends RootContext {
  algorithm: string = "round_robin";
  /** Smooth weighted round-robin state per upstream: current weights by target address. */
  current: Map<string, Map<string, i64>> = new Map();
  hashKey: HashKey = new HashKey("client-ip", "");
  ketama: Ketama = new Ketama();
  maglev: Maglev = new Maglev();
  /** The load-aware algorithms (load.ts); null for the others. */
  load: LoadBalancer | null = null;
  subsets: Subsets = new Subsets();

  constructor() {
    super("lb", "0.1.0");
    // on-log: where load.ts learns from a finished request (latency, usage) and releases its tokens.
    this.hooks = [Hook.SelectUpstream, Hook.OnLog];
  }

  configure(config: Config): ConfigError | null {
    this.algorithm = config.getString("algorithm", "round_robin");
    const a = this.algorithm;
    if (isLoadAlgorithm(a)) this.load = new LoadBalancer(a);
    else if (a != "round_robin" && a != "p2c" && a != "ip_hash" && a != "consistent_hash" && a != "maglev" && a != "locality_aware" && a != "subset") config.error("unknown algorithm " + a);
    const key = parseHashKey(config.getString("hash-key", "client-ip"));
    if (key === null) config.error("hash-key must be header:NAME, cookie:NAME, query:NAME, path or client-ip");
    else this.hashKey = key;
    this.subsets.configure(config);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Pick(id, this);
  }

  roundRobin(upstream: string, targets: Target[], healthy: Target[]): Target | null {
    if (!this.current.has(upstream)) this.current.set(upstream, new Map());
    const cur = this.current.get(upstream);
    let best: Target | null = null;
    let bestWeight: i64 = 0;
    let total: i64 = 0;
    for (let i = 0; i < healthy.length; i++) {
      const t = healthy[i];
      const w = (cur.has(t.address) ? cur.get(t.address) : 0) + <i64>t.weight;
      cur.set(t.address, w);
      total += <i64>t.weight;
      if (best === null || w > bestWeight) {
        best = t;
        bestWeight = w;
      }
    }
    if (best !== null) cur.set(best.address, bestWeight - total);
    return best;
  }

  p2c(healthy: Target[]): Target | null {
    const n = healthy.length;
    if (n == 0) return null;
    if (n == 1) return healthy[0];
    const a = <i32>(randomU64() % <u64>n);
    let b = <i32>(randomU64() % <u64>(n - 1));
    if (b >= a) b++;
    const x = healthy[a];
    const y = healthy[b];
    const lx = (<f64>x.inFlight + 1.0) / <f64>max<u32>(x.weight, 1);
    const ly = (<f64>y.inFlight + 1.0) / <f64>max<u32>(y.weight, 1);
    if (lx != ly) return lx < ly ? x : y;
    // Equal load (always so under sequential traffic): a target not measured yet wins, so it
    // gets measured; else a coin decides. Latency is no tie-break: one slow sample would make
    // a target lose every tie, and a target that is never picked is never measured again.
    const mx = x.ewmaLatencyMs > 0.0;
    const my = y.ewmaLatencyMs > 0.0;
    if (mx != my) return mx ? y : x;
    return randomU64() & 1 ? x : y;
  }
}

class Pick extends HttpContext {
  private lc: LoadContext = new LoadContext();

  constructor(id: u64, private root: Balancer) {
    super(id);
  }

  onLog(summary: LogSummary): void {
    const load = this.root.load;
    if (load !== null) load.log(this.lc, summary);
  }

  selectUpstream(request: Request, upstream: UpstreamInfo, targets: Target[]): Target | null {
    // Only healthy targets with weight; if none, every target with weight (fail open).
    let pool = new Array<Target>(0);
    for (let i = 0; i < targets.length; i++) if (targets[i].healthy && targets[i].weight > 0) pool.push(targets[i]);
    if (pool.length == 0) for (let i = 0; i < targets.length; i++) if (targets[i].weight > 0) pool.push(targets[i]);
    const load = this.root.load;
    if (load !== null) return load.select(request, upstream, pool, this.lc);
    const a = this.root.algorithm;
    if (a == "p2c") return this.root.p2c(pool);
    if (a == "ip_hash") return ipHash(request, pool);
    if (a == "consistent_hash") return this.root.ketama.pick(upstream.name, targets, requestKey(request, this.root.hashKey));
    if (a == "maglev") return this.root.maglev.pick(upstream.name, targets, requestKey(request, this.root.hashKey));
    if (a == "subset") return this.root.roundRobin(upstream.name, targets, this.root.subsets.pool(request, pool));
    if (a == "locality_aware") return this.root.roundRobin(upstream.name, targets, localityPool(upstream, targets, pool));
    return this.root.roundRobin(upstream.name, targets, pool);
  }
}

registerPlugin(new Balancer());

export * from "@weir/sdk-assemblyscript/exports";

// The lb plugin's load-aware algorithms: random, weighted_random, least_connections,
// weighted_least_connections, peak_ewma, least_latency, adaptive and least_tokens. They read
// the host's live target stats (in flight, latency EWMA, failures: shared by every proxy
// thread) and, for peak_ewma, adaptive and least_tokens, what this instance learned from the
// requests it balanced (on-log), which is per proxy thread.
import { LogSummary, Request, Target, UpstreamInfo, nowMs, randomU64 } from "@weir/sdk-assemblyscript";
import { exchangeResponseHeader } from "@weir/sdk-assemblyscript/assembly/generated/abi";

const NAMES = [
  "random", "weighted_random", "least_connections", "weighted_least_connections",
  "peak_ewma", "least_latency", "adaptive", "least_tokens",
];

/** Whether `name` is one of this file's algorithms. */
export function isLoadAlgorithm(name: string): bool {
  return NAMES.includes(name);
}

/** peak_ewma's decay time (Finagle's and Linkerd's default): a sample's weight halves in ≈ 7 s. */
const DECAY_MS: f64 = 10_000;
/** adaptive: latency added to every target's before comparing, so sub-millisecond noise is no signal. */
const ADAPTIVE_BASE_MS: f64 = 5;
/** adaptive: the least share of its weight a target keeps, so it is measured again and can recover. */
const ADAPTIVE_FLOOR: f64 = 0.02;
/** least_tokens: request body bytes per prompt token before any response told otherwise. */
const BYTES_PER_TOKEN: f64 = 4;

function below(n: i32): i32 {
  return <i32>(randomU64() % <u64>n);
}

function unit(): f64 {
  return <f64>(randomU64() >> 11) / 9007199254740992.0;
}

/** A random target, each with probability score / sum (uniform when every score is 0). */
function byScore(pool: Target[], scores: f64[]): Target {
  let sum: f64 = 0;
  for (let i = 0; i < scores.length; i++) sum += scores[i];
  if (sum <= 0) return pool[below(pool.length)];
  let r = unit() * sum;
  for (let i = 0; i < pool.length; i++) {
    r -= scores[i];
    if (r < 0) return pool[i];
  }
  return pool[pool.length - 1];
}

/** Among the targets with the least `load` (within 1e-9), one at random by weight. */
function leastBy(pool: Target[], load: f64[], weighted: bool): Target {
  let best: f64 = Infinity;
  for (let i = 0; i < load.length; i++) if (load[i] < best) best = load[i];
  const ties = new Array<Target>(0);
  const w = new Array<f64>(0);
  for (let i = 0; i < pool.length; i++) {
    if (load[i] - best > 1e-9) continue;
    ties.push(pool[i]);
    w.push(weighted ? <f64>pool[i].weight : 1.0);
  }
  return byScore(ties, w);
}

/** Time-decayed latency estimate that jumps to any sample above it (Finagle's peak EWMA). */
class Peak {
  ms: f64 = 0;
  at: u64 = 0;

  /** The estimate now: it decays towards 0 while no sample comes, so a slow target is tried again. */
  read(now: u64): f64 {
    if (this.at == 0) return 0;
    return this.ms * Math.exp(-<f64>(now - this.at) / DECAY_MS);
  }

  observe(sample: f64, now: u64): void {
    const cur = this.read(now);
    if (this.at == 0 || sample > cur) this.ms = sample;
    else {
      const w = Math.exp(-<f64>(now - this.at) / DECAY_MS);
      this.ms = cur * w + sample * (1 - w);
    }
    this.at = now;
  }
}

/** adaptive: failure share of the attempts since the last look, smoothed. */
class ErrorRate {
  requests: u64 = 0;
  failures: u64 = 0;
  rate: f64 = 0;

  update(t: Target): f64 {
    // Finished attempts only: one still in flight has not failed yet.
    const done = t.totalRequests >= <u64>t.inFlight ? t.totalRequests - <u64>t.inFlight : 0;
    const dr = done >= this.requests ? done - this.requests : 0;
    if (dr > 0) {
      const df = t.totalFailures >= this.failures ? t.totalFailures - this.failures : 0;
      const sample = min<f64>(1, <f64>df / <f64>dr);
      // Each attempt moves the rate 30 % of the way: a target failing every time is at 0.83 after 5.
      const a = 1 - Math.pow(0.7, <f64>dr);
      this.rate = this.rate * (1 - a) + sample * a;
      this.requests = done;
      this.failures = t.totalFailures;
    }
    return this.rate;
  }
}

/** One request's part in least_tokens' accounting. */
export class LoadContext {
  /** `upstream \0 address` of the target holding this request's tokens; empty when none. */
  key: string = "";
  upstream: string = "";
  tokens: f64 = 0;
  promptBytes: f64 = 0;
}

/** What least_tokens learned per upstream from responses (see learn). */
class TokenModel {
  bytesPerToken: f64 = BYTES_PER_TOKEN;
  /** Mean completion tokens per response; 0 until a response told. */
  completion: f64 = 0;
}

export class LoadBalancer {
  private peaks: Map<string, Peak> = new Map();
  private errors: Map<string, ErrorRate> = new Map();
  private inFlightTokens: Map<string, f64> = new Map();
  private models: Map<string, TokenModel> = new Map();

  constructor(public algorithm: string) {}

  /** Chooses from `pool` (healthy weighted targets, or all weighted ones when none is healthy). */
  select(request: Request, upstream: UpstreamInfo, pool: Target[], ctx: LoadContext): Target | null {
    const n = pool.length;
    if (n == 0) return null;
    const a = this.algorithm;
    if (a == "random") return pool[below(n)];
    const load = new Array<f64>(n);
    if (a == "weighted_random") {
      for (let i = 0; i < n; i++) load[i] = <f64>pool[i].weight;
      return byScore(pool, load);
    }
    if (a == "least_connections") {
      for (let i = 0; i < n; i++) load[i] = <f64>pool[i].inFlight;
      return leastBy(pool, load, false);
    }
    if (a == "weighted_least_connections") {
      for (let i = 0; i < n; i++) load[i] = <f64>pool[i].inFlight / <f64>pool[i].weight;
      return leastBy(pool, load, true);
    }
    if (a == "least_latency") return this.leastLatency(pool, load);
    if (a == "peak_ewma") return this.peakEwma(pool);
    if (a == "adaptive") return this.adaptive(upstream.name, pool, load);
    return this.leastTokens(request, upstream.name, pool, load, ctx);
  }

  /** The lowest latency EWMA per weight; targets not measured yet first; failing ones last. */
  private leastLatency(pool: Target[], load: f64[]): Target {
    for (let i = 0; i < pool.length; i++) {
      const t = pool[i];
      load[i] = t.consecutiveFailures > 0 ? Infinity : t.ewmaLatencyMs / <f64>t.weight;
    }
    return leastBy(pool, load, true);
  }

  /**
   * Two random targets; the lower cost wins: peak EWMA latency × (in flight + 1) / weight,
   * × (1 + consecutive failures). A target without a sample costs 0 (so it gets measured),
   * unless it is failing.
   */
  private peakEwma(pool: Target[]): Target {
    const n = pool.length;
    if (n == 1) return pool[0];
    const a = below(n);
    let b = below(n - 1);
    if (b >= a) b++;
    const now = nowMs();
    const ca = this.cost(pool[a], now);
    const cb = this.cost(pool[b], now);
    if (ca != cb) return ca < cb ? pool[a] : pool[b];
    return randomU64() & 1 ? pool[a] : pool[b];
  }

  private cost(t: Target, now: u64): f64 {
    let est: f64 = this.peaks.has(t.address) ? this.peaks.get(t.address).read(now) : 0;
    if (est == 0) est = t.ewmaLatencyMs;
    const failing = <f64>t.consecutiveFailures;
    if (est == 0) return failing > 0 ? 1e12 : 0;
    return est * (<f64>t.inFlight + 1) * (1 + failing) / <f64>t.weight;
  }

  /**
   * Weighted random with live weights: weight × (fastest + 5 ms) / (own latency + 5 ms) ×
   * (1 − failure rate)², never below 2 % of the weight.
   */
  private adaptive(upstream: string, pool: Target[], load: f64[]): Target {
    let fastest: f64 = Infinity;
    for (let i = 0; i < pool.length; i++) {
      const l = pool[i].ewmaLatencyMs;
      if (l > 0 && l < fastest) fastest = l;
    }
    if (fastest == Infinity) fastest = 0;
    for (let i = 0; i < pool.length; i++) {
      const t = pool[i];
      const key = upstream + "\0" + t.address;
      if (!this.errors.has(key)) this.errors.set(key, new ErrorRate());
      const err = this.errors.get(key).update(t);
      const lat = t.ewmaLatencyMs > 0 ? t.ewmaLatencyMs : fastest;
      const ok = 1 - err;
      const f = ((fastest + ADAPTIVE_BASE_MS) / (lat + ADAPTIVE_BASE_MS)) * ok * ok;
      load[i] = <f64>t.weight * max<f64>(f, ADAPTIVE_FLOOR);
    }
    return byScore(pool, load);
  }

  /**
   * The fewest estimated tokens in flight per weight. A request's estimate: its body bytes ÷
   * the upstream's bytes per prompt token (4 until learned), + the mean completion tokens
   * its responses reported (see learn). Held by the chosen target until the request ends.
   */
  private leastTokens(request: Request, upstream: string, pool: Target[], load: f64[], ctx: LoadContext): Target {
    for (let i = 0; i < pool.length; i++) {
      const key = upstream + "\0" + pool[i].address;
      load[i] = (this.inFlightTokens.has(key) ? this.inFlightTokens.get(key) : 0) / <f64>pool[i].weight;
    }
    const t = leastBy(pool, load, true);
    // A retry moves the request's tokens to the new target.
    this.release(ctx);
    if (!this.models.has(upstream)) this.models.set(upstream, new TokenModel());
    const model = this.models.get(upstream);
    const cl = request.headers.get("content-length");
    const bytes: f64 = cl !== null ? max<f64>(0, parseFloat(cl)) : 0;
    const bytesOk = isFinite(bytes) ? bytes : 0;
    ctx.key = upstream + "\0" + t.address;
    ctx.upstream = upstream;
    ctx.promptBytes = bytesOk;
    ctx.tokens = Math.ceil(bytesOk / model.bytesPerToken) + model.completion + 1;
    this.inFlightTokens.set(ctx.key, (this.inFlightTokens.has(ctx.key) ? this.inFlightTokens.get(ctx.key) : 0) + ctx.tokens);
    return t;
  }

  private release(ctx: LoadContext): void {
    if (ctx.key.length == 0) return;
    const left = (this.inFlightTokens.has(ctx.key) ? this.inFlightTokens.get(ctx.key) : 0) - ctx.tokens;
    this.inFlightTokens.set(ctx.key, left > 1e-6 ? left : 0);
    ctx.key = "";
  }

  /** The request ended: its target's sample for peak_ewma; for least_tokens, its tokens released and the usage learned. */
  log(ctx: LoadContext, summary: LogSummary): void {
    if (this.algorithm == "peak_ewma") {
      const addr = summary.upstreamAddress;
      const d = summary.upstreamDurationMs;
      // One attempt only: with retries the time is the sum of several targets' waits.
      if (addr !== null && d !== null && summary.attempts == 1 && summary.errorCode === null) {
        // The summary names no upstream: samples are kept by address (shared by upstreams using it).
        if (!this.peaks.has(addr)) this.peaks.set(addr, new Peak());
        this.peaks.get(addr).observe(d.value, nowMs());
      }
      return;
    }
    if (this.algorithm != "least_tokens" || ctx.key.length == 0) return;
    const upstream = ctx.upstream;
    const promptBytes = ctx.promptBytes;
    this.release(ctx);
    if (summary.errorCode !== null) return;
    this.learn(upstream, promptBytes, summary);
  }

  /**
   * Usage from the response: `x-prompt-tokens` and `x-generated-tokens` (what Hugging Face's
   * text-generation-inference sends); without them the completion is taken as the response
   * body bytes ÷ bytes per token. Both are smoothed (EWMA, 0.2 per response).
   */
  private learn(upstream: string, promptBytes: f64, summary: LogSummary): void {
    const model = this.models.get(upstream);
    const prompt = exchangeResponseHeader("x-prompt-tokens");
    const generated = exchangeResponseHeader("x-generated-tokens");
    if (prompt !== null && promptBytes > 0) {
      const p = parseFloat(prompt);
      if (isFinite(p) && p > 0) model.bytesPerToken = model.bytesPerToken * 0.8 + (promptBytes / p) * 0.2;
    }
    let c: f64 = generated !== null ? parseFloat(generated) : <f64>summary.bytesSent / model.bytesPerToken;
    if (!isFinite(c) || c < 0) return;
    model.completion = model.completion == 0 ? c : model.completion * 0.8 + c * 0.2;
  }
}

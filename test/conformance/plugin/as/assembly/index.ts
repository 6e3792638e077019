// The SDK conformance fixture, AssemblyScript side. `../rust/src/lib.rs` is the same plugin
// in Rust; `../../cases.json` runs against both and their outputs must be identical.
// Behaviour is chosen by the request path (see cases.json), so one config serves most cases.
//
// Config: `prefix "x-conf-"` (headers this plugin adds; must start with `x-`),
// `callout-url "http://…"` (optional, for /host/callout), `fail "why"` (refuse the config).
import {
  BodyDecision, BodyMode, Box, Config, ConfigError, Decision, Header, Hook, HttpContext, LogLevel, LogSummary, MetricKind, Property,
  Request, Response, RootContext, Target, UpstreamInfo,
  calloutRequest, counterAdd, defineMetric, fromUtf8, geoCountry, header, httpCallout, kvCas, kvGet, log,
  monotonicNs, nowMs, randomU64, recordMetric, registerPlugin, tokenBucketTake, utf8,
  HashAlgorithm, SignatureAlgorithm, base64urlDecode, base64urlEncode, constantTimeEqual, digest as hostDigest, hmac, verifySignature,
} from "@weir/sdk-assemblyscript";
import * as exchange from "@weir/sdk-assemblyscript/exchange";

const BODY_LIMIT: u32 = 4 * 1024 * 1024;

class Conformance extends RootContext {
  prefix: string = "x-conf-";
  calloutUrl: string = "";
  requests: u32 = 0;
  bodyBytes: u32 = 0;
  /** The exchange functions as configure sees them (outside any hook): /exchange/outside. */
  outside: string = "";

  constructor() {
    super("conformance", "1.0.0");
    // Unlike the Rust SDK, a body mode does not add its hook: every hook is listed.
    this.hooks = [Hook.OnRequestHeaders, Hook.OnRequestBody, Hook.SelectUpstream, Hook.OnResponseHeaders, Hook.OnResponseBody, Hook.OnLog];
    this.requestBody = BodyMode.buffered(BODY_LIMIT);
    this.responseBody = BodyMode.buffered(BODY_LIMIT);
    // The nodes this plugin knows; their types are the getters' to check.
    this.configSchema = '{"type":"object","additionalProperties":false,"properties":{"prefix":{},"callout-url":{},"fail":{}}}';
  }

  configure(config: Config): ConfigError | null {
    const fail = config.child("fail");
    if (fail !== null) {
      const why = fail.arg(0);
      return new ConfigError("told to fail: " + (why !== null && why.asText !== null ? why.asText! : "no reason"), fail.index);
    }
    const p = config.child("prefix");
    if (p !== null) {
      const v = p.arg(0);
      if (v === null || v.asText === null) return new ConfigError("`prefix` must be a string", p.index);
      if (!v.asText!.startsWith("x-")) return new ConfigError("`prefix` must start with x-", p.index);
      this.prefix = v.asText!;
    }
    this.calloutUrl = config.getString("callout-url", "");
    this.outside = exchangeOutside();
    this.requests = defineMetric("conformance_requests", MetricKind.Counter, "requests seen", ["path"]);
    this.bodyBytes = defineMetric("conformance_body_bytes", MetricKind.Histogram, "request body sizes", []);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Exchange(id, this);
  }
}

/** Aborts the call (the optimiser may inline this into the hook). */
function trapHere(): void {
  abort("conformance: asked to trap");
}

function fnv1a(data: Uint8Array): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i = 0, n = data.length; i < n; i++) h = (h ^ <u32>unchecked(data[i])) * 0x01000193;
  return h;
}

function digest(data: Uint8Array): Uint8Array {
  let hex = fnv1a(data).toString(16);
  while (hex.length < 8) hex = "0" + hex;
  return utf8("len=" + data.length.toString() + " fnv=" + hex);
}

// unchecked: bounds checks per byte cost enough fuel to matter on multi-MiB bodies.
function upper(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0, n = data.length; i < n; i++) {
    const c = unchecked(data[i]);
    unchecked((out[i] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c));
  }
  return out;
}

function headerList(list: Header[]): string {
  const parts = new Array<string>(0);
  for (let i = 0; i < list.length; i++) parts.push(list[i].name + ":" + list[i].value);
  return parts.join(",");
}

function propertyList(list: Property[]): string {
  const parts = new Array<string>(0);
  for (let i = 0; i < list.length; i++) parts.push(list[i].key + "=" + list[i].value);
  return parts.join(",");
}

function orNone(v: string | null): string {
  return v === null ? "none" : v;
}

/** Every request-side exchange function, called directly (names in any case). */
function exchangeRequest(): string {
  return "method=" + exchange.requestMethod() + " scheme=" + exchange.requestScheme() + " authority=" + exchange.requestAuthority() +
    " path=" + exchange.requestPath() + " query=" + exchange.requestQuery() + " header=" + orNone(exchange.requestHeader("X-Multi")) +
    " values=" + exchange.requestHeaderValues("x-MULTI").join("|") + " absent=" + orNone(exchange.requestHeader("x-absent")) +
    " absent-values=" + exchange.requestHeaderValues("x-absent").length.toString() + " headers=" + headerList(exchange.requestHeaders()) +
    " client=" + exchange.clientAddress() + ":" + exchange.clientPort().toString() + " route=" + exchange.routeName() +
    " version=" + exchange.httpVersion() + " property=" + orNone(exchange.requestProperty("conf.ex")) + " properties=" + propertyList(exchange.requestProperties());
}

/** Every response-side exchange function, and request reads from a response hook. */
function exchangeResponse(): string {
  return "status=" + exchange.responseStatus().toString() + " header=" + orNone(exchange.responseHeader("Content-Type")) +
    " values=" + exchange.responseHeaderValues("X-UP").join("|") + " absent=" + orNone(exchange.responseHeader("x-absent")) +
    " headers=" + headerList(exchange.responseHeaders()) + " path=" + exchange.requestPath() + " method=" + exchange.requestMethod() +
    " property=" + orNone(exchange.requestProperty("conf.ex")) + " properties=" + propertyList(exchange.requestProperties());
}

/** What the exchange functions answer outside a hook: empty everywhere. */
function exchangeOutside(): string {
  return "method=" + exchange.requestMethod() + " path=" + exchange.requestPath() + " header=" + orNone(exchange.requestHeader("host")) +
    " values=" + exchange.requestHeaderValues("host").length.toString() + " headers=" + exchange.requestHeaders().length.toString() +
    " port=" + exchange.clientPort().toString() + " property=" + orNone(exchange.requestProperty("conf.ex")) +
    " properties=" + exchange.requestProperties().length.toString() + " status=" + exchange.responseStatus().toString() +
    " response-headers=" + exchange.responseHeaders().length.toString();
}

function ok(b: bool): string {
  return b ? "ok" : "bad";
}

/** Per-request state: what on-request-headers saw, for the later hooks. */
class Exchange extends HttpContext {
  path: string = "";
  requestBytes: i64 = -1;

  constructor(id: u64, private root: Conformance) {
    super(id);
  }

  h(name: string): string {
    return this.root.prefix + name;
  }

  /** The host imports, one per path; the result goes upstream as a header (null: not a host path). */
  hostCall(request: Request): string | null {
    const k = request.header("x-key");
    const key = "conf:" + (k === null ? "default" : k);
    const path = request.path;
    if (path == "/host/log") {
      const levels = [LogLevel.Trace, LogLevel.Debug, LogLevel.Info, LogLevel.Warn, LogLevel.Error];
      for (let i = 0; i < levels.length; i++) log(levels[i], "conformance: log ✓");
      return "5";
    }
    if (path == "/host/metric") {
      recordMetric(this.root.requests, 1.0, [path]);
      recordMetric(this.root.bodyBytes, 42.5, []);
      return "recorded";
    }
    if (path == "/host/counter") {
      const d = request.header("x-delta");
      const delta: i64 = d === null ? 1 : I64.parseInt(d);
      return counterAdd(key, delta, 60000).toString();
    }
    if (path == "/host/bucket") {
      // 0.001 token/s: no refill between cases, whatever the machine's speed.
      const r = tokenBucketTake(key, 0.001, 2, 1);
      const verdict: string = r.allowed ? "allowed" : "denied";
      const retry: string = r.retryAfterMs > 0 ? "positive" : "0";
      return verdict + " remaining=" + r.remaining.toString() + " retry=" + retry;
    }
    if (path == "/host/kv") {
      // Versions come from a store-wide sequence: assert that they grow, not their values.
      const old = kvGet(key);
      const value = request.header("x-value");
      const fresh = kvCas(key, utf8(value === null ? "" : value), old === null ? null : new Box<u64>(old.version), 0);
      let now: string;
      if (fresh === null) now = "conflict";
      else if (old !== null) now = fresh.value > old.version ? "newer" : "not-newer";
      else now = fresh.value > 0 ? "set" : "zero";
      const was: string = old === null ? "none" : fromUtf8(old.value);
      return "old=" + was + " new=" + now;
    }
    if (path == "/host/kv-absent") {
      // expected-version null: write only if the key does not exist yet.
      const v = kvCas(key, utf8("first"), null, 60000);
      if (v === null) return "conflict";
      return v.value > 0 ? "set" : "zero";
    }
    if (path == "/host/geo") {
      const c = geoCountry(request.clientAddress);
      return c === null ? "none" : c;
    }
    if (path == "/host/clock") {
      // Shapes, not values: plausible epoch ms, a clock that does not go back, two draws that differ.
      const now = nowMs();
      const m1 = monotonicNs();
      const m2 = monotonicNs();
      const r1 = randomU64();
      const r2 = randomU64();
      return "now=" + ok(now > 1600000000000 && now < 4102444800000) + " mono=" + ok(m2 >= m1) + " random=" + ok(r1 != r2);
    }
    if (path == "/host/callout") {
      if (this.root.calloutUrl.length == 0) return "unconfigured";
      const r = httpCallout(calloutRequest("POST", this.root.calloutUrl, [header("x-conf-callout", "1")], utf8("ping"), 2000));
      if (!r.ok) return "error:" + r.error!;
      return r.response!.status.toString() + ":" + fromUtf8(r.response!.body);
    }
    if (path == "/crypto/digest" || path == "/crypto/hmac") {
      const a = request.header("x-alg");
      const name = a === null ? "" : a;
      let alg: HashAlgorithm;
      if (name == "sha256") alg = HashAlgorithm.Sha256;
      else if (name == "sha384") alg = HashAlgorithm.Sha384;
      else if (name == "sha512") alg = HashAlgorithm.Sha512;
      else return "unknown-alg";
      const d = request.header("x-data");
      const data = utf8(d === null ? "" : d);
      if (path == "/crypto/digest") return base64urlEncode(hostDigest(alg, data));
      const k = request.header("x-hmac-key");
      const key = base64urlDecode(k === null ? "" : k);
      if (key === null) return "bad-key-encoding";
      return base64urlEncode(hmac(alg, key, data));
    }
    if (path == "/crypto/equal") {
      const a = request.header("x-a");
      const b = request.header("x-b");
      return constantTimeEqual(utf8(a === null ? "" : a), utf8(b === null ? "" : b)) ? "equal" : "different";
    }
    if (path == "/crypto/base64url") {
      const d = request.header("x-data");
      const text = d === null ? "" : d;
      const enc = base64urlEncode(utf8(text));
      const back = base64urlDecode(enc);
      const round = back !== null && fromUtf8(back) == text;
      const b = request.header("x-b64");
      let dec = "-";
      if (b !== null) {
        const bytes = base64urlDecode(b);
        dec = bytes === null ? "none" : fromUtf8(bytes);
      }
      return "enc=" + enc + " round=" + (round ? "true" : "false") + " dec=" + dec;
    }
    if (path == "/crypto/verify") {
      const a = request.header("x-alg");
      const name = a === null ? "" : a;
      let alg: SignatureAlgorithm;
      if (name == "rs256") alg = SignatureAlgorithm.Rs256;
      else if (name == "rs384") alg = SignatureAlgorithm.Rs384;
      else if (name == "rs512") alg = SignatureAlgorithm.Rs512;
      else if (name == "ps256") alg = SignatureAlgorithm.Ps256;
      else if (name == "es256") alg = SignatureAlgorithm.Es256;
      else if (name == "es384") alg = SignatureAlgorithm.Es384;
      else if (name == "ed-dsa") alg = SignatureAlgorithm.EdDsa;
      else return "unknown-alg";
      const s = request.header("x-sig");
      const sig = base64urlDecode(s === null ? "" : s);
      if (sig === null) return "bad-signature-encoding";
      const j = request.header("x-jwk");
      const d = request.header("x-data");
      const v = verifySignature(alg, j === null ? "" : j, utf8(d === null ? "" : d), sig);
      if (v.error !== null) return "error:" + v.error!;
      return v.valid ? "valid" : "invalid";
    }
    if (path == "/exchange/request") return exchangeRequest();
    if (path == "/exchange/outside") return this.root.outside;
    if (path == "/host/last-log") {
      const e = kvGet("conf:last-log");
      return e === null ? "none" : fromUtf8(e.value);
    }
    return null;
  }

  onRequestHeaders(request: Request): Decision {
    this.path = request.path;
    const result = this.hostCall(request);
    if (result !== null) {
      request.setHeader(this.h("host"), result);
      return Decision.continue();
    }
    const path = this.path;
    if (path == "/trap") trapHere();
    if (path == "/mutate") {
      const k = request.queryParam("keep");
      const keep = k === null ? "-" : k;
      request.setHeader(this.h("set"), "1");
      request.addHeader(this.h("add"), "a");
      request.addHeader(this.h("add"), "b");
      request.removeHeader("x-remove-me");
      request.setPath("/rewritten");
      request.setQuery("q=1&keep=" + keep);
      request.setMethod("PUT");
      request.setAuthority("backend.test");
      request.setProperty("conf.mutated", "yes");
      // Reads see this hook's own changes.
      request.setHeader(this.h("view"), (request.header("x-remove-me") === null ? "removed" : "kept") + " " + request.path + " " + request.method);
      return Decision.continue();
    }
    if (path == "/respond") {
      return Decision.respond(403, "verboten ✗ " + request.clientAddress, [header("content-type", "text/plain; charset=utf-8"), header(this.h("reason"), "nicht erlaubt — ü")]);
    }
    if (path == "/utf8") {
      const u = request.header("x-utf8");
      const v = u === null ? "" : u;
      request.setHeader(this.h("echo"), v);
      request.setProperty("conf.utf8", v);
      return Decision.continue();
    }
    if (path == "/properties") {
      request.setProperty("conf.a", "1");
      request.setProperty("conf.b", "2");
      request.removeProperty("conf.b");
      return Decision.continue();
    }
    if (path == "/exchange/response") {
      // Set now, read through request-property by on-response-headers.
      request.setProperty("conf.ex", "set");
      return Decision.continue();
    }
    if (path == "/upstream") {
      request.setProperty("conf.upstream", "canary");
      request.setUpstream("canary");
      return Decision.continue();
    }
    return Decision.continue();
  }

  onRequestBody(chunk: Uint8Array, end: bool): BodyDecision {
    this.requestBytes = (this.requestBytes < 0 ? 0 : this.requestBytes) + chunk.length;
    const path = this.path;
    if (path == "/body/upper") return BodyDecision.replace(upper(chunk));
    if (path == "/body/digest") return BodyDecision.replace(digest(chunk));
    if (path == "/body/drop") return BodyDecision.replace(new Uint8Array(0));
    if (path == "/body/reject") return BodyDecision.respond(422, "rejected " + chunk.length.toString() + " bytes", [header(this.h("why"), "größe")]);
    return BodyDecision.continue();
  }

  selectUpstream(request: Request, upstream: UpstreamInfo, targets: Target[]): Target | null {
    if (this.path == "/select") {
      // Least in flight among healthy targets, then lowest latency, then lowest index.
      let best: Target | null = null;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i];
        if (!t.healthy) continue;
        if (upstream.previous !== null && upstream.previous!.value == t.index) continue;
        if (best === null || t.inFlight < best.inFlight || (t.inFlight == best.inFlight && t.ewmaLatencyMs < best.ewmaLatencyMs)) best = t;
      }
      return best;
    }
    if (this.path == "/select/last") return targets.length ? targets[targets.length - 1] : null;
    return null;
  }

  onResponseHeaders(request: Request, response: Response): Decision {
    const path = this.path;
    if (path == "/continue") return Decision.continue();
    if (path == "/exchange/response") {
      response.setHeader(this.h("exchange"), exchangeResponse());
      return Decision.continue();
    }
    if (path == "/response/replace") return Decision.respond(502, "replaced by on-response-headers", [header(this.h("replaced"), "1")]);
    if (path == "/response/status") response.setStatus(202);
    if (path == "/utf8") {
      const u = request.header("x-utf8");
      response.setHeader(this.h("echo"), u === null ? "" : u);
    }
    response.setHeader(this.h("status-seen"), response.status.toString());
    response.addHeader(this.h("path-seen"), this.path + " -> " + request.path);
    if (this.requestBytes >= 0) response.setHeader(this.h("request-bytes"), this.requestBytes.toString());
    const prop = request.property("conf.mutated");
    response.setHeader(this.h("prop"), prop === null ? "none" : prop);
    response.removeHeader("server");
    // The SDK's Response has no property setter; the request view's is the same mutation.
    request.setProperty("conf.response", "seen");
    return Decision.continue();
  }

  onResponseBody(chunk: Uint8Array, end: bool): BodyDecision {
    const path = this.path;
    if (path == "/body/upper") return BodyDecision.replace(upper(chunk));
    if (path == "/body/digest") return BodyDecision.replace(digest(chunk));
    // Ignored by the host on responses: the body passes unchanged.
    if (path == "/response/body-respond") return BodyDecision.respond(500, "ignored");
    return BodyDecision.continue();
  }

  onLog(summary: LogSummary): void {
    recordMetric(this.root.requests, 1.0, ["log"]);
    if (this.requestBytes >= 0) recordMetric(this.root.bodyBytes, <f64>this.requestBytes, []);
    // State that outlives the request: /host/last-log reads it back in the next case.
    const code = summary.errorCode;
    const line = "path=" + this.path + " status=" + summary.status.toString() + " error=" + (code === null ? "none" : code);
    const old = kvGet("conf:last-log");
    kvCas("conf:last-log", utf8(line), old === null ? null : new Box<u64>(old.version), 0);
  }
}

registerPlugin(new Conformance());

export * from "@weir/sdk-assemblyscript/exports";

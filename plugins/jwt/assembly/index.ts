// Weir's first-party JWT filter: verifies a bearer token's signature (HS256/384/512 with a
// secret or JWKS `oct` keys; RS256/384/512, PS256, ES256/384 and EdDSA against a JWKS file or
// URL) through the host's crypto, then its exp/nbf/iat (with clock skew), issuer, audience and
// required claims; copies claims into request headers and names the subject `auth.subject`.
//
//   filter "auth" { type "jwt"; algorithms "RS256"; jwks-url "https://idp.example/jwks.json"; audience "api"; }
import {
  Box, Config, ConfigError, Decision, HashAlgorithm, Hook, HttpContext, LogLevel, MetricKind, Request,
  RootContext, SignatureAlgorithm, base64urlDecode, calloutRequest, constantTimeEqual, defineMetric,
  fromUtf8, header, hmac, httpCallout, kvCas, kvGet, log, nowMs, recordMetric, registerPlugin, utf8,
  verifySignature,
} from "@weir/sdk-assemblyscript";
import { fileText, jsonString, unauthorized } from "../../shared/auth";
import { Json, Kind, parseJson } from "./json";

const STRINGS = '{"anyOf":[{"type":"string","minLength":1},{"type":"array","minItems":1,"items":{"type":"string","minLength":1}}]}';
const ALG = '{"enum":["HS256","HS384","HS512","RS256","RS384","RS512","PS256","ES256","ES384","EdDSA"]}';
const CLAIM = '{"type":"object","additionalProperties":false,"required":["args","header"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string","minLength":1}},"header":{"type":"string","minLength":1}}}';
const HEADER_SOURCE = '{"anyOf":[{"type":"string","minLength":1},{"type":"object","additionalProperties":false,"required":["args"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string","minLength":1}},"prefix":{"type":"string"}}}]}';
const ONE_OR_MORE_STRINGS = STRINGS;
const SCHEMA = '{"type":"object","additionalProperties":false,"required":["algorithms"],"properties":{'
  + '"algorithms":{"anyOf":[' + ALG + ',{"type":"array","minItems":1,"items":' + ALG + '}]},'
  + '"secret":{"type":"string","minLength":1},'
  + '"jwks-file":{"type":"object","additionalProperties":false,"required":["args","text"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string"}},"text":{"type":"string"}}},'
  + '"jwks-url":{"type":"string","pattern":"^https?://"},'
  + '"issuer":' + STRINGS + ',"audience":' + STRINGS + ',"required-claims":' + STRINGS + ','
  + '"clock-skew-secs":{"type":"integer","minimum":0,"maximum":3600},'
  + '"claims-to-headers":{"type":"object","additionalProperties":false,"properties":{"claim":{"anyOf":[' + CLAIM + ',{"type":"array","items":' + CLAIM + '}]}}},'
  + '"token-from":{"type":"object","additionalProperties":false,"properties":{'
  + '"header":{"anyOf":[' + HEADER_SOURCE + ',{"type":"array","items":' + HEADER_SOURCE + '}]},'
  + '"cookie":' + ONE_OR_MORE_STRINGS + ',"query":' + ONE_OR_MORE_STRINGS + '}},'
  + '"filter-name":{"type":"string"}}}';

/** A refresh forced by an unknown `kid` happens at most this often per filter (all threads). */
const REFRESH_MIN_MS: u64 = 5_000;
/** JWKS freshness when the response names none (Cache-Control max-age), and its bounds. */
const DEFAULT_MAX_AGE_S: u64 = 300;
const MIN_MAX_AGE_S: u64 = 30;
const MAX_MAX_AGE_S: u64 = 86_400;
const CALLOUT_TIMEOUT_MS: u32 = 3000;
/** The timer refreshes keys that go stale within this (it ticks every 10 s). */
const TICK_AHEAD_MS: u64 = 15_000;

/** One verification key: an asymmetric JWK (as JSON text) or an HMAC secret. */
class Key {
  constructor(public kid: string | null, public kty: string, public alg: string | null, public jwk: string, public secret: Uint8Array | null) {}
}

/** Where a token may come from, tried in order. */
class Source {
  constructor(public kind: string, public name: string, public prefix: string) {}
}

class ClaimHeader {
  constructor(public claim: string, public header: string) {}
}

function isHmac(alg: string): bool {
  return alg.startsWith("HS");
}

function hashOf(alg: string): HashAlgorithm {
  return alg.endsWith("512") ? HashAlgorithm.Sha512 : alg.endsWith("384") ? HashAlgorithm.Sha384 : HashAlgorithm.Sha256;
}

function signatureOf(alg: string): SignatureAlgorithm {
  if (alg == "RS256") return SignatureAlgorithm.Rs256;
  if (alg == "RS384") return SignatureAlgorithm.Rs384;
  if (alg == "RS512") return SignatureAlgorithm.Rs512;
  if (alg == "PS256") return SignatureAlgorithm.Ps256;
  if (alg == "ES256") return SignatureAlgorithm.Es256;
  if (alg == "ES384") return SignatureAlgorithm.Es384;
  return SignatureAlgorithm.EdDsa;
}

/** The JWK key type an algorithm needs. */
function ktyOf(alg: string): string {
  if (isHmac(alg)) return "oct";
  if (alg.startsWith("RS") || alg.startsWith("PS")) return "RSA";
  if (alg.startsWith("ES")) return "EC";
  return "OKP";
}

/** An algorithm to check a JWK's usability with at load (any that fits its type and curve). */
function probeAlg(key: Json): string | null {
  const kty = key.getString("kty");
  const crv = key.getString("crv");
  if (kty == "RSA") return "RS256";
  if (kty == "EC") return crv == "P-384" ? "ES384" : "ES256";
  if (kty == "OKP") return "EdDSA";
  return null;
}

/** The keys of a JWKS document; `errors` gets a line per refused key (null: not a JWKS). */
function readJwks(text: string, errors: string[]): Key[] | null {
  const doc = parseJson(text);
  if (doc === null || doc.kind != Kind.Object) return null;
  const list = doc.get("keys");
  if (list === null || list.kind != Kind.Array) return null;
  const out = new Array<Key>(0);
  for (let i = 0; i < list.items.length; i++) {
    const k = list.items[i];
    const kty = k.kind == Kind.Object ? k.getString("kty") : null;
    if (kty === null) {
      errors.push("key " + (i + 1).toString() + " has no kty");
      continue;
    }
    const use = k.getString("use");
    if (use !== null && use != "sig") continue; // an encryption key: not for us
    const kid = k.getString("kid");
    const alg = k.getString("alg");
    if (kty == "oct") {
      const kv = k.getString("k");
      const secret: Uint8Array | null = kv === null ? null : base64urlDecode(kv!);
      if (secret === null || secret.length == 0) errors.push("oct key " + (i + 1).toString() + " has no base64url `k`");
      else out.push(new Key(kid, kty, alg, "", secret));
      continue;
    }
    const jwk = text.slice(k.start, k.end);
    const probe = probeAlg(k);
    if (probe === null) {
      errors.push("key " + (i + 1).toString() + ": kty " + kty + " is not RSA, EC, OKP or oct");
      continue;
    }
    // An unusable key (bad modulus, unknown curve) is found now, not on a request.
    const v = verifySignature(signatureOf(probe), jwk, new Uint8Array(0), new Uint8Array(0));
    if (v.error !== null) {
      errors.push("key " + (i + 1).toString() + (kid !== null ? " (kid " + kid + ")" : "") + ": " + v.error!);
      continue;
    }
    out.push(new Key(kid, kty, alg, jwk, null));
  }
  return out;
}

/** Cache-Control max-age of a JWKS response, bounded; the default when absent. */
function maxAgeOf(headers: string | null): u64 {
  if (headers === null) return DEFAULT_MAX_AGE_S;
  const parts = headers.toLowerCase().split(",");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    if (p.startsWith("max-age=")) {
      const n = I64.parseInt(p.slice(8));
      if (n <= 0) return MIN_MAX_AGE_S;
      const s = <u64>n;
      return s < MIN_MAX_AGE_S ? MIN_MAX_AGE_S : s > MAX_MAX_AGE_S ? MAX_MAX_AGE_S : s;
    }
  }
  return DEFAULT_MAX_AGE_S;
}

class Jwt extends RootContext {
  algorithms: string[] = [];
  secret: Uint8Array | null = null;
  fileKeys: Key[] = [];
  url: string = "";
  urlKeys: Key[] = [];
  /** kv version of the JWKS the urlKeys came from (-1: none loaded). */
  loadedVersion: i64 = -1;
  /** When the loaded JWKS goes stale (ms since the epoch). */
  freshUntil: u64 = 0;
  issuers: string[] = [];
  audiences: string[] = [];
  required: string[] = [];
  skew: f64 = 30;
  claimHeaders: ClaimHeader[] = [];
  sources: Source[] = [];
  filter: string = "";
  decisions: u32 = 0;
  refreshes: u32 = 0;

  constructor() {
    super("jwt", "0.1.0");
    // on-tick (every 10 s with a jwks-url, see first-party.ts) refreshes the JWKS ahead of its expiry.
    this.hooks = [Hook.OnRequestHeaders, Hook.OnTick];
    this.configSchema = SCHEMA;
  }

  onTick(): void {
    if (this.url.length > 0) this.refresh(false, TICK_AHEAD_MS);
  }

  configure(config: Config): ConfigError | null {
    this.filter = config.getString("filter-name", "jwt");
    this.algorithms = config.getStrings("algorithms");
    let hmacs = false;
    let asymmetric = false;
    for (let i = 0; i < this.algorithms.length; i++) {
      if (isHmac(this.algorithms[i])) hmacs = true;
      else asymmetric = true;
    }
    const secret = config.getString("secret", "");
    if (config.has("secret")) {
      // RFC 7518 §3.2: an HMAC key at least as long as the hash.
      if (utf8(secret).length < 32) config.child("secret")!.error("secret must be at least 32 bytes (RFC 7518 §3.2); generate one with `openssl rand -base64 32`");
      if (!hmacs) config.child("secret")!.error("secret is for HS256/384/512, and `algorithms` lists none of them");
      this.secret = utf8(secret);
    }
    const text = fileText(config, "jwks-file");
    if (text !== null) {
      const errors = new Array<string>(0);
      const keys = readJwks(text, errors);
      const node = config.child("jwks-file")!;
      if (keys === null) node.error("jwks-file is not a JWKS document ({\"keys\": [ … ]})");
      else if (errors.length > 0) node.error("jwks-file: " + errors[0]);
      else if (keys.length == 0) node.error("jwks-file holds no signing keys");
      else this.fileKeys = keys;
    }
    this.url = config.getString("jwks-url", "");
    if (this.url.length > 0 && !this.url.startsWith("https://") && !this.url.startsWith("http://")) config.child("jwks-url")!.error("jwks-url must be an http:// or https:// URL");
    if (asymmetric && this.fileKeys.length == 0 && this.url.length == 0 && !config.has("jwks-file")) config.error("algorithms lists an asymmetric algorithm: give `jwks-file` or `jwks-url`");
    if (hmacs && !config.has("secret") && !config.has("jwks-file") && this.url.length == 0) config.error("algorithms lists HS256/384/512: give `secret` (or `oct` keys in a JWKS)");
    this.issuers = config.getStrings("issuer");
    this.audiences = config.getStrings("audience");
    this.required = config.getStrings("required-claims");
    this.skew = <f64>config.getInt("clock-skew-secs", 30);
    const c2h = config.child("claims-to-headers");
    if (c2h !== null) {
      const claims = c2h.children("claim");
      for (let i = 0; i < claims.length; i++) {
        const a = claims[i].arg(0);
        const h = claims[i].propString("header").toLowerCase();
        if (a !== null && a.asText !== null && h.length > 0) this.claimHeaders.push(new ClaimHeader(a.asText!, h));
      }
    }
    const from = config.child("token-from");
    if (from !== null) {
      const nodes = from.children();
      for (let i = 0; i < nodes.length; i++) {
        const n = nodes[i];
        const a = n.arg(0);
        const name = a !== null && a.asText !== null ? a.asText! : "";
        if (n.name == "header") this.sources.push(new Source("header", name.toLowerCase(), n.propString("prefix", "")));
        else this.sources.push(new Source(n.name, name, ""));
      }
    }
    if (this.sources.length == 0) this.sources.push(new Source("header", "authorization", "Bearer "));
    this.decisions = defineMetric("jwt_decisions_total", MetricKind.Counter, "JWT filter decisions", ["filter", "decision"]);
    this.refreshes = defineMetric("jwt_jwks_fetches_total", MetricKind.Counter, "JWKS fetches from jwks-url", ["filter", "outcome"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }

  /** Loads the JWKS the store holds if it is newer than ours; whether it is still fresh. */
  fromStore(now: u64): bool {
    const e = kvGet("jwks");
    if (e === null) return false;
    const text = fromUtf8(e.value);
    const nl = text.indexOf("\n");
    const until = <u64>I64.parseInt(text.slice(0, nl));
    if (<i64>e.version != this.loadedVersion) {
      const errors = new Array<string>(0);
      const keys = readJwks(text.slice(nl + 1), errors);
      if (keys !== null) {
        this.urlKeys = keys;
        this.loadedVersion = <i64>e.version;
        this.freshUntil = until;
      }
    }
    return until > now;
  }

  /**
   * Brings the jwks-url keys up to date: from the store (shared by every thread and instance
   * of this filter) when another one fetched, else by fetching, at most once per
   * REFRESH_MIN_MS (a lock in the store). `force`: an unknown kid, refresh even if fresh;
   * `ahead`: treat keys that go stale within that many ms as stale (the timer's refresh).
   */
  refresh(force: bool, ahead: u64 = 0): void {
    const clock = nowMs();
    const now = clock + ahead;
    if (!force && now < this.freshUntil) return;
    const before = this.loadedVersion;
    if (this.fromStore(now) && !force) return;
    if (force && this.loadedVersion != before) return; // someone else just fetched
    if (kvCas("jwks-lock", utf8("1"), null, REFRESH_MIN_MS) === null) return;
    const r = httpCallout(calloutRequest("GET", this.url, [header("accept", "application/jwk-set+json, application/json")], new Uint8Array(0), CALLOUT_TIMEOUT_MS));
    if (!r.ok || r.response!.status != 200) {
      recordMetric(this.refreshes, 1, [this.filter, "failed"]);
      log(LogLevel.Warn, "JWKS fetch from " + this.url + " failed (" + (r.ok ? "status " + r.response!.status.toString() : r.error!) + "); keeping the keys we have");
      return;
    }
    const res = r.response!;
    let cc: string | null = null;
    for (let i = 0; i < res.headers.length; i++) if (res.headers[i].name == "cache-control") cc = res.headers[i].value;
    const body = fromUtf8(res.body);
    const errors = new Array<string>(0);
    const keys = readJwks(body, errors);
    if (keys === null) {
      recordMetric(this.refreshes, 1, [this.filter, "failed"]);
      log(LogLevel.Warn, "JWKS from " + this.url + " is not a JWKS document; keeping the keys we have");
      return;
    }
    if (errors.length > 0) log(LogLevel.Warn, "JWKS from " + this.url + ": " + errors[0] + " (skipped)");
    const maxAge = maxAgeOf(cc);
    const until = clock + maxAge * 1000;
    this.urlKeys = keys;
    this.freshUntil = until;
    const prev = kvGet("jwks");
    const version = kvCas("jwks", utf8(until.toString() + "\n" + body), prev === null ? null : new Box<u64>(prev.version), maxAge * 1000);
    this.loadedVersion = version === null ? -1 : <i64>version.value;
    recordMetric(this.refreshes, 1, [this.filter, "ok"]);
  }

  /** Keys that may have signed a token with this alg and kid. */
  candidates(alg: string, kid: string | null): Key[] {
    const kty = ktyOf(alg);
    const out = new Array<Key>(0);
    for (let pass = 0; pass < 2; pass++) {
      const list = pass == 0 ? this.fileKeys : this.urlKeys;
      for (let i = 0; i < list.length; i++) {
        const k = list[i];
        if (k.kty != kty) continue;
        if (k.alg !== null && k.alg! != alg) continue;
        if (kid !== null && (k.kid === null || k.kid! != kid)) continue;
        out.push(k);
      }
    }
    return out;
  }
}

/** Why a token was refused: the stable code, the message, the metric's decision. */
class Refusal {
  constructor(public code: string, public message: string) {}
}

function claimText(payload: string, v: Json): string {
  if (v.kind == Kind.String) return v.str;
  if (v.kind == Kind.Number) return v.num == Math.floor(v.num) && Math.abs(v.num) < 9.0e15 ? (<i64>v.num).toString() : v.num.toString();
  if (v.kind == Kind.Bool) return v.bool ? "true" : "false";
  return payload.slice(v.start, v.end);
}

function headerSafe(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c != 9) || c == 127) return false;
  }
  return true;
}

class Check extends HttpContext {
  constructor(id: u64, private root: Jwt) {
    super(id);
  }

  token(request: Request): string | null {
    const sources = this.root.sources;
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i];
      if (s.kind == "header") {
        const v = request.header(s.name);
        if (v === null) continue;
        if (s.prefix.length == 0) return v.trim();
        if (v.length > s.prefix.length && v.slice(0, s.prefix.length).toLowerCase() == s.prefix.toLowerCase()) return v.slice(s.prefix.length).trim();
      } else if (s.kind == "cookie") {
        const cookies = request.headers.getAll("cookie");
        for (let c = 0; c < cookies.length; c++) {
          const pairs = cookies[c].split(";");
          for (let p = 0; p < pairs.length; p++) {
            const pair = pairs[p].trim();
            const eq = pair.indexOf("=");
            if (eq > 0 && pair.slice(0, eq) == s.name) return pair.slice(eq + 1);
          }
        }
      } else {
        const q = request.queryParam(s.name);
        if (q !== null && q.length > 0) return q;
      }
    }
    return null;
  }

  refusal: Refusal | null = null;

  refuse(code: string, message: string): Json | null {
    this.refusal = new Refusal(code, message);
    return null;
  }

  /** The verified claims, or null with `refusal` saying why not. */
  check(token: string): Json | null {
    const root = this.root;
    const parts = token.split(".");
    if (parts.length != 3 || parts[0].length == 0 || parts[1].length == 0) return this.refuse("WEIR_ERR_AUTH_INVALID", "malformed token");
    const hb = base64urlDecode(parts[0]);
    const head: Json | null = hb === null ? null : parseJson(fromUtf8(hb!));
    if (head === null || head.kind != Kind.Object) return this.refuse("WEIR_ERR_AUTH_INVALID", "malformed token header");
    const algOrNull = head!.getString("alg");
    if (algOrNull === null || !root.algorithms.includes(algOrNull!)) return this.refuse("WEIR_ERR_AUTH_INVALID", "algorithm " + (algOrNull === null ? "(none)" : algOrNull!) + " is not accepted");
    const alg = algOrNull!;
    // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
    if (head!.get("crit") !== null) return this.refuse("WEIR_ERR_AUTH_INVALID", "unsupported critical header parameters");
    const sig = base64urlDecode(parts[2]);
    if (sig === null || sig.length == 0) return this.refuse("WEIR_ERR_AUTH_INVALID", "malformed signature");
    const input = utf8(parts[0] + "." + parts[1]);
    const kid = head!.getString("kid");
    let valid = false;
    if (isHmac(alg)) {
      const h = hashOf(alg);
      const secret = root.secret;
      if (secret !== null && constantTimeEqual(hmac(h, secret, input), sig)) valid = true;
      let keys = root.candidates(alg, kid);
      if (keys.length == 0 && root.url.length > 0 && kid !== null && secret === null) {
        root.refresh(true);
        keys = root.candidates(alg, kid);
      }
      for (let i = 0; i < keys.length && !valid; i++) valid = constantTimeEqual(hmac(h, keys[i].secret!, input), sig);
      if (!valid && secret === null && keys.length == 0) return this.refuse("WEIR_ERR_AUTH_UNKNOWN_KEY", "no key " + (kid === null ? "for " + alg : "with kid " + kid!));
    } else {
      if (root.url.length > 0) root.refresh(false);
      let keys = root.candidates(alg, kid);
      if (keys.length == 0 && root.url.length > 0) {
        root.refresh(true);
        keys = root.candidates(alg, kid);
      }
      if (keys.length == 0) return this.refuse("WEIR_ERR_AUTH_UNKNOWN_KEY", "no key " + (kid === null ? "for " + alg : "with kid " + kid!));
      const sa = signatureOf(alg);
      for (let i = 0; i < keys.length && !valid; i++) valid = verifySignature(sa, keys[i].jwk, input, sig).valid;
    }
    if (!valid) return this.refuse("WEIR_ERR_AUTH_INVALID", "bad signature");
    const pb = base64urlDecode(parts[1]);
    const payloadText = pb === null ? "" : fromUtf8(pb!);
    const claims = parseJson(payloadText);
    if (claims === null || claims.kind != Kind.Object) return this.refuse("WEIR_ERR_AUTH_INVALID", "the payload is not a JSON object of claims");
    const now = <f64>nowMs() / 1000;
    const exp = claims.get("exp");
    const nbf = claims.get("nbf");
    const iat = claims.get("iat");
    if ((exp !== null && exp.kind != Kind.Number) || (nbf !== null && nbf.kind != Kind.Number) || (iat !== null && iat.kind != Kind.Number)) return this.refuse("WEIR_ERR_AUTH_INVALID", "exp, nbf and iat must be numbers");
    if (exp !== null && now > exp.num + root.skew) return this.refuse("WEIR_ERR_AUTH_EXPIRED", "the token has expired");
    if (nbf !== null && now + root.skew < nbf.num) return this.refuse("WEIR_ERR_AUTH_NOT_YET_VALID", "the token is not valid yet (nbf)");
    if (iat !== null && now + root.skew < iat.num) return this.refuse("WEIR_ERR_AUTH_NOT_YET_VALID", "the token was issued in the future (iat)");
    if (root.issuers.length > 0) {
      const iss = claims.getString("iss");
      if (iss === null || !root.issuers.includes(iss!)) return this.refuse("WEIR_ERR_AUTH_CLAIMS", "wrong issuer");
    }
    if (root.audiences.length > 0) {
      const aud = claims.get("aud");
      let ok = false;
      if (aud !== null && aud.kind == Kind.String) ok = root.audiences.includes(aud.str);
      else if (aud !== null && aud.kind == Kind.Array) {
        for (let i = 0; i < aud.items.length && !ok; i++) ok = aud.items[i].kind == Kind.String && root.audiences.includes(aud.items[i].str);
      }
      if (!ok) return this.refuse("WEIR_ERR_AUTH_CLAIMS", "wrong audience");
    }
    for (let i = 0; i < root.required.length; i++) {
      const v = claims.get(root.required[i]);
      if (v === null || v.kind == Kind.Null) return this.refuse("WEIR_ERR_AUTH_CLAIMS", "missing claim " + root.required[i]);
    }
    // Spans below refer to the payload text.
    claims.str = payloadText;
    return claims;
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    // Only this filter may set these headers: a client's own copies go first.
    for (let i = 0; i < root.claimHeaders.length; i++) request.removeHeader(root.claimHeaders[i].header);
    const token = this.token(request);
    if (token === null || token.length == 0) {
      recordMetric(root.decisions, 1, [root.filter, "missing"]);
      return unauthorized("WEIR_ERR_AUTH_MISSING", "no bearer token", "Bearer");
    }
    const r = this.check(token);
    if (r === null) {
      const refusal = this.refusal!;
      recordMetric(root.decisions, 1, [root.filter, refusal.code.slice(14).toLowerCase()]);
      return unauthorized(refusal.code, refusal.message, "Bearer error=\"invalid_token\", error_description=" + jsonString(refusal.message));
    }
    const claims = r!;
    for (let i = 0; i < root.claimHeaders.length; i++) {
      const ch = root.claimHeaders[i];
      const v = claims.get(ch.claim);
      if (v === null || v.kind == Kind.Null) continue;
      const text = claimText(claims.str, v);
      if (headerSafe(text)) request.setHeader(ch.header, text);
      else log(LogLevel.Warn, "claim " + ch.claim + " holds control characters; not copied to " + ch.header);
    }
    const sub = claims.getString("sub");
    if (sub !== null) request.setProperty("auth.subject", sub!);
    const iss = claims.getString("iss");
    if (iss !== null) request.setProperty("auth.issuer", iss!);
    request.setProperty("auth.method", "jwt");
    recordMetric(root.decisions, 1, [root.filter, "allowed"]);
    return Decision.continue();
  }
}

registerPlugin(new Jwt());

export * from "@weir/sdk-assemblyscript/exports";

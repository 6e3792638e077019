// The Weir plugin SDK for AssemblyScript.
//
// A plugin is two classes: a root (`RootContext`) created once per instance, described to the host
// and configured from the plugin's KDL block, and a per-request `HttpContext` whose hooks
// run for one exchange (one context id). Every hook defaults to "continue". The entry file
// registers the root and re-exports the ABI glue:
//
//   registerPlugin(new MyPlugin());
//   export * from "@weir/sdk-assemblyscript/exports";
//
// Names follow the WIT mechanically (`on-request-headers` → `onRequestHeaders`).

import * as abi from "./generated/abi";
import { setAbortHook } from "./memory";

export * from "./crypto";

export {
  Box,
  BodyMode,
  CalloutRequest,
  CalloutResponse,
  ConfigValue,
  ConfigValueTag,
  Header,
  Hook,
  KvEntry,
  LogLevel,
  LogSummary,
  MetricKind,
  PluginInfo,
  Property,
  Target,
  TokenBucketResult,
  UpstreamInfo,
} from "./generated/abi";

import { Box, BodyMode, CalloutRequest, CalloutResponse, ConfigValue, ConfigValueTag, Header, Hook, KvEntry, LogLevel, LogSummary, MetricKind, PluginInfo, Property, Target, TokenBucketResult, UpstreamInfo } from "./generated/abi";

// ---- host functions ----

/** Writes a log line; the host adds the plugin name and request id. */
export function log(level: LogLevel, message: string): void {
  abi.hostLog(level, message);
}

/** Defines a metric (call from configure); the same name returns the same id. */
export function defineMetric(name: string, kind: MetricKind, help: string, labelNames: string[] = []): u32 {
  return abi.hostDefineMetric(name, kind, help, labelNames);
}

/** Records a value for a metric from defineMetric, one label value per label name. */
export function recordMetric(id: u32, value: f64, labelValues: string[] = []): void {
  abi.hostRecordMetric(id, value, labelValues);
}

/** Adds `delta` to the counter `key` in the current window of `windowMs`; returns the new total. */
export function counterAdd(key: string, delta: i64, windowMs: u64): i64 {
  return abi.hostCounterAdd(key, delta, windowMs);
}

/** Takes `cost` tokens from the bucket `key` refilled at `ratePerSec` up to `burst`. */
export function tokenBucketTake(key: string, ratePerSec: f64, burst: u32, cost: u32 = 1): TokenBucketResult {
  return abi.hostTokenBucketTake(key, ratePerSec, burst, cost);
}

/** Reads a key; null if absent or expired. */
export function kvGet(key: string): KvEntry | null {
  return abi.hostKvGet(key);
}

/**
 * Writes `value` if the stored version is `expectedVersion` (null: only if the key is absent).
 * `ttlMs` 0 keeps it forever. Returns the new version, or null on a conflict.
 */
export function kvCas(key: string, value: Uint8Array, expectedVersion: Box<u64> | null, ttlMs: u64 = 0): Box<u64> | null {
  return abi.hostKvCas(key, value, expectedVersion, ttlMs);
}

/** ISO 3166 alpha-2 country of an IP address; null if unknown. */
export function geoCountry(ip: string): string | null {
  return abi.hostGeoCountry(ip);
}

/** Wall-clock time in ms since the epoch. */
export function nowMs(): u64 {
  return abi.hostNowMs();
}

/** Monotonic time in ns from an arbitrary origin. */
export function monotonicNs(): u64 {
  return abi.hostMonotonicNs();
}

/** A random number from a cryptographic source. */
export function randomU64(): u64 {
  return abi.hostRandomU64();
}

/**
 * Sets attribute `key` to `value` on the request's trace span (`observability { tracing }`).
 * Ignored when the request is not recorded and for the keys Weir sets itself (`http.*`,
 * `url.*`, `server.*`, `client.*`, `network.*`, `error.type`, `weir.*`): use your own
 * namespace, e.g. `app.tenant`.
 */
export function spanSetAttribute(key: string, value: string): void {
  abi.hostSpanSetAttribute(key, value);
}

/** Adds an event `name` with `attributes` (key → value) to the request's trace span, timestamped now. */
export function spanAddEvent(name: string, attributes: Map<string, string> | null = null): void {
  const list = new Array<Property>(0);
  if (attributes !== null) {
    const keys = attributes.keys();
    for (let i = 0; i < keys.length; i++) {
      const p = new Property();
      p.key = unchecked(keys[i]);
      p.value = attributes.get(p.key);
      list.push(p);
    }
  }
  abi.hostSpanAddEvent(name, list);
}

/** Outcome of httpCallout: a response, or an error (a `WEIR_ERR_*` code or a short reason). */
export class CalloutResult {
  constructor(public response: CalloutResponse | null, public error: string | null) {}
  get ok(): bool {
    return this.response !== null;
  }
}

/** Makes an HTTP request and waits for the whole response. */
export function httpCallout(request: CalloutRequest): CalloutResult {
  const r = abi.hostHttpCallout(request);
  return r.isErr ? new CalloutResult(null, r.err) : new CalloutResult(r.ok, null);
}

/** A callout request with the usual defaults (no headers, empty body, 5 s timeout). */
export function calloutRequest(method: string, url: string, headers: Header[] = [], body: Uint8Array = new Uint8Array(0), timeoutMs: u32 = 5000): CalloutRequest {
  const r = new CalloutRequest();
  r.method = method;
  r.url = url;
  r.headers = headers;
  r.body = body;
  r.timeoutMs = timeoutMs;
  return r;
}

// ---- small helpers ----

/** A header record. */
export function header(name: string, value: string): Header {
  const h = new Header();
  h.name = name.toLowerCase();
  h.value = value;
  return h;
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The string of UTF-8 bytes. */
export function fromUtf8(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength);
}

// ---- config ----

/** Why configure refused the config; `node` is the KDL node to blame (-1: none). */
export class ConfigError {
  constructor(public message: string, public node: i32 = -1) {}
}

/** Collects the first error found while reading a config, for configure's answer. */
class ConfigErrors {
  first: ConfigError | null = null;
  add(message: string, node: i32): void {
    if (this.first === null) this.first = new ConfigError(message, node);
  }
}

function valueKind(v: ConfigValue): string {
  switch (v.tag) {
    case ConfigValueTag.Text: return "a string";
    case ConfigValueTag.Integer: return "an integer";
    case ConfigValueTag.Float: return "a number";
    case ConfigValueTag.Boolean: return "a boolean";
    default: return "null";
  }
}

/**
 * One KDL node of the plugin's config block (the root is the block itself). Typed getters read
 * the first argument of a child node (`limit 100` → getInt("limit")) or a property
 * (`key header="x-api-key"` → prop("header")). A missing value gives the default; a value of
 * the wrong type gives the default and records an error that configure reports (with the
 * node, which the host maps to file:line:column).
 */
export class Config {
  /** Child nodes in document order. */
  readonly nodes: Config[] = [];
  constructor(
    /** Node name (empty for the root). */
    public readonly name: string,
    /** Index of the node in the host's list; -1 for the root. */
    public readonly index: i32,
    /** Positional arguments. */
    public readonly args: ConfigValue[],
    /** Properties in source order. */
    public readonly props: abi.ConfigProp[],
    private readonly errors: ConfigErrors,
  ) {}

  /** The first child node called `name`, or null. */
  child(name: string): Config | null {
    for (let i = 0; i < this.nodes.length; i++) if (this.nodes[i].name == name) return this.nodes[i];
    return null;
  }

  /** Child nodes called `name` (every child when `name` is empty). */
  children(name: string = ""): Config[] {
    if (name.length == 0) return this.nodes.slice(0);
    const out = new Array<Config>(0);
    for (let i = 0; i < this.nodes.length; i++) if (this.nodes[i].name == name) out.push(this.nodes[i]);
    return out;
  }

  has(name: string): bool {
    return this.child(name) !== null;
  }

  /** Argument `i`, or null. */
  arg(i: i32): ConfigValue | null {
    return i < this.args.length ? this.args[i] : null;
  }

  /** Property `name`, or null. */
  prop(name: string): ConfigValue | null {
    for (let i = 0; i < this.props.length; i++) if (this.props[i].name == name) return this.props[i].value;
    return null;
  }

  /** Records an error about this node; configure reports the first one. */
  error(message: string): void {
    this.errors.add(message, this.index);
  }

  /** Records "missing" unless a child `name` exists; returns whether it does. */
  require(name: string): bool {
    if (this.has(name)) return true;
    this.error((this.name.length ? this.name + ": " : "") + "missing required node `" + name + "`");
    return false;
  }

  private first(name: string): ConfigValue | null {
    const c = this.child(name);
    if (c === null) return null;
    if (c.args.length == 0) {
      c.error("`" + name + "` needs a value");
      return null;
    }
    return c.args[0];
  }

  private wrong(name: string, want: string, v: ConfigValue): void {
    const c = this.child(name);
    (c !== null ? c : this).error("`" + name + "` must be " + want + ", not " + valueKind(v));
  }

  getString(name: string, fallback: string = ""): string {
    const v = this.first(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Text) return v.asText!;
    this.wrong(name, "a string", v);
    return fallback;
  }

  getInt(name: string, fallback: i64 = 0): i64 {
    const v = this.first(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Integer) return v.asInteger;
    this.wrong(name, "an integer", v);
    return fallback;
  }

  getFloat(name: string, fallback: f64 = 0): f64 {
    const v = this.first(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Float) return v.asFloat;
    if (v.tag == ConfigValueTag.Integer) return <f64>v.asInteger;
    this.wrong(name, "a number", v);
    return fallback;
  }

  getBool(name: string, fallback: bool = false): bool {
    const v = this.first(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Boolean) return v.asBoolean;
    this.wrong(name, "a boolean", v);
    return fallback;
  }

  /** Every argument of child `name` as strings (`methods "GET" "HEAD"`). */
  getStrings(name: string): string[] {
    const out = new Array<string>(0);
    const c = this.child(name);
    if (c === null) return out;
    for (let i = 0; i < c.args.length; i++) {
      const v = c.args[i];
      if (v.tag == ConfigValueTag.Text) out.push(v.asText!);
      else c.error("`" + name + "` arguments must be strings, not " + valueKind(v));
    }
    return out;
  }

  /** String property `name` of this node. */
  propString(name: string, fallback: string = ""): string {
    const v = this.prop(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Text) return v.asText!;
    this.error("property `" + name + "` must be a string, not " + valueKind(v));
    return fallback;
  }

  /** Integer property `name` of this node. */
  propInt(name: string, fallback: i64 = 0): i64 {
    const v = this.prop(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Integer) return v.asInteger;
    this.error("property `" + name + "` must be an integer, not " + valueKind(v));
    return fallback;
  }

  /** Boolean property `name` of this node. */
  propBool(name: string, fallback: bool = false): bool {
    const v = this.prop(name);
    if (v === null) return fallback;
    if (v.tag == ConfigValueTag.Boolean) return v.asBoolean;
    this.error("property `" + name + "` must be a boolean, not " + valueKind(v));
    return fallback;
  }
}

function buildConfig(nodes: abi.ConfigNode[], errors: ConfigErrors): Config {
  const root = new Config("", -1, [], [], errors);
  const made = new Array<Config>(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    const c = new Config(n.name, i, n.args, n.props, errors);
    made[i] = c;
    const parent = n.parent;
    // Parents precede children in document order; anything else hangs off the root.
    if (parent !== null && <i32>parent.value < i) made[<i32>parent.value].nodes.push(c);
    else root.nodes.push(c);
  }
  return root;
}

// ---- views ----
//
// Since ABI 0.2 a hook receives no head: the views below read the request and response
// through the host's `exchange` functions when asked, so only what a plugin reads is copied.
// Changes queue mutations in the hook's batch; later reads in the same hook see them.

/** Values of header `n` (lowercase) after the batch's header mutations on top of `base`. */
function overlayValues(base: string[], batch: abi.Mutation[], n: string): string[] {
  let out = base;
  for (let i = 0; i < batch.length; i++) {
    const m = unchecked(batch[i]);
    if (m.tag == abi.MutationTag.SetHeader && m.asSetHeader!.name == n) out = [m.asSetHeader!.value];
    else if (m.tag == abi.MutationTag.AddHeader && m.asAddHeader!.name == n) out.push(m.asAddHeader!.value);
    else if (m.tag == abi.MutationTag.RemoveHeader && m.asRemoveHeader! == n) out = [];
  }
  return out;
}

/** Whether the batch changes header `n` (lowercase). */
function touches(batch: abi.Mutation[], n: string): bool {
  for (let i = 0; i < batch.length; i++) {
    const m = unchecked(batch[i]);
    if ((m.tag == abi.MutationTag.SetHeader && m.asSetHeader!.name == n) || (m.tag == abi.MutationTag.AddHeader && m.asAddHeader!.name == n) || (m.tag == abi.MutationTag.RemoveHeader && m.asRemoveHeader! == n)) return true;
  }
  return false;
}

// Mutation records (and their header/property payloads) are reused from call to call: the
// batch is rebuilt by every hook and the host has copied the previous one out by then, so
// the common hook allocates no records (measured in bench/micro.ts: collections were most
// of an SDK hook's cost).
const mutPool = new Array<abi.Mutation>(0);
const hdrPool = new Array<Header>(0);
const propPool = new Array<Property>(0);

/** Appends a pooled mutation with `tag` to the batch. */
function pushMutation(batch: abi.Mutation[], tag: abi.MutationTag): abi.Mutation {
  const i = batch.length;
  let m: abi.Mutation;
  if (i < mutPool.length) m = unchecked(mutPool[i]);
  else {
    m = new abi.Mutation();
    mutPool.push(m);
    hdrPool.push(new Header());
    propPool.push(new Property());
  }
  m.tag = tag;
  batch.push(m);
  return m;
}

function pushHeader(batch: abi.Mutation[], tag: abi.MutationTag, name: string, value: string): void {
  const m = pushMutation(batch, tag);
  const slot = unchecked(hdrPool[batch.length - 1]);
  slot.name = lowerName(name);
  slot.value = value;
  if (tag == abi.MutationTag.SetHeader) m.asSetHeader = slot;
  else m.asAddHeader = slot;
}

function lowerName(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return name.toLowerCase();
  }
  return name;
}

/** Headers of the request or the response, read from the host on access; changes join the batch. */
export class Headers {
  constructor(private response: bool, private batch: abi.Mutation[], public writable: bool, private what: string) {}

  private check(): void {
    if (!this.writable) abort(this.what + " headers cannot be changed in this hook");
  }

  private hostAll(n: string): string[] {
    return this.response ? abi.exchangeResponseHeaderValues(n) : abi.exchangeRequestHeaderValues(n);
  }

  /** The first value of `name`, or null. */
  get(name: string): string | null {
    const n = lowerName(name);
    if (this.batch.length != 0 && touches(this.batch, n)) {
      const all = overlayValues(this.hostAll(n), this.batch, n);
      return all.length == 0 ? null : all[0];
    }
    return this.response ? abi.exchangeResponseHeader(n) : abi.exchangeRequestHeader(n);
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const n = lowerName(name);
    const base = this.hostAll(n);
    return this.batch.length != 0 ? overlayValues(base, this.batch, n) : base;
  }

  has(name: string): bool {
    return this.get(name) !== null;
  }

  /** Every header in order (names lowercase; a repeated header once per value). */
  entries(): Header[] {
    let list = this.response ? abi.exchangeResponseHeaders() : abi.exchangeRequestHeaders();
    for (let i = 0; i < this.batch.length; i++) {
      const m = unchecked(this.batch[i]);
      if (m.tag == abi.MutationTag.SetHeader || m.tag == abi.MutationTag.RemoveHeader) {
        const n = m.tag == abi.MutationTag.SetHeader ? m.asSetHeader!.name : m.asRemoveHeader!;
        const kept = new Array<Header>(0);
        for (let j = 0; j < list.length; j++) if (list[j].name != n) kept.push(list[j]);
        if (m.tag == abi.MutationTag.SetHeader) kept.push(header(n, m.asSetHeader!.value));
        list = kept;
      } else if (m.tag == abi.MutationTag.AddHeader) list.push(header(m.asAddHeader!.name, m.asAddHeader!.value));
    }
    return list;
  }

  /** Replaces every value of `name` with `value`. */
  set(name: string, value: string): void {
    this.check();
    pushHeader(this.batch, abi.MutationTag.SetHeader, name, value);
  }

  /** Appends a value, keeping existing ones. */
  add(name: string, value: string): void {
    this.check();
    pushHeader(this.batch, abi.MutationTag.AddHeader, name, value);
  }

  /** Removes every value of `name`. */
  remove(name: string): void {
    this.check();
    pushMutation(this.batch, abi.MutationTag.RemoveHeader).asRemoveHeader = lowerName(name);
  }
}

/** Request properties (shared along the plugin chain), read from the host; changes join the batch. */
export class Properties {
  constructor(private batch: abi.Mutation[], public writable: bool) {}

  private check(): void {
    if (!this.writable) abort("properties cannot be changed in select-upstream");
  }

  /** The value of `key`, or null. */
  get(key: string): string | null {
    for (let i = this.batch.length - 1; i >= 0; i--) {
      const m = unchecked(this.batch[i]);
      if (m.tag == abi.MutationTag.SetProperty && m.asSetProperty!.key == key) return m.asSetProperty!.value;
      if (m.tag == abi.MutationTag.RemoveProperty && m.asRemoveProperty! == key) return null;
    }
    return abi.exchangeRequestProperty(key);
  }

  entries(): Property[] {
    let list = abi.exchangeRequestProperties();
    for (let i = 0; i < this.batch.length; i++) {
      const m = unchecked(this.batch[i]);
      if (m.tag != abi.MutationTag.SetProperty && m.tag != abi.MutationTag.RemoveProperty) continue;
      const k = m.tag == abi.MutationTag.SetProperty ? m.asSetProperty!.key : m.asRemoveProperty!;
      const kept = new Array<Property>(0);
      for (let j = 0; j < list.length; j++) if (list[j].key != k) kept.push(list[j]);
      if (m.tag == abi.MutationTag.SetProperty) {
        const p = new Property();
        p.key = k;
        p.value = m.asSetProperty!.value;
        kept.push(p);
      }
      list = kept;
    }
    return list;
  }

  set(key: string, value: string): void {
    this.check();
    const m = pushMutation(this.batch, abi.MutationTag.SetProperty);
    const p = unchecked(propPool[this.batch.length - 1]);
    p.key = key;
    p.value = value;
    m.asSetProperty = p;
  }

  remove(key: string): void {
    this.check();
    pushMutation(this.batch, abi.MutationTag.RemoveProperty).asRemoveProperty = key;
  }
}

/**
 * The request as this plugin sees it, read from the host on access. In on-request-headers its
 * setters queue mutations that the host applies after the hook; elsewhere the request is
 * read-only except for properties. One object per instance, reused by every hook call.
 */
export class Request {
  readonly headers: Headers;
  readonly properties: Properties;
  private method_: string | null = null;
  private path_: string | null = null;
  private query_: string | null = null;
  private authority_: string | null = null;
  writable: bool = false;

  constructor(private batch: abi.Mutation[]) {
    this.headers = new Headers(false, batch, false, "request");
    this.properties = new Properties(batch, true);
  }

  /** Prepares the view for one hook call (no allocation). */
  reset(writable: bool, propertiesWritable: bool): void {
    this.writable = writable;
    this.headers.writable = writable;
    this.properties.writable = propertiesWritable;
    this.method_ = null;
    this.path_ = null;
    this.query_ = null;
    this.authority_ = null;
  }

  private check(): void {
    if (!this.writable) abort("the request cannot be changed in this hook");
  }

  /** Method, uppercase. */
  get method(): string { const v = this.method_; return v !== null ? v : abi.exchangeRequestMethod(); }
  /** `http` or `https` as seen by the client. */
  get scheme(): string { return abi.exchangeRequestScheme(); }
  /** Host header or `:authority`. */
  get authority(): string { const v = this.authority_; return v !== null ? v : abi.exchangeRequestAuthority(); }
  /** Path without the query string, not decoded. */
  get path(): string { const v = this.path_; return v !== null ? v : abi.exchangeRequestPath(); }
  /** Query string without `?`; empty if none. */
  get query(): string { const v = this.query_; return v !== null ? v : abi.exchangeRequestQuery(); }
  /** Client IP address. */
  get clientAddress(): string { return abi.exchangeClientAddress(); }
  get clientPort(): u16 { return abi.exchangeClientPort(); }
  /** Name of the route that matched. */
  get routeName(): string { return abi.exchangeRouteName(); }
  /** `1.0`, `1.1` or `2`. */
  get httpVersion(): string { return abi.exchangeHttpVersion(); }

  /** Shorthands for headers.get / set / add / remove. */
  header(name: string): string | null { return this.headers.get(name); }
  setHeader(name: string, value: string): void { this.headers.set(name, value); }
  addHeader(name: string, value: string): void { this.headers.add(name, value); }
  removeHeader(name: string): void { this.headers.remove(name); }
  /** Shorthands for properties.get / set / remove. */
  property(key: string): string | null { return this.properties.get(key); }
  setProperty(key: string, value: string): void { this.properties.set(key, value); }
  removeProperty(key: string): void { this.properties.remove(key); }

  /** The value of query parameter `name` (not decoded), or null. */
  queryParam(name: string): string | null {
    const parts = this.query.split("&");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const eq = p.indexOf("=");
      const k = eq < 0 ? p : p.substring(0, eq);
      if (k == name) return eq < 0 ? "" : p.substring(eq + 1);
    }
    return null;
  }

  setMethod(method: string): void {
    this.check();
    this.method_ = method.toUpperCase();
    pushMutation(this.batch, abi.MutationTag.SetMethod).asSetMethod = method;
  }

  setPath(path: string): void {
    this.check();
    this.path_ = path;
    pushMutation(this.batch, abi.MutationTag.SetPath).asSetPath = path;
  }

  setQuery(query: string): void {
    this.check();
    this.query_ = query;
    pushMutation(this.batch, abi.MutationTag.SetQuery).asSetQuery = query;
  }

  setAuthority(authority: string): void {
    this.check();
    this.authority_ = authority;
    pushMutation(this.batch, abi.MutationTag.SetAuthority).asSetAuthority = authority;
  }

  /** Send the request to another upstream of the config, by name (canary, header routing). */
  setUpstream(name: string): void {
    this.check();
    pushMutation(this.batch, abi.MutationTag.SetUpstream).asSetUpstream = name;
  }
}

/** The response head in on-response-headers, read from the host on access; setters queue mutations. */
export class Response {
  readonly headers: Headers;
  private status_: i32 = -1;
  constructor(private batch: abi.Mutation[]) {
    this.headers = new Headers(true, batch, true, "response");
  }

  /** Prepares the view for one hook call (no allocation). */
  reset(): void {
    this.status_ = -1;
  }

  get status(): u16 { return this.status_ >= 0 ? <u16>this.status_ : abi.exchangeResponseStatus(); }

  header(name: string): string | null { return this.headers.get(name); }
  setHeader(name: string, value: string): void { this.headers.set(name, value); }
  addHeader(name: string, value: string): void { this.headers.add(name, value); }
  removeHeader(name: string): void { this.headers.remove(name); }

  setStatus(status: u16): void {
    this.status_ = status;
    pushMutation(this.batch, abi.MutationTag.SetStatus).asSetStatus = status;
  }
}

// ---- decisions ----

/** What a header hook decides. Changes made through the views go with `continue` and `pause`. */
export class Decision {
  constructor(public readonly reply: abi.LocalReply | null, public readonly pauseMs: i64 = -1) {}

  /** Go on with the next filter, applying the changes made through the views. */
  static continue(): Decision {
    return CONTINUE;
  }

  /** Stop the chain and send this reply; changes made through the views are dropped. */
  static respond(status: u16, body: string = "", headers: Header[] = []): Decision {
    return Decision.respondBytes(status, utf8(body), headers);
  }

  static respondBytes(status: u16, body: Uint8Array, headers: Header[] = []): Decision {
    const r = new abi.LocalReply();
    r.status = status;
    r.headers = headers;
    r.body = body;
    return new Decision(r);
  }

  /**
   * Hold the request for `ms` milliseconds, then go on (on-request-headers only); the changes
   * made through the views apply first. The host caps the hold (60 s per request in total).
   */
  static pause(ms: u32): Decision {
    return new Decision(null, <i64>ms);
  }

  toAbi(batch: abi.Mutation[]): abi.Decision {
    const reply = this.reply;
    if (reply !== null) return abi.Decision.respond(reply);
    if (this.pauseMs >= 0) {
      const p = new abi.PauseDecision();
      p.ms = <u32>this.pauseMs;
      p.mutations = batch;
      return abi.Decision.pause(p);
    }
    if (batch.length == 0) return ABI_CONTINUE;
    ABI_MUTATE.asMutate = batch;
    return ABI_MUTATE;
  }
}

// Reused by every call: the common decisions allocate nothing.
const CONTINUE = new Decision(null);
const ABI_CONTINUE = abi.Decision.continue();
const ABI_MUTATE = abi.Decision.mutate(new Array<abi.Mutation>(0));

/** What a body hook decides about one chunk. */
export class BodyDecision {
  constructor(private readonly d: abi.BodyDecision) {}

  /** Pass the chunk on unchanged. */
  static continue(): BodyDecision {
    return new BodyDecision(abi.BodyDecision.continue());
  }

  /** Pass these bytes on instead of the chunk. */
  static replace(bytes: Uint8Array): BodyDecision {
    return new BodyDecision(abi.BodyDecision.replace(bytes));
  }

  static replaceString(text: string): BodyDecision {
    return BodyDecision.replace(utf8(text));
  }

  /** Stop and send this reply (request body only; ignored on responses). */
  static respond(status: u16, body: string = "", headers: Header[] = []): BodyDecision {
    const r = new abi.LocalReply();
    r.status = status;
    r.headers = headers;
    r.body = utf8(body);
    return new BodyDecision(abi.BodyDecision.respond(r));
  }

  toAbi(): abi.BodyDecision {
    return this.d;
  }
}

// ---- the plugin ----

/**
 * The per-request half of a plugin: one instance per exchange (context id), created by
 * RootContext.createHttpContext before the first hook and dropped after onLog. Keep request state in
 * fields. Only the hooks the root lists in `hooks` are ever called.
 */
export class HttpContext {
  constructor(public readonly id: u64) {}

  /** The request head is parsed and a route matched. Default: continue. */
  onRequestHeaders(request: Request): Decision {
    return Decision.continue();
  }

  /** A request body chunk (or the whole body when buffered). Default: continue. */
  onRequestBody(chunk: Uint8Array, end: bool): BodyDecision {
    return BodyDecision.continue();
  }

  /** Choose a target for this attempt; null defers to the upstream's algorithm. */
  selectUpstream(request: Request, upstream: UpstreamInfo, targets: Target[]): Target | null {
    return null;
  }

  /** The response head arrived. Default: continue. */
  onResponseHeaders(request: Request, response: Response): Decision {
    return Decision.continue();
  }

  /** A response body chunk (or the whole body when buffered). Default: continue. */
  onResponseBody(chunk: Uint8Array, end: bool): BodyDecision {
    return BodyDecision.continue();
  }

  /** The exchange is over; always called last for a context. */
  onLog(summary: LogSummary): void {}
}

/**
 * The root of a plugin: created once per instance, described to the host, configured once
 * from the plugin's KDL block, and the factory of per-request contexts.
 */
export class RootContext {
  /** Hooks the host calls; set to the ones you implement (default: every hook). */
  hooks: Hook[] = [Hook.OnRequestHeaders, Hook.OnRequestBody, Hook.SelectUpstream, Hook.OnResponseHeaders, Hook.OnResponseBody, Hook.OnLog];
  // on-tick is not in the default list: a plugin that overrides onTick lists Hook.OnTick.
  /** Whether and how to receive the request body (default: never). */
  requestBody: BodyMode = BodyMode.none();
  /** Whether and how to receive the response body (default: never). */
  responseBody: BodyMode = BodyMode.none();
  /** JSON Schema of the config block; empty if none. */
  configSchema: string = "";

  constructor(public readonly name: string, public readonly version: string) {}

  /** Reads the config block. Return an error (or record one through the getters) to refuse it. */
  configure(config: Config): ConfigError | null {
    return null;
  }

  /** The state of one exchange; override to return your HttpContext subclass. */
  createHttpContext(id: u64): HttpContext {
    return new HttpContext(id);
  }

  /**
   * The plugin's timer: called every `tick-ms` (the plugin block's key) outside any request,
   * when `hooks` lists Hook.OnTick. Refresh what requests read from the store here (a JWKS
   * through httpCallout + kvCas) or flush counters. Requests may run on other instances of
   * the plugin: share state through the store, not fields.
   */
  onTick(): void {}
}

/** Adapts a Plugin to the generated ABI glue: context table, views and decisions. */
class Dispatcher extends abi.Guest {
  contexts: Map<u64, HttpContext> = new Map<u64, HttpContext>();
  /** The hook's mutations, emptied at the start of each call (the host has read the last one by then). */
  batch: abi.Mutation[];
  request: Request;
  response: Response;
  private single: bool = false;
  constructor(public root: RootContext) {
    super();
    const batch = new Array<abi.Mutation>(0);
    this.batch = batch;
    this.request = new Request(batch);
    this.response = new Response(batch);
    // Known from the root's hooks: describe runs on the load's probe instance only, so
    // deciding it there left every serving instance keeping contexts forever.
    this.single = this.ephemeral();
  }

  context(id: u64): HttpContext {
    if (this.contexts.has(id)) return this.contexts.get(id);
    const c = this.root.createHttpContext(id);
    this.contexts.set(id, c);
    return c;
  }

  /** The plugin has one hook that runs at most once per request: its context lives for that call only. */
  ephemeral(): bool {
    // on-tick is no request hook: it does not make contexts outlive a call.
    const h = this.root.hooks.filter((x: Hook): bool => x != Hook.OnTick);
    return h.length == 1 && (h[0] == Hook.OnRequestHeaders || h[0] == Hook.SelectUpstream);
  }

  describe(): PluginInfo {
    const r = this.root;
    const info = new PluginInfo();
    info.name = r.name;
    info.version = r.version;
    // on-log is where a request's context is dropped: without it every context would live as
    // long as the instance (and slow every collection). So it is listed, unless the context
    // lives for a single call anyway (then no on-log call per request is needed).
    const hooks = r.hooks.slice();
    if (!hooks.includes(Hook.OnLog) && !this.single) hooks.push(Hook.OnLog);
    info.hooks = hooks;
    info.requestBody = r.requestBody;
    info.responseBody = r.responseBody;
    info.configSchema = r.configSchema;
    return info;
  }

  configure(config: abi.ConfigNode[]): abi.ResultUnitConfigError {
    const errors = new ConfigErrors();
    const returned = this.root.configure(buildConfig(config, errors));
    const e = returned !== null ? returned : errors.first;
    if (e === null) return abi.ResultUnitConfigError.ok();
    const ce = new abi.ConfigError();
    ce.message = e.message;
    ce.node = e.node >= 0 ? new Box<u32>(<u32>e.node) : null;
    return abi.ResultUnitConfigError.err(ce);
  }

  /** The context of a single-hook plugin is never kept: no table lookups for it. */
  private ctxFor(id: u64): HttpContext {
    return this.single ? this.root.createHttpContext(id) : this.context(id);
  }

  onRequestHeaders(ctx: u64): abi.Decision {
    this.batch.length = 0;
    this.request.reset(true, true);
    return this.ctxFor(ctx).onRequestHeaders(this.request).toAbi(this.batch);
  }

  onRequestBody(ctx: u64, chunk: Uint8Array, end: bool): abi.BodyDecision {
    return this.context(ctx).onRequestBody(chunk, end).toAbi();
  }

  selectUpstream(ctx: u64, upstream: UpstreamInfo, targets: Target[]): Box<u32> | null {
    this.batch.length = 0;
    this.request.reset(false, false);
    const t = this.ctxFor(ctx).selectUpstream(this.request, upstream, targets);
    return t === null ? null : new Box<u32>(t.index);
  }

  onResponseHeaders(ctx: u64): abi.Decision {
    this.batch.length = 0;
    this.request.reset(false, true);
    this.response.reset();
    return this.context(ctx).onResponseHeaders(this.request, this.response).toAbi(this.batch);
  }

  onResponseBody(ctx: u64, chunk: Uint8Array, end: bool): abi.BodyDecision {
    return this.context(ctx).onResponseBody(chunk, end).toAbi();
  }

  onLog(ctx: u64, summary: LogSummary): void {
    this.context(ctx).onLog(summary);
    this.contexts.delete(ctx);
  }

  onTick(): void {
    this.root.onTick();
  }
}

/** Registers the plugin's root; call once at the top level of the entry file. */
export function registerPlugin(root: RootContext): void {
  abi.setGuest(new Dispatcher(root));
  setAbortHook((text: string): void => {
    abi.hostLog(LogLevel.Error, text);
  });
}

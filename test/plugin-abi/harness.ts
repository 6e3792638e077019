/**
 * Two ways to run the echo plugin with the same deterministic host: through jco's
 * transpiled glue (the reference) and through our generated codec on the extracted core
 * module. The differential tests and the benchmark use both.
 */
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bindCoreInstance, hostImports, type CoreInstance, type HostImports } from '../../plugin-abi/generated/codec.ts';
import type { CalloutRequest, CalloutResponse, Header, KvEntry, LogLevel, MetricKind, Property, Result, TokenBucketResult } from '../../plugin-abi/generated/types.ts';
import { GuestMemory } from '../../plugin-abi/src/abi/guest-memory.ts';
import { wasm } from '../../plugin-abi/src/abi/wasm.ts';
import { loadComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { buildEchoComponent } from '../fixtures/plugins/build.ts';
import { hostCrypto } from '../../plugin-abi/src/runtime/host-crypto.ts';
import { exchangeImports, viewOfWire, type ExchangeView, type WireRequestHead, type WireResponseHead } from '../../plugin-abi/src/runtime/exchange.ts';

type ExchangeFns = ReturnType<typeof exchangeImports>;

/** The exchange half of a test host: answers from the head a test sets before each hook call. */
export class ExchangeHost {
  readonly calls: unknown[][] = [];
  /** The exchange the next hook call reads (set by the test before each call). */
  private scope: { exchange?: ExchangeView | undefined } = {};
  private readonly ex: ExchangeFns = exchangeImports(this.scope);

  /** Sets the request (and response) the exchange functions answer from. */
  setExchange(head: WireRequestHead | undefined, response?: WireResponseHead): void {
    this.scope.exchange = head ? viewOfWire(head, response) : undefined;
  }

  /** Whether exchange reads are recorded (the differential test compares them). */
  protected readonly recordExchange: boolean;
  constructor(recordExchange = false) {
    this.recordExchange = recordExchange;
  }

  private x<K extends keyof ExchangeFns>(name: K, ...args: Parameters<ExchangeFns[K]>): ReturnType<ExchangeFns[K]> {
    if (this.recordExchange) this.calls.push([name, ...args]);
    return (this.ex[name] as (...a: unknown[]) => ReturnType<ExchangeFns[K]>)(...args);
  }
  requestMethod(): string { return this.x('requestMethod'); }
  requestScheme(): string { return this.x('requestScheme'); }
  requestAuthority(): string { return this.x('requestAuthority'); }
  requestPath(): string { return this.x('requestPath'); }
  requestQuery(): string { return this.x('requestQuery'); }
  requestHeader(name: string): string | undefined { return this.x('requestHeader', name); }
  requestHeaderValues(name: string): string[] { return this.x('requestHeaderValues', name); }
  requestHeaders(): Header[] { return this.x('requestHeaders'); }
  clientAddress(): string { return this.x('clientAddress'); }
  clientPort(): number { return this.x('clientPort'); }
  routeName(): string { return this.x('routeName'); }
  httpVersion(): string { return this.x('httpVersion'); }
  requestProperty(key: string): string | undefined { return this.x('requestProperty', key); }
  requestProperties(): Property[] { return this.x('requestProperties'); }
  responseStatus(): number { return this.x('responseStatus'); }
  responseHeader(name: string): string | undefined { return this.x('responseHeader', name); }
  responseHeaderValues(name: string): string[] { return this.x('responseHeaderValues', name); }
  responseHeaders(): Header[] { return this.x('responseHeaders'); }
}

/** A host whose answers depend only on its inputs and earlier calls, recording every call. */
export class RecordingHost extends ExchangeHost implements HostImports {
  private readonly counters = new Map<string, bigint>();
  private readonly kv = new Map<string, KvEntry>();
  private tick = 0n;

  log(level: LogLevel, message: string): void { this.calls.push(['log', level, message]); }
  defineMetric(name: string, kind: MetricKind, help: string, labelNames: string[]): number {
    this.calls.push(['defineMetric', name, kind, help, labelNames]);
    return name.length;
  }
  recordMetric(id: number, value: number, labelValues: string[]): void { this.calls.push(['recordMetric', id, value, labelValues]); }
  counterAdd(key: string, delta: bigint, windowMs: bigint): bigint {
    this.calls.push(['counterAdd', key, delta, windowMs]);
    const v = BigInt.asIntN(64, (this.counters.get(key) ?? 0n) + delta);
    this.counters.set(key, v);
    return v;
  }
  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): TokenBucketResult {
    this.calls.push(['tokenBucketTake', key, ratePerSec, burst, cost]);
    return { allowed: key.length % 2 === 0, remaining: burst - cost, retryAfterMs: BigInt(key.length) * 1000n };
  }
  kvGet(key: string): KvEntry | undefined {
    this.calls.push(['kvGet', key]);
    return this.kv.get(key);
  }
  kvCas(key: string, value: Uint8Array, expectedVersion: bigint | undefined, ttlMs: bigint): bigint | undefined {
    this.calls.push(['kvCas', key, value, expectedVersion, ttlMs]);
    const cur = this.kv.get(key);
    if (expectedVersion === undefined ? cur !== undefined : cur?.version !== expectedVersion) return undefined;
    const version = (cur?.version ?? 0n) + 1n;
    this.kv.set(key, { value: value.slice(), version });
    return version;
  }
  geoCountry(ip: string): string | undefined {
    this.calls.push(['geoCountry', ip]);
    if (ip.length === 0) return undefined;
    return ip.length % 3 === 0 ? 'NZ' : ip.length % 3 === 1 ? `Ω${ip.slice(0, 2)}` : undefined;
  }
  nowMs(): bigint { this.calls.push(['nowMs']); return 1_700_000_000_000n + this.tick; }
  monotonicNs(): bigint { this.calls.push(['monotonicNs']); return ++this.tick; }
  randomU64(): bigint { this.calls.push(['randomU64']); return BigInt.asUintN(64, 0x9e3779b97f4a7c15n * ++this.tick); }
  // Crypto answers are node:crypto's: deterministic already.
  digest = hostCrypto.digest;
  hmac = hostCrypto.hmac;
  constantTimeEqual = hostCrypto.constantTimeEqual;
  base64urlEncode = hostCrypto.base64urlEncode;
  base64urlDecode = hostCrypto.base64urlDecode;
  verifySignature = hostCrypto.verifySignature;
  passwordVerify = hostCrypto.passwordVerify;
  httpCallout(request: CalloutRequest): Result<CalloutResponse, string> {
    this.calls.push(['httpCallout', request]);
    if (request.url.includes('fail')) return { tag: 'err', val: `WEIR_ERR_UPSTREAM_CONNECT ${request.url}` };
    const extra = new TextEncoder().encode('π');
    const body = new Uint8Array(request.body.length + extra.length);
    body.set(request.body);
    body.set(extra, request.body.length);
    return { tag: 'ok', val: { status: 200 + request.headers.length, headers: [{ name: 'x-from', value: request.method }, ...request.headers.slice(0, 3)], body } };
  }
  spanSetAttribute(key: string, value: string): void { this.calls.push(['spanSetAttribute', key, value]); }
  spanAddEvent(name: string, attributes: Property[]): void { this.calls.push(['spanAddEvent', name, attributes]); }
}

/** The echo plugin through our codec. */
export async function codecEcho(host: HostImports, jspi = false): Promise<CoreInstance> {
  const loaded = await loadComponent(await buildEchoComponent());
  const mem = new GuestMemory();
  const instance = await wasm.instantiate(loaded.core, hostImports(host, mem, jspi));
  return bindCoreInstance(mem, instance.exports);
}

/** The exports of jco's transpiled glue, as jco types them (results throw on err). */
export type JcoEcho = Record<string, (...args: unknown[]) => unknown>;

let transpiled: Promise<string> | undefined;

/** Transpiles the echo component once per process into a temp folder; returns the JS path. */
function transpileEcho(): Promise<string> {
  transpiled ??= (async () => {
    const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
    const r = await transpileBytes(await buildEchoComponent(), { name: 'echo', instantiation: 'async' });
    const dir = mkdtempSync(join(tmpdir(), 'weir-jco-'));
    for (const [name, bytes] of Object.entries(r.files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), bytes);
    }
    return join(dir, 'echo.js');
  })();
  return transpiled;
}

/** The echo plugin through jco's glue, with our HostImports adapted to jco's conventions. */
export async function jcoEcho(host: HostImports): Promise<JcoEcho> {
  const path = await transpileEcho();
  const mod = (await import(pathToFileURL(path).href)) as { instantiate: (get: (p: string) => unknown, imports: unknown) => Promise<JcoEcho> };
  const dir = dirname(path);
  const adapted = Object.create(null) as Record<string, Function>;
  // Methods may sit anywhere on the prototype chain (subclassed or Object.create'd hosts).
  for (let o: object | null = host; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      const fn = (host as unknown as Record<string, unknown>)[key];
      if (typeof fn === 'function' && key !== 'constructor' && !(key in adapted)) adapted[key] = fn.bind(host);
    }
  }
  // jco: an import returning result<T, E> returns T or throws the E payload.
  adapted['httpCallout'] = (req: CalloutRequest) => {
    const r = host.httpCallout(req) as Result<CalloutResponse, string>;
    if (r.tag === 'err') throw r.val;
    return r.val;
  };
  return mod.instantiate((p) => wasm.compile(readFileSync(join(dir, p))), { 'weir:proxy/host': adapted, 'weir:proxy/exchange': adapted });
}

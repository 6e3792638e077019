/**
 * Builds the Rust echo fixture (test/fixtures/rust/echo) once per process with compileRust,
 * componentizes it, checks it with loadComponent, and hands out fresh instances bound to
 * the generated codec with a deterministic recording host.
 */
import { ExchangeHost } from '../plugin-abi/harness.ts';
import { withHost } from '../plugin-abi/with-head.ts';
import { fileURLToPath } from 'node:url';
import { bindCoreInstance, hostImports, type CoreInstance, type HostImports } from '../../plugin-abi/generated/codec.ts';
import type { CalloutRequest, CalloutResponse, KvEntry, LogLevel, MetricKind, Property, Result, TokenBucketResult } from '../../plugin-abi/generated/types.ts';
import { GuestMemory } from '../../plugin-abi/src/abi/guest-memory.ts';
import { hostCrypto } from '../../plugin-abi/src/runtime/host-crypto.ts';
import { wasm, type WasmModule } from '../../plugin-abi/src/abi/wasm.ts';
import { loadComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { compileRust, findRustToolchain } from '../../host/src/plugin-tool/rust.ts';
import { componentize } from '../fixtures/plugins/build.ts';

export const ECHO_DIR = fileURLToPath(new URL('../fixtures/rust/echo/', import.meta.url));

/** Answers depend only on inputs and earlier calls; every call is recorded. */
export class TestHost extends ExchangeHost implements HostImports {
  readonly kv = new Map<string, KvEntry>();
  private readonly counters = new Map<string, bigint>();
  private tick = 0n;

  log(level: LogLevel, message: string): void { this.calls.push(['log', level, message]); }
  defineMetric(name: string, kind: MetricKind, help: string, labelNames: string[]): number {
    this.calls.push(['defineMetric', name, kind, help, labelNames]);
    return 40 + name.length;
  }
  recordMetric(id: number, value: number, labelValues: string[]): void { this.calls.push(['recordMetric', id, value, labelValues]); }
  counterAdd(key: string, delta: bigint, windowMs: bigint): bigint {
    this.calls.push(['counterAdd', key, delta, windowMs]);
    const v = (this.counters.get(key) ?? 0n) + delta;
    this.counters.set(key, v);
    return v;
  }
  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): TokenBucketResult {
    this.calls.push(['tokenBucketTake', key, ratePerSec, burst, cost]);
    return { allowed: !key.startsWith('deny'), remaining: burst - cost, retryAfterMs: BigInt(key.length) * 10n };
  }
  kvGet(key: string): KvEntry | undefined {
    this.calls.push(['kvGet', key]);
    return this.kv.get(key);
  }
  kvCas(key: string, value: Uint8Array, expectedVersion: bigint | undefined, ttlMs: bigint): bigint | undefined {
    this.calls.push(['kvCas', key, value.length, expectedVersion, ttlMs]);
    const cur = this.kv.get(key);
    if (expectedVersion === undefined ? cur !== undefined : cur?.version !== expectedVersion) return undefined;
    const version = (cur?.version ?? 0n) + 1n;
    this.kv.set(key, { value: value.slice(), version });
    return version;
  }
  geoCountry(ip: string): string | undefined {
    this.calls.push(['geoCountry', ip]);
    return ip.startsWith('10.') ? undefined : ip.includes(':') ? 'Ωß' : 'NZ';
  }
  nowMs(): bigint { this.calls.push(['nowMs']); return 1_700_000_000_000n + this.tick; }
  monotonicNs(): bigint { this.calls.push(['monotonicNs']); return ++this.tick; }
  randomU64(): bigint { this.calls.push(['randomU64']); return 0xfedcba9876543210n + ++this.tick; }
  digest = hostCrypto.digest;
  hmac = hostCrypto.hmac;
  constantTimeEqual = hostCrypto.constantTimeEqual;
  base64urlEncode = hostCrypto.base64urlEncode;
  base64urlDecode = hostCrypto.base64urlDecode;
  verifySignature = hostCrypto.verifySignature;
  passwordVerify = hostCrypto.passwordVerify;
  httpCallout(request: CalloutRequest): Result<CalloutResponse, string> {
    this.calls.push(['httpCallout', request]);
    if (request.url.includes('fail')) return { tag: 'err', val: `WEIR_ERR_CALLOUT_FAILED ${request.url}` };
    const body = new TextEncoder().encode(`${new TextDecoder().decode(request.body)}→π`);
    return { tag: 'ok', val: { status: 200 + request.headers.length, headers: [{ name: 'x-from', value: request.method }], body } };
  }
  spanSetAttribute(key: string, value: string): void { this.calls.push(['spanSetAttribute', key, value]); }
  spanAddEvent(name: string, attributes: Property[]): void { this.calls.push(['spanAddEvent', name, attributes]); }

  /** Calls of one kind, without the name. */
  of(name: string): unknown[][] { return this.calls.filter((c) => c[0] === name).map((c) => c.slice(1)); }
}

export interface Built { core: WasmModule; coreBytes: Uint8Array; component: Uint8Array; buildMs: number; hostFunctions: readonly string[] }

let built: Promise<Built> | undefined;

/** Compiles, componentizes and loads the fixture (once per process). */
export function buildRustEcho(): Promise<Built> {
  built ??= (async () => {
    const t0 = performance.now();
    const coreBytes = await compileRust(ECHO_DIR, { release: true });
    const buildMs = performance.now() - t0;
    const component = await componentize(coreBytes);
    const loaded = await loadComponent(component);
    return { core: loaded.core, coreBytes, component, buildMs, hostFunctions: loaded.hostFunctions };
  })();
  return built;
}

/** Why the Rust tests are skipped, or false when a wasm32 Rust compiler exists. */
export async function skipReason(): Promise<string | false> {
  return (await findRustToolchain()) ? false : 'no Rust compiler with the wasm32 target (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)';
}

export interface Echo { inst: CoreInstance; host: TestHost; mem: GuestMemory }

/** A fresh instance of the fixture with its own host. */
export async function freshEcho(): Promise<Echo> {
  const { core } = await buildRustEcho();
  const host = new TestHost();
  const mem = new GuestMemory();
  const instance = await wasm.instantiate(core, hostImports(host, mem));
  return { inst: withHost(bindCoreInstance(mem, instance.exports), host), host, mem };
}

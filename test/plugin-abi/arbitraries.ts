/** fast-check generators for the WIT types, biased towards the edge cases of the codec. */
import fc from 'fast-check';
import type {
  ConfigNode, ConfigValue, Header, LogSummary, Property, Target, UpstreamInfo,
} from '../../plugin-abi/generated/types.ts';
import type { WireRequestHead as RequestHead, WireResponseHead as ResponseHead } from '../../plugin-abi/src/runtime/exchange.ts';

/** Strings: empty, ASCII, non-ASCII, emoji, lone surrogates, long. */
export const str = fc.oneof(
  fc.constantFrom('', 'a', 'é', '😀', 'x-forwarded-for', 'ﬁ\u0000nul', 'é'.repeat(40)),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ minLength: 100, maxLength: 400 }),
);
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
export const s64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
export const f64 = fc.double();
export const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1000, maxLength: 5000 }), fc.constant(new Uint8Array(0)));

export const header: fc.Arbitrary<Header> = fc.record({ name: str, value: str });
export const property: fc.Arbitrary<Property> = fc.record({ key: str, value: str });
const headers = fc.oneof(fc.array(header, { maxLength: 12 }), fc.array(header, { minLength: 100, maxLength: 300 }));

export const requestHead: fc.Arbitrary<RequestHead> = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PATCH'), str),
  scheme: fc.constantFrom('http', 'https'),
  authority: str,
  path: fc.oneof(fc.constantFrom('/', '/deny', '/a/b'), str),
  query: str,
  headers,
  clientAddress: fc.oneof(fc.ipV4(), fc.ipV6(), str),
  clientPort: u16,
  routeName: str,
  properties: fc.array(property, { maxLength: 6 }),
  httpVersion: fc.constantFrom('1.0', '1.1', '2'),
});

export const responseHead: fc.Arbitrary<ResponseHead> = fc.record({ status: fc.oneof(u16, fc.constant(599)), headers });

export const target: fc.Arbitrary<Target> = fc.record({
  index: u32, address: str, weight: u32, zone: str, healthy: fc.boolean(), inFlight: u32, ewmaLatencyMs: f64,
  totalRequests: u64, totalFailures: u64, consecutiveFailures: u32, lastFailureMs: u64,
});

export const upstreamInfo: fc.Arbitrary<UpstreamInfo> = fc.record({ name: str, localZone: str, attempt: u32, previous: fc.option(u32, { nil: undefined }) });

export const configValue: fc.Arbitrary<ConfigValue> = fc.oneof(
  fc.record({ tag: fc.constant('text' as const), val: str }),
  fc.record({ tag: fc.constant('integer' as const), val: s64 }),
  fc.record({ tag: fc.constant('float' as const), val: f64 }),
  fc.record({ tag: fc.constant('boolean' as const), val: fc.boolean() }),
  fc.constant({ tag: 'null' as const }),
);

export const configNodes: fc.Arbitrary<ConfigNode[]> = fc.array(fc.record({
  name: fc.oneof(fc.constantFrom('fail', 'limit', 'key'), str),
  parent: fc.option(u32, { nil: undefined }),
  args: fc.array(configValue, { maxLength: 5 }),
  props: fc.array(fc.record({ name: str, value: configValue }), { maxLength: 4 }),
}), { maxLength: 8 });

export const logSummary: fc.Arbitrary<LogSummary> = fc.record({
  status: u16,
  errorCode: fc.option(fc.oneof(fc.constantFrom('WEIR_ERR_UPSTREAM_TIMEOUT'), str), { nil: undefined }),
  upstreamAddress: fc.option(str, { nil: undefined }),
  bytesReceived: u64,
  bytesSent: u64,
  durationMs: f64,
  upstreamDurationMs: fc.option(f64, { nil: undefined }),
  attempts: u32,
});

/** A body chunk, sometimes starting with 'X' (the echo plugin refuses those). */
export const chunk = fc.oneof(bytes, bytes.map((b) => { const c = new Uint8Array(b.length + 1); c[0] = 88; c.set(b, 1); return c; }));

/**
 * The ABI codec, differentially: random values of every WIT type a hook takes go through our
 * generated codec (lowered into the echo plugin's memory, its results lifted back) and through
 * jco's transpiled glue on the same component; results and every host-import call must be
 * equal. The property of test/plugin-abi/codec-diff.test.ts, run for a bounded time instead
 * of a fixed number of cases.
 */
import { isDeepStrictEqual, inspect } from 'node:util';
import fc from 'fast-check';
import {
  callConfigure, callOnLog, callOnRequestBody, callOnRequestHeaders, callOnResponseBody, callOnResponseHeaders, callSelectUpstream, type CoreInstance,
} from '../../../plugin-abi/generated/codec.ts';
import { chunk, configNodes, logSummary, requestHead, responseHead, target, u64, upstreamInfo } from '../../plugin-abi/arbitraries.ts';
import { RecordingHost, codecEcho, jcoEcho, type JcoEcho } from '../../plugin-abi/harness.ts';
import { fromJson, toJson, type FuzzEnv, type FuzzTarget } from '../target.ts';

type Call =
  | { hook: 'configure'; args: [unknown] }
  | { hook: 'on-request-headers'; args: [bigint, unknown] }
  | { hook: 'on-request-body'; args: [bigint, Uint8Array, boolean] }
  | { hook: 'select-upstream'; args: [bigint, unknown, unknown, unknown[]] }
  | { hook: 'on-response-headers'; args: [bigint, unknown, unknown] }
  | { hook: 'on-response-body'; args: [bigint, Uint8Array, boolean] }
  | { hook: 'on-log'; args: [bigint, unknown] };

const call: fc.Arbitrary<Call> = fc.oneof(
  configNodes.map((n) => ({ hook: 'configure' as const, args: [n] as [unknown] })),
  fc.tuple(u64, requestHead).map((a) => ({ hook: 'on-request-headers' as const, args: a as [bigint, unknown] })),
  fc.tuple(u64, chunk, fc.boolean()).map((a) => ({ hook: 'on-request-body' as const, args: a })),
  fc.tuple(u64, requestHead, upstreamInfo, fc.array(target, { maxLength: 20 })).map((a) => ({ hook: 'select-upstream' as const, args: a as [bigint, unknown, unknown, unknown[]] })),
  fc.tuple(u64, requestHead, responseHead).map((a) => ({ hook: 'on-response-headers' as const, args: a as [bigint, unknown, unknown] })),
  fc.tuple(u64, chunk, fc.boolean()).map((a) => ({ hook: 'on-response-body' as const, args: a })),
  fc.tuple(u64, logSummary).map((a) => ({ hook: 'on-log' as const, args: a as [bigint, unknown] })),
);

interface CodecEnv extends FuzzEnv {
  readonly ours: CoreInstance;
  readonly ref: JcoEcho;
  readonly oursHost: RecordingHost;
  readonly refHost: RecordingHost;
}

/** jco throws an err result's payload; ours returns it. */
function jcoResult(fn: () => unknown): unknown {
  try {
    return { tag: 'ok', val: fn() };
  } catch (e) {
    if (e instanceof Error && 'payload' in e) return { tag: 'err', val: (e as { payload: unknown }).payload };
    if (!(e instanceof Error)) return { tag: 'err', val: e };
    throw e;
  }
}

function run(env: CodecEnv, c: Call): [unknown, unknown] {
  const { ours, ref } = env;
  const a = c.args as unknown as never[];
  // Since ABI 0.2 the head is read through the exchange functions: both hosts answer from it.
  const exchange = (head: never, response?: never): void => {
    env.oursHost.setExchange(head, response);
    env.refHost.setExchange(head, response);
  };
  switch (c.hook) {
    case 'configure': return [callConfigure(ours, a[0]), jcoResult(() => ref['configure']!(a[0]))];
    case 'on-request-headers': exchange(a[1]); return [callOnRequestHeaders(ours, a[0]), ref['onRequestHeaders']!(a[0])];
    case 'on-request-body': return [callOnRequestBody(ours, a[0], a[1], a[2]), ref['onRequestBody']!(a[0], a[1], a[2])];
    case 'select-upstream': exchange(a[1]); return [callSelectUpstream(ours, a[0], a[2], a[3]), ref['selectUpstream']!(a[0], a[2], a[3])];
    case 'on-response-headers': exchange(a[1], a[2]); return [callOnResponseHeaders(ours, a[0]), ref['onResponseHeaders']!(a[0])];
    case 'on-response-body': return [callOnResponseBody(ours, a[0], a[1], a[2]), ref['onResponseBody']!(a[0], a[1], a[2])];
    case 'on-log': return [callOnLog(ours, a[0], a[1]), ref['onLog']!(a[0], a[1])];
  }
}

const show = (v: unknown): string => inspect(v, { depth: 6, maxArrayLength: 20, maxStringLength: 120, breakLength: Infinity });

export const abiCodec: FuzzTarget<Call> = {
  name: 'abi-codec',
  description: 'random values of every WIT type through each hook: our generated codec (lower, call the core module, lift) against jco\'s glue on the same echo component',
  ext: 'json',
  setup: async (): Promise<CodecEnv> => {
    const oursHost = new RecordingHost(true);
    const refHost = new RecordingHost(true);
    const ours = await codecEcho(oursHost);
    const ref = await jcoEcho(refHost);
    const gc = (globalThis as { gc?: () => void }).gc;
    return {
      ours, ref, oursHost, refHost,
      alive: async () => {},
      memory: () => {
        gc?.();
        return process.memoryUsage().heapUsed + ours.mem.buffer.byteLength;
      },
      close: async () => {},
    };
  },
  arbitrary: call,
  check: async (env, c) => {
    const e = env as CodecEnv;
    const n1 = e.oursHost.calls.length;
    const n2 = e.refHost.calls.length;
    const [x, y] = run(e, c);
    if (!isDeepStrictEqual(x, y)) throw new Error(`${c.hook}: results differ:\nours ${show(x)}\njco  ${show(y)}`);
    const c1 = e.oursHost.calls.slice(n1);
    const c2 = e.refHost.calls.slice(n2);
    if (!isDeepStrictEqual(c1, c2)) throw new Error(`${c.hook}: host calls differ:\nours ${show(c1)}\njco  ${show(c2)}`);
    // Keep the recordings from growing with the run.
    e.oursHost.calls.length = 0;
    e.refHost.calls.length = 0;
  },
  encode: toJson,
  decode: (b) => fromJson<Call>(b),
};

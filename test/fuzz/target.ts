/**
 * What a fuzzer is: an environment it sets up (a `weir run` process, a loaded plugin), an
 * arbitrary of inputs, and a check that throws when an input makes Weir misbehave. The runner
 * (run.ts) drives the arbitrary for a bounded time from a seed; corpus.test.ts replays every
 * corpus file through the same check.
 */
import type fc from 'fast-check';

export interface FuzzEnv {
  /** Throws if the system under test is no longer healthy (the process died, a valid request fails). */
  alive(): Promise<void>;
  /** Bytes of memory the system under test holds now (RSS of the proxy process, or this process's heap after GC). */
  memory(): number;
  close(): Promise<void>;
}

export interface FuzzTarget<T> {
  readonly name: string;
  /** One sentence for docs/reliability.md. */
  readonly description: string;
  setup(): Promise<FuzzEnv>;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Throws with what went wrong. */
  check(env: FuzzEnv, input: T): Promise<void>;
  /** An input as a corpus file, and back. */
  encode(input: T): Uint8Array;
  decode(bytes: Buffer): T;
  /** File extension of corpus entries. */
  readonly ext: string;
}

/** JSON with bigint, byte arrays, undefined and non-finite or negative-zero floats kept (the ABI's u64, list<u8>, option and f64). */
export function toJson(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const raw = this[k];
    if (typeof raw === 'bigint') return { $big: raw.toString() };
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') };
    if (typeof raw === 'number' && (!Number.isFinite(raw) || Object.is(raw, -0))) return { $num: String(Object.is(raw, -0) ? '-0' : raw) };
    if (raw === undefined && k !== '') return { $undefined: true };
    return x;
  }, 1));
}

const UNDEFINED = Symbol('undefined');

export function fromJson<T>(b: Buffer): T {
  return restoreUndefined(JSON.parse(b.toString('utf8'), (_k, x: unknown) => {
    if (x && typeof x === 'object' && '$big' in x) return BigInt((x as { $big: string }).$big);
    if (x && typeof x === 'object' && '$bytes' in x) return new Uint8Array(Buffer.from((x as { $bytes: string }).$bytes, 'base64'));
    if (x && typeof x === 'object' && '$num' in x) return Number((x as { $num: string }).$num);
    if (x && typeof x === 'object' && '$undefined' in x) return UNDEFINED;
    return x;
  })) as T;
}

/** JSON.parse drops a reviver's undefined; a marker is swapped back here. */
function restoreUndefined(v: unknown): unknown {
  if (v === UNDEFINED) return undefined;
  if (Array.isArray(v)) return v.map(restoreUndefined);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = restoreUndefined((v as Record<string, unknown>)[k]);
  }
  return v;
}

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

/** JSON with bigint and byte arrays kept (the ABI's u64 and list<u8>). */
export function toJson(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? { $big: x.toString() } : x instanceof Uint8Array ? { $bytes: Buffer.from(x).toString('base64') } : x), 1));
}

export function fromJson<T>(b: Buffer): T {
  return JSON.parse(b.toString('utf8'), (_k, x: unknown) => {
    if (x && typeof x === 'object' && '$big' in x) return BigInt((x as { $big: string }).$big);
    if (x && typeof x === 'object' && '$bytes' in x) return new Uint8Array(Buffer.from((x as { $bytes: string }).$bytes, 'base64'));
    return x;
  }) as T;
}

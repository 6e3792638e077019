/**
 * Byte-level mutation of corpus seeds for the fuzzers: fast-check generates a seed index and
 * a list of edits (flip, insert a dictionary token or random bytes, delete, duplicate, repeat),
 * so every case is reproducible from the run's seed and shrinks towards the seed itself.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';

export const CORPUS = new URL('./corpus/', import.meta.url).pathname;

/** Every file of corpus/<name>/ (seeds and the inputs that once failed), sorted by name. */
export function corpus(name: string): Array<{ file: string; bytes: Buffer }> {
  const dir = join(CORPUS, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().map((f) => ({ file: f, bytes: readFileSync(join(dir, f)) }));
}

/** Keeps an input that failed as corpus/<name>/found-<hash>.<ext>, replayed by corpus.test.ts from then on. */
export function keepFailure(name: string, bytes: Uint8Array, ext: string): string {
  const dir = join(CORPUS, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `found-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.${ext}`);
  writeFileSync(file, bytes);
  return file;
}

export type Edit =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'repeat'; at: number; bytes: Uint8Array; times: number };

/** Edits drawing inserted bytes from `dictionary` (protocol tokens) as often as random bytes. */
export function edits(dictionary: readonly string[], max = 6): fc.Arbitrary<Edit[]> {
  const at = fc.nat({ max: 1 << 16 });
  const token = fc.constantFrom(...dictionary).map((s) => Buffer.from(s, 'latin1') as Uint8Array);
  const bytes = fc.oneof(token, fc.uint8Array({ minLength: 1, maxLength: 8 }));
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({ op: fc.constant('insert' as const), at, bytes }),
    fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 32 }) }),
    fc.record({ op: fc.constant('duplicate' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ op: fc.constant('repeat' as const), at, bytes: token, times: fc.integer({ min: 2, max: 3000 }) }),
  );
  return fc.array(edit, { minLength: 0, maxLength: max });
}

/** Applies edits in order; positions wrap around the current length. */
export function applyEdits(seed: Uint8Array, list: readonly Edit[]): Buffer {
  let b = Buffer.from(seed);
  for (const e of list) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    switch (e.op) {
      case 'flip':
        if (b.length) b[at % b.length]! ^= 1 << e.bit;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.length)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + e.length), b.subarray(at, at + e.length), b.subarray(at + e.length)]);
        break;
      case 'repeat':
        b = Buffer.concat([b.subarray(0, at), Buffer.concat(Array.from({ length: e.times }, () => e.bytes)), b.subarray(at)]);
        break;
    }
  }
  return b;
}

/** A seed of corpus/<name> with edits applied. */
export function mutated(name: string, dictionary: readonly string[]): fc.Arbitrary<Buffer> {
  const seeds = corpus(name).map((c) => c.bytes);
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), edits(dictionary)).map(([i, e]) => applyEdits(seeds[i]!, e));
}

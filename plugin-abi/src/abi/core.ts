/**
 * Small helpers shared by the generated codec: export lookup under the two naming schemes
 * `jco new` accepts, enum lifting, and JSPI wrappers.
 */
import { AbiTrap } from './guest-memory.ts';
import { wasm, type PromisingFn, type WasmExports } from './wasm.ts';

/** First export present under one of `names`, or undefined. */
export function find(exports: WasmExports, names: readonly string[]): unknown {
  for (const n of names) if (n in exports) return exports[n];
  return undefined;
}

/** Like find, but a missing export is a load error naming what was expected. */
export function need(exports: WasmExports, names: readonly string[]): unknown {
  const v = find(exports, names);
  if (v === undefined) throw new Error(`core module has no export ${names.join(' or ')}`);
  return v;
}

export function enumAt<T>(cases: readonly T[], d: number, name: string): T {
  if (d >= cases.length || d < 0) throw new AbiTrap(`invalid ${name} discriminant ${d}`);
  return cases[d]!;
}

/** Marks a host import as suspending: the guest waits (stack switched) while the promise settles. */
export function suspending(fn: (...args: never[]) => Promise<unknown>): object {
  return new wasm.Suspending(fn);
}

/**
 * JSPI-wrapped copies of every export function, made on first use (undefined ones stay
 * undefined). Post-returns are left out: they are always called synchronously, and the
 * runtime may wrap them in JS (their own fuel budget), which JSPI cannot wrap.
 */
export function promising<T extends object>(fns: T): { readonly [K in keyof T]: PromisingFn } {
  const out: Record<string, PromisingFn | undefined> = {};
  for (const [k, v] of Object.entries(fns)) out[k] = typeof v === 'function' && !k.endsWith('Post') ? wasm.promising(v) : undefined;
  return out as { readonly [K in keyof T]: PromisingFn };
}

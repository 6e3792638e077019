// Memory shared with the host for one call.
//
// Everything the canonical ABI moves through linear memory during one export call — the
// arguments the host writes with cabi_realloc, results we hand back, return areas of host
// imports and the lists the host writes into them — lives in a bump arena that is reset in
// the export's post-return (or at the end of an export without results). Lifted values are
// copied into managed AssemblyScript objects first, so nothing outlives the reset by accident.
// The arena's chunks come from the unmanaged heap, which the garbage collector never touches.

// Value of ASC_RUNTIME for `--runtime minimal` (~lib/shared/runtime's Runtime.Minimal).
const RUNTIME_MINIMAL = 1;

// 64 KiB covers the arguments of a typical hook; bigger allocations get their own block.
const CHUNK_SIZE: usize = 65536;

let chunk: usize = 0;
let chunkEnd: usize = 0;
let top: usize = 0;
/** Start of the newest allocation, so realloc of the last block can grow in place. */
let last: usize = 0;
/** Blocks beyond the first chunk, freed at reset. */
const extra: usize[] = [];
/** Managed objects whose memory a result points at directly, kept alive until reset. */
const pinned: Object[] = [];

function alignUp(p: usize, align: usize): usize {
  return (p + align - 1) & ~(align - 1);
}

/** Allocates `size` bytes aligned to `align` (a power of two ≤ 16) that live until reset. */
export function arenaAlloc(size: usize, align: usize): usize {
  arenaBytes += size;
  if (chunk == 0) {
    chunk = heap.alloc(CHUNK_SIZE);
    chunkEnd = chunk + CHUNK_SIZE;
    top = chunk;
  }
  const p = alignUp(top, align);
  if (p + size <= chunkEnd) {
    top = p + size;
    last = p;
    return p;
  }
  if (size > CHUNK_SIZE / 4) {
    // Large (a body): a block of its own, 16-byte aligned by the heap.
    const big = heap.alloc(size == 0 ? 1 : size);
    extra.push(big);
    return big;
  }
  // Start a fresh chunk; the old one stays until reset.
  extra.push(chunk);
  chunk = heap.alloc(CHUNK_SIZE);
  chunkEnd = chunk + CHUNK_SIZE;
  const q = alignUp(chunk, align);
  top = q + size;
  last = q;
  return q;
}

/**
 * Frees everything allocated since the last reset; keeps the current chunk for reuse. Runs at
 * the end of each export call, when no managed object is referenced from the stack only — the
 * moment the `minimal` runtime (which never collects by itself) may collect garbage.
 */
export function arenaReset(): void {
  for (let i = 0, n = extra.length; i < n; i++) heap.free(unchecked(extra[i]));
  extra.length = 0;
  pinned.length = 0;
  top = chunk;
  last = 0;
  if (ASC_RUNTIME == RUNTIME_MINIMAL) {
    // A full collection costs time in proportion to the heap, so not after every call: after
    // the heap had to grow (garbage is crowding it), after COLLECT_BYTES went through the arena
    // (what calls lift into managed objects is about what the arena held), or every
    // COLLECT_EVERY calls. A small hook then pays for a collection every few thousand calls
    // (measured in bench/micro.ts: every 256 calls was half of a one-header hook's time).
    const pages = <i32>memory.size();
    if (pages > pagesAtCollect || arenaBytes >= COLLECT_BYTES || ++resetsSinceCollect >= COLLECT_EVERY) {
      __collect();
      resetsSinceCollect = 0;
      arenaBytes = 0;
      pagesAtCollect = <i32>memory.size();
    }
  }
}

const COLLECT_EVERY = 4096;
const COLLECT_BYTES: usize = 256 * 1024;
let arenaBytes: usize = 0;
let resetsSinceCollect = 0;
let pagesAtCollect = 0;

/** Keeps `o` alive until the next reset (its memory is referenced by a result). */
export function pin(o: Object): void {
  pinned.push(o);
}

/** The canonical ABI allocator the host calls to place arguments and import results. */
export function cabi_realloc(old: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (old != 0 && old == last && old + newSize <= chunkEnd) {
    // The newest allocation: grow or shrink in place (string writers do this).
    top = old + newSize;
    return old;
  }
  const p = arenaAlloc(newSize, align);
  if (old != 0) memory.copy(p, old, oldSize < newSize ? oldSize : newSize);
  return p;
}

// ---- strings and bytes (UTF-8 in linear memory, decoded/encoded in place) ----

/** Decodes the UTF-8 string at (ptr, len). */
export function liftString(ptr: usize, len: usize): string {
  if (len == 0) return "";
  return String.UTF8.decodeUnsafe(ptr, len);
}

/** Copies the list<u8> at (ptr, len) into a managed array. */
export function liftBytes(ptr: usize, len: usize): Uint8Array {
  const out = new Uint8Array(<i32>len);
  if (len != 0) memory.copy(out.dataStart, ptr, len);
  return out;
}

let loweredLen: usize = 0;

/** Byte length of the string last encoded by lowerString. */
export function lastLength(): usize {
  return loweredLen;
}

/** Encodes `s` as UTF-8 into the arena; returns the pointer, the length via lastLength(). */
export function lowerString(s: string): usize {
  const units = <usize>s.length;
  if (units == 0) {
    loweredLen = 0;
    return 1;
  }
  // Worst case 3 bytes per UTF-16 unit; the unused tail is given back when possible.
  const worst = units * 3;
  const p = arenaAlloc(worst, 1);
  // Unpaired surrogates become U+FFFD: the host expects valid UTF-8.
  const len = String.UTF8.encodeUnsafe(changetype<usize>(s), <i32>units, p, false, String.UTF8.ErrorMode.REPLACE);
  if (p == last && p + worst == top) top = p + len;
  loweredLen = len;
  return p;
}

/** Stores `s` as a (ptr, len) pair at `at`. */
export function storeString(s: string, at: usize): void {
  const p = lowerString(s);
  store<u32>(at, <u32>p);
  store<u32>(at, <u32>loweredLen, 4);
}

/** Stores `b` as a (ptr, len) pair at `at`, pointing at its own memory (pinned until reset). */
export function storeBytes(b: Uint8Array, at: usize): void {
  pin(b);
  store<u32>(at, b.byteLength == 0 ? 1 : <u32>b.dataStart);
  store<u32>(at, <u32>b.byteLength, 4);
}

// Replaces AssemblyScript's `env.abort` import (plugins may import only weir:proxy/host):
// the build passes `--use abort=weirAbort`. The message goes to the host log first.
let aborting = false;

// @ts-ignore: decorator
@global function weirAbort(message: string | null = null, file: string | null = null, line: u32 = 0, column: u32 = 0): void {
  if (!aborting) {
    aborting = true;
    const text = "abort: " + (message ? message : "") + " at " + (file ? file : "?") + ":" + line.toString() + ":" + column.toString();
    abortHook(text);
  }
  unreachable();
}

/** Set by the generated bindings to the host's log (error level). */
export let abortHook: (text: string) => void = (text: string): void => {};

export function setAbortHook(f: (text: string) => void): void {
  abortHook = f;
}

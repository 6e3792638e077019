/**
 * Access to one guest instance's linear memory for the generated codec: cached views that
 * are refreshed when memory grows, allocation through the guest's `cabi_realloc`, and the
 * UTF-8 string and byte-list helpers of the canonical ABI.
 */

import type { WasmMemory } from './wasm.ts';

export type Realloc = (oldPtr: number, oldSize: number, align: number, newSize: number) => number;

/** Raised when a guest hands back something the canonical ABI forbids (bad pointer, bad tag). */
export class AbiTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbiTrap';
  }
}

const encoder = new TextEncoder();

export class GuestMemory {
  memory: WasmMemory | undefined;
  realloc: Realloc = () => { throw new AbiTrap('guest memory used before attach()'); };
  buffer: ArrayBuffer = new ArrayBuffer(0);
  dv: DataView = new DataView(this.buffer);
  u8: Uint8Array = new Uint8Array(this.buffer);
  /** Node Buffer over the same memory, for its fast UTF-8 decoder. */
  nb: Buffer = Buffer.from(this.buffer);
  /** A shared memory never detaches on growth, so sync() must always re-read it. */
  shared = false;
  /** Byte length of the last string written by writeString (avoids returning a pair). */
  len = 0;

  /** Binds the instance's memory and allocator; call once after instantiation. */
  attach(memory: WasmMemory, realloc: Realloc): void {
    this.memory = memory;
    this.realloc = realloc;
    this.refresh();
  }

  /** Refreshes the views if the guest grew its memory (which detaches the old buffer). */
  sync(): void {
    // Growing a (non-shared) memory detaches the old buffer, which zeroes our views' length;
    // checking that is cheaper than reading memory.buffer on every call.
    if (this.u8.length !== 0 && !this.shared) return;
    this.refresh();
  }

  /** Re-reads memory.buffer (after growth; also the path for shared memories, which never detach). */
  refresh(): void {
    const b = this.memory!.buffer;
    this.shared = !(b instanceof ArrayBuffer);
    this.buffer = b;
    this.dv = new DataView(b);
    this.u8 = new Uint8Array(b);
    this.nb = Buffer.from(b);
  }

  /** Allocates `size` bytes in the guest; the views are valid afterwards. */
  alloc(size: number, align: number): number {
    const p = this.realloc(0, 0, align, size);
    // Reading memory.buffer costs more than the realloc call itself; a grown memory detaches
    // the old buffer (length 0), so only an allocation past the cached end needs a sync.
    if (p + size > this.u8.length) this.refresh();
    if ((p & (align - 1)) !== 0 || p + size > this.u8.length) throw new AbiTrap(`cabi_realloc returned a bad pointer ${p} for ${size} bytes`);
    return p;
  }

  /** Writes `s` as UTF-8 into a fresh guest allocation; returns the pointer, length in `len`. */
  writeString(s: string): number {
    const n = s.length;
    if (n === 0) { this.len = 0; return 1; }
    let p = this.alloc(n, 1);
    const u8 = this.u8;
    let i = 0;
    // ASCII fast path: one byte per UTF-16 unit.
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      u8[p + i] = c;
    }
    if (i === n) { this.len = n; return p; }
    // Non-ASCII: grow to the worst case (3 bytes per unit), encode the rest, shrink.
    const worst = i + (n - i) * 3;
    p = this.realloc(p, n, 1, worst);
    if (p + worst > this.u8.length) this.refresh();
    if (p + worst > this.u8.length) throw new AbiTrap(`cabi_realloc returned a bad pointer ${p}`);
    const r = encoder.encodeInto(s.slice(i), this.u8.subarray(p + i, p + worst));
    const total = i + r.written;
    p = this.realloc(p, worst, 1, total);
    if (p + total > this.u8.length) this.refresh();
    if (p + total > this.u8.length) throw new AbiTrap(`cabi_realloc returned a bad pointer ${p}`);
    this.len = total;
    return p;
  }

  readString(p: number, n: number): string {
    if (n === 0) return '';
    if (p + n > this.u8.length) throw new AbiTrap(`string out of bounds: ${p}+${n}`);
    // Buffer's decoder beats both TextDecoder and a JS loop even for 15-byte ASCII strings
    // (bench/hook-call.ts), and replaces invalid UTF-8 exactly as TextDecoder (so jco) does.
    return this.nb.toString('utf8', p, p + n);
  }

  /** Copies bytes into a fresh guest allocation (alignment 1: list<u8>). */
  writeBytes(b: Uint8Array): number {
    const n = b.length;
    if (n === 0) return 1;
    const p = this.alloc(n, 1);
    this.u8.set(b, p);
    return p;
  }

  /** Copies a list<u8> out of guest memory (the copy outlives the next call). */
  readBytes(p: number, n: number): Uint8Array {
    if (p + n > this.u8.length) throw new AbiTrap(`list out of bounds: ${p}+${n}`);
    return this.u8.slice(p, p + n);
  }

  /** Checks a list of `n` elements of `size` bytes lies inside memory before reading it. */
  checkList(p: number, n: number, size: number): void {
    if (p + n * size > this.u8.length) throw new AbiTrap(`list out of bounds: ${p}+${n}×${size}`);
  }
}

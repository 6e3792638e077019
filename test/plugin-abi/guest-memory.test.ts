/**
 * GuestMemory and the codec's defences, against a fake guest: a real WebAssembly.Memory with
 * a JS bump allocator, and export functions that return crafted pointers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callDescribe, callOnRequestHeaders, callSelectUpstream, type CoreFunctions, type CoreInstance } from '../../plugin-abi/generated/codec.ts';
import { AbiTrap, GuestMemory } from '../../plugin-abi/src/abi/guest-memory.ts';
import type { WasmMemory } from '../../plugin-abi/src/abi/wasm.ts';

const WasmMemoryCtor = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum?: number }) => WasmMemory } }).WebAssembly.Memory;

/** A guest memory of one page whose allocator grows it on demand. */
function fakeGuest(): { mem: GuestMemory; memory: WasmMemory; allocs: number[] } {
  const memory = new WasmMemoryCtor({ initial: 1, maximum: 100 });
  let top = 1024;
  const allocs: number[] = [];
  const mem = new GuestMemory();
  mem.attach(memory, (old, oldSize, align, size) => {
    if (old !== 0 && old + oldSize === top) { top = old + size; } else {
      const p = Math.ceil(top / align) * align;
      if (old !== 0) new Uint8Array(memory.buffer).copyWithin(p, old, old + Math.min(oldSize, size));
      top = p + size;
      old = p;
    }
    while (top > memory.buffer.byteLength) memory.grow(1);
    allocs.push(size);
    return old;
  });
  return { mem, memory, allocs };
}

function fakeInstance(mem: GuestMemory, fns: Partial<CoreFunctions>): CoreInstance {
  return { mem, fns: fns as CoreFunctions, promising: {} as CoreInstance['promising'] };
}

test('strings round-trip: empty, ASCII, non-ASCII, emoji, lone surrogate', () => {
  const { mem } = fakeGuest();
  for (const s of ['', 'a', 'plain-ascii-header-name', 'é', 'x'.repeat(30) + 'ü', '😀 smile', '\ud800', 'naïve'.repeat(200)]) {
    const p = mem.writeString(s);
    const back = mem.readString(p, mem.len);
    // Lone surrogates become U+FFFD, as with TextEncoder (and jco).
    assert.equal(back, new TextDecoder().decode(new TextEncoder().encode(s)));
    assert.equal(mem.len, Buffer.byteLength(s));
  }
});

test('views follow memory growth during lowering', () => {
  const { mem, memory } = fakeGuest();
  const before = memory.buffer.byteLength;
  const big = 'ü'.repeat(70_000); // 140 KB of UTF-8: grows memory mid-string
  const p = mem.writeString(big);
  assert.ok(memory.buffer.byteLength > before);
  assert.equal(mem.readString(p, mem.len), big);
});

test('a guest pointer outside memory is a trap, not a wrong value', () => {
  const { mem, memory } = fakeGuest();
  const dv = new DataView(memory.buffer);
  // describe's result: plugin-info whose name points past the end of memory.
  const ret = 512;
  dv.setUint32(ret, 0xfffff000, true);
  dv.setUint32(ret + 4, 16, true);
  const inst = fakeInstance(mem, { describe: () => ret, describePost: undefined });
  assert.throws(() => callDescribe(inst), AbiTrap);
});

test('an invalid discriminant from the guest is a trap', () => {
  const { mem, memory } = fakeGuest();
  new DataView(memory.buffer).setUint8(600, 9); // decision has 4 cases
  const inst = fakeInstance(mem, { onRequestHeaders: () => 600, onRequestHeadersPost: undefined });
  assert.throws(() => callOnRequestHeaders(inst, 1n), /invalid decision discriminant 9/);
});

test('post-return runs after the result is lifted, with the result pointer', () => {
  const { mem, memory } = fakeGuest();
  const dv = new DataView(memory.buffer);
  dv.setUint8(700, 1);
  dv.setUint32(704, 42, true);
  const seen: number[] = [];
  const inst = fakeInstance(mem, {
    selectUpstream: () => 700,
    selectUpstreamPost: (r) => { seen.push(r); dv.setUint32(704, 0, true); },
  });
  assert.equal(callSelectUpstream(inst, 1n, { name: 'u', localZone: '', attempt: 0, previous: undefined }, []), 42);
  assert.deepStrictEqual(seen, [700]);
});

test('a bad value from the host side is a TypeError naming the type', () => {
  const { mem } = fakeGuest();
  const inst = fakeInstance(mem, { selectUpstream: () => 0 });
  // A string field given a number.
  assert.throws(() => callSelectUpstream(inst, 1n, { name: 5 as unknown as string, localZone: '', attempt: 0, previous: undefined }, []), TypeError);
});

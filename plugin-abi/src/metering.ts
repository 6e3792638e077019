// Fuel metering and memory caps for inline plugins.
//
// meterModule rewrites a core wasm module at the binary level: it adds an exported mutable
// i64 fuel global, charges it at every function entry and loop header (and by size for bulk
// memory/table ops), traps with `unreachable` once it drops below zero, and caps the memory's
// maximum. Everything else (imports, exports, data, name section) is copied byte for byte,
// so the plugin host sees the same module. No binaryen (≈ 240 ms just to import): the rewrite
// is two passes over the code section, ≈ 0.2 ms for a small plugin, ≈ 0.3 s for 12 MB.
// Custom sections holding code offsets (DWARF, branch hints) are kept but become stale.
//
// One fuel unit is about one wasm instruction (≈ 0.04–0.15 ns of CPU on Node 24).
// Instances that trapped must be discarded: the trap may have left guest state half-updated.

import { MeteringError, Reader, Writer, u32Bytes } from './metering/bytes.ts';
import { rewriteBody } from './metering/code.ts';
import { wasm, type WasmGlobal, type WasmInstance } from './metering/wasm-api.ts';

export { MeteringError } from './metering/bytes.ts';

const PAGE = 65536;
const MAX_PAGES_32 = 65536;
export const DEFAULT_FUEL_GLOBAL = 'weir_fuel';
// Enough for a start function (≈ 5–15 ms of guest CPU); the host sets the real budget per call.
export const DEFAULT_START_FUEL = 100_000_000n;

export interface MeterOptions {
  /** Cap on linear memory, rounded down to whole 64 KiB pages; must be >= the initial size. */
  memoryMaxBytes: number;
  /** Fuel available to the start function during instantiation. */
  startFuel?: bigint | number;
  /** Export name for the fuel global; a numeric suffix is added if the module already uses it. */
  fuelGlobalName?: string;
}

export interface ImportedMemoryLimits {
  module: string;
  name: string;
  initialPages: number;
  /** The host must create the imported Memory with at most this maximum. */
  maximumPages: number;
}

export interface MeteredModule {
  /** Instrumented core module (checked with WebAssembly.validate). */
  bytes: Uint8Array;
  /** Export name of the mutable i64 global holding the remaining fuel. */
  fuelGlobal: string;
  /** Function index → name from the name section ('' where unnamed). */
  functionNames: string[];
  /** Memory maximum written into the module, in pages (undefined if it has no memory). */
  memoryMaxPages: number | undefined;
  /** Set when the memory is imported rather than defined. */
  importedMemory: ImportedMemoryLimits | undefined;
}

// Canonical order of known sections, to place the global/export sections when we add them.
const SECTION_RANK: Record<number, number> = {
  1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13,
};

interface Section {
  id: number;
  start: number; // content start
  end: number;
  replacement?: Uint8Array;
}

interface Limits {
  min: number;
  max: number | undefined;
}

function fail(msg: string): never {
  throw new MeteringError(`metering: ${msg}`);
}

function readLimits(r: Reader, what: string): Limits {
  const flags = r.byte();
  if (flags & 0x02) fail(`shared ${what} is not supported (threads proposal); plugins must be single-threaded`);
  if (flags & 0x04) fail(`64-bit ${what} (memory64 proposal) is not supported`);
  if (flags & ~0x01) fail(`${what} limits flags 0x${flags.toString(16)} are not supported`);
  const min = r.u32();
  const max = flags & 0x01 ? r.u32() : undefined;
  return { min, max };
}

function capLimits(l: Limits, capPages: number, where: string): Limits {
  if (capPages < l.min) {
    fail(
      `memory cap of ${capPages} pages (${capPages * PAGE} bytes) is below the ${where} memory's ` +
        `initial size of ${l.min} pages (${l.min * PAGE} bytes)`,
    );
  }
  return { min: l.min, max: Math.min(l.max ?? capPages, capPages) };
}

function writeLimits(w: Writer, l: Limits): void {
  w.byte(0x01).u32(l.min).u32(l.max!);
}

function parseFunctionNames(buf: Uint8Array, start: number, end: number, names: string[]): void {
  try {
    const r = new Reader(buf, start, end);
    r.name(); // "name"
    while (!r.eof()) {
      const id = r.byte();
      const size = r.u32();
      const subEnd = r.pos + size;
      if (id === 1) {
        const sr = new Reader(buf, r.pos, subEnd);
        const n = sr.u32();
        for (let i = 0; i < n; i++) {
          const idx = sr.u32();
          const name = sr.name();
          if (idx < names.length) names[idx] = name;
        }
      }
      r.pos = subEnd;
    }
  } catch {
    // A malformed name section does not invalidate a module; just keep what was read.
  }
}

export function meterModule(coreWasm: Uint8Array, opts: MeterOptions): MeteredModule {
  if (!(coreWasm instanceof Uint8Array)) fail('expected the module bytes as a Uint8Array');
  if (!Number.isFinite(opts.memoryMaxBytes) || opts.memoryMaxBytes < 0) {
    fail(`memoryMaxBytes must be a non-negative number, got ${opts.memoryMaxBytes}`);
  }
  if (!wasm.validate(coreWasm)) fail('input is not a valid WebAssembly core module');
  const capPages = Math.min(Math.floor(opts.memoryMaxBytes / PAGE), MAX_PAGES_32);
  const startFuel = BigInt(opts.startFuel ?? DEFAULT_START_FUEL);

  const buf = coreWasm;
  const r = new Reader(buf);
  if (buf[0] !== 0 || buf[1] !== 0x61 || buf[2] !== 0x73 || buf[3] !== 0x6d) fail('not a wasm binary');
  const version = buf[4]! | (buf[5]! << 8) | (buf[6]! << 16) | (buf[7]! << 24);
  if (version !== 1) fail('not a core wasm module (components must be split into core modules first)');
  r.pos = 8;

  const sections: Section[] = [];
  while (!r.eof()) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, start, end: r.pos });
  }

  const paramCounts: number[] = [];
  const funcTypes: number[] = [];
  let importedFuncs = 0;
  let importedGlobals = 0;
  let definedGlobals = 0;
  let memoryMaxPages: number | undefined;
  let importedMemory: ImportedMemoryLimits | undefined;
  let memories = 0;
  const exportNames = new Set<string>();
  let nameSection: Section | undefined;

  for (const s of sections) {
    const sr = new Reader(buf, s.start, s.end);
    switch (s.id) {
      case 0: {
        if (sr.name() === 'name') nameSection = s;
        break;
      }
      case 1: {
        const n = sr.u32();
        for (let i = 0; i < n; i++) {
          const form = sr.byte();
          if (form !== 0x60) fail(`type form 0x${form.toString(16)} (GC proposal) is not supported`);
          const params = sr.u32();
          for (let j = 0; j < params; j++) valType(sr);
          const results = sr.u32();
          for (let j = 0; j < results; j++) valType(sr);
          paramCounts.push(params);
        }
        break;
      }
      case 2: {
        const n = sr.u32();
        const w = new Writer().u32(n);
        for (let i = 0; i < n; i++) {
          const entryStart = sr.pos;
          const module = sr.name();
          const name = sr.name();
          const kind = sr.byte();
          switch (kind) {
            case 0:
              funcTypes.push(sr.u32());
              importedFuncs++;
              w.bytes(buf.subarray(entryStart, sr.pos));
              break;
            case 1:
              valType(sr);
              readLimits(sr, 'table');
              w.bytes(buf.subarray(entryStart, sr.pos));
              break;
            case 2: {
              const kindEnd = sr.pos;
              const capped = capLimits(readLimits(sr, 'memory'), capPages, 'imported');
              memories++;
              memoryMaxPages = capped.max;
              importedMemory = { module, name, initialPages: capped.min, maximumPages: capped.max! };
              w.bytes(buf.subarray(entryStart, kindEnd));
              writeLimits(w, capped);
              break;
            }
            case 3:
              valType(sr);
              sr.byte();
              importedGlobals++;
              w.bytes(buf.subarray(entryStart, sr.pos));
              break;
            case 4:
              fail('tag imports (exception handling) are not supported');
            default:
              fail(`unknown import kind ${kind}`);
          }
        }
        s.replacement = w.finish();
        break;
      }
      case 3: {
        const n = sr.u32();
        for (let i = 0; i < n; i++) funcTypes.push(sr.u32());
        break;
      }
      case 4: {
        const n = sr.u32();
        for (let i = 0; i < n; i++) {
          if (buf[sr.pos] === 0x40) fail('tables with initializers are not supported');
          valType(sr);
          readLimits(sr, 'table');
        }
        break;
      }
      case 5: {
        const n = sr.u32();
        const w = new Writer().u32(n);
        for (let i = 0; i < n; i++) {
          const capped = capLimits(readLimits(sr, 'memory'), capPages, 'defined');
          memoryMaxPages = capped.max;
          writeLimits(w, capped);
        }
        memories += n;
        s.replacement = w.finish();
        break;
      }
      case 13:
        fail('tags (exception handling) are not supported');
      case 6:
        definedGlobals = sr.u32();
        break;
      case 7: {
        const n = sr.u32();
        for (let i = 0; i < n; i++) {
          exportNames.add(sr.name());
          sr.byte();
          sr.u32();
        }
        break;
      }
    }
  }
  if (memories > 1) fail('multiple memories are not supported');

  const fuelIndex = importedGlobals + definedGlobals;
  const baseName = opts.fuelGlobalName ?? DEFAULT_FUEL_GLOBAL;
  let fuelGlobal = baseName;
  for (let i = 1; exportNames.has(fuelGlobal); i++) fuelGlobal = `${baseName}_${i}`;

  const newGlobal = new Writer().byte(0x7e).byte(0x01).byte(0x42).s64(startFuel).byte(0x0b).finish();
  const newExport = new Writer().name(fuelGlobal).byte(0x03).u32(fuelIndex).finish();

  let haveGlobal = false;
  let haveExport = false;
  for (const s of sections) {
    if (s.id === 6) {
      haveGlobal = true;
      const sr = new Reader(buf, s.start, s.end);
      const n = sr.u32();
      s.replacement = new Writer().u32(n + 1).bytes(buf.subarray(sr.pos, s.end)).bytes(newGlobal).finish();
    } else if (s.id === 7) {
      haveExport = true;
      const sr = new Reader(buf, s.start, s.end);
      const n = sr.u32();
      s.replacement = new Writer().u32(n + 1).bytes(buf.subarray(sr.pos, s.end)).bytes(newExport).finish();
    } else if (s.id === 10) {
      s.replacement = rewriteCode(buf, s, importedFuncs, funcTypes, paramCounts, fuelIndex);
    }
  }
  if (!haveGlobal) insertSection(sections, 6, new Writer().u32(1).bytes(newGlobal).finish());
  if (!haveExport) insertSection(sections, 7, new Writer().u32(1).bytes(newExport).finish());

  const out = new Writer().bytes(buf.subarray(0, 8));
  for (const s of sections) {
    const content = s.replacement ?? buf.subarray(s.start, s.end);
    out.byte(s.id).bytes(u32Bytes(content.length)).bytes(content);
  }
  const bytes = out.finish();
  if (!wasm.validate(bytes)) fail('internal error: the instrumented module does not validate');

  const functionNames = new Array<string>(funcTypes.length).fill('');
  if (nameSection) parseFunctionNames(buf, nameSection.start, nameSection.end, functionNames);

  return { bytes, fuelGlobal, functionNames, memoryMaxPages, importedMemory };
}

function rewriteCode(
  buf: Uint8Array,
  s: Section,
  importedFuncs: number,
  funcTypes: number[],
  paramCounts: number[],
  fuelIndex: number,
): Uint8Array {
  const sr = new Reader(buf, s.start, s.end);
  const n = sr.u32();
  const bodies: { start: number; end: number; funcIndex: number; paramCount: number }[] = [];
  for (let i = 0; i < n; i++) {
    const size = sr.u32();
    const start = sr.pos;
    sr.skip(size);
    const funcIndex = importedFuncs + i;
    const paramCount = paramCounts[funcTypes[funcIndex] ?? -1];
    if (paramCount === undefined) fail(`function ${funcIndex} has no type`);
    bodies.push({ start, end: sr.pos, funcIndex, paramCount });
  }
  // First pass finds the leaf functions, whose cost their callers pay.
  const leafCosts = new Map<number, number>();
  const probe = (funcIndex: number) => (funcIndex < importedFuncs ? undefined : 0);
  for (const b of bodies) {
    const { summary } = rewriteBody(buf, b.start, b.end, { ...b, fuelGlobal: fuelIndex, leafCost: probe });
    if (summary.leaf) leafCosts.set(b.funcIndex, summary.cost);
  }
  const w = new Writer().u32(n);
  for (const b of bodies) {
    const { bytes } = rewriteBody(buf, b.start, b.end, {
      ...b,
      fuelGlobal: fuelIndex,
      leafCost: (f) => leafCosts.get(f),
    });
    w.u32(bytes.length).bytes(bytes);
  }
  return w.finish();
}

function insertSection(sections: Section[], id: number, content: Uint8Array): void {
  const rank = SECTION_RANK[id]!;
  let at = sections.length;
  for (let i = 0; i < sections.length; i++) {
    const other = SECTION_RANK[sections[i]!.id];
    if (other !== undefined && other > rank) {
      at = i;
      break;
    }
  }
  sections.splice(at, 0, { id, start: 0, end: 0, replacement: content });
}

function valType(r: Reader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) fail('typed function references (GC proposal) are not supported');
  if (t < 0x69 || t > 0x7f) fail(`value type 0x${t.toString(16)} is not supported`);
}

function fuelGlobalOf(instance: WasmInstance, fuelGlobal: string): WasmGlobal {
  const g = instance.exports[fuelGlobal];
  if (!(g instanceof wasm.Global)) throw new TypeError(`instance has no exported fuel global "${fuelGlobal}"`);
  return g;
}

/** Remaining fuel (negative after an out-of-fuel trap). */
export function getFuel(instance: WasmInstance, fuelGlobal: string): bigint {
  return fuelGlobalOf(instance, fuelGlobal).value as bigint;
}

export function setFuel(instance: WasmInstance, fuelGlobal: string, fuel: bigint | number): void {
  fuelGlobalOf(instance, fuelGlobal).value = BigInt(fuel);
}

/** After a trap: true when the guest ran out of fuel rather than failing on its own. */
export function isOutOfFuel(instance: WasmInstance, fuelGlobal: string): boolean {
  return getFuel(instance, fuelGlobal) < 0n;
}

/** Fuel consumed since the global was set to `budget` (may exceed it by one charge after running out). */
export function fuelUsed(instance: WasmInstance, fuelGlobal: string, budget: bigint | number): bigint {
  return BigInt(budget) - getFuel(instance, fuelGlobal);
}

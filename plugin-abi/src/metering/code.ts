// Rewrites one function body: charges fuel at entry and at every loop header, and charges
// bulk memory/table operations by size at run time. Instructions are copied byte for byte;
// the decoder only needs each instruction's length, and refuses any opcode it does not know
// so that no loop can slip through unmetered.

import { MeteringError, Reader, Writer } from './bytes.ts';

// Each bulk operation is charged 1 unit per this many bytes (or table slots), on top of its
// static cost: bulk ops run far faster per byte than a guest-written loop.
export const BULK_UNITS_SHIFT = 3n;

// Instructions far slower than the rest (≈ 20–90 cycles against ≈ 1): integer division and
// remainder, float division and square root. Weighting them keeps fuel proportional to time,
// which the per-call deadline relies on (fuel is calibrated to milliseconds at startup).
export const HEAVY_COST = 16;
const HEAVY: Record<number, number> = {};
for (const op of [0x6d, 0x6e, 0x6f, 0x70, 0x7f, 0x80, 0x81, 0x82, 0x95, 0x91, 0xa3, 0x9f]) HEAVY[op] = HEAVY_COST;

interface Region {
  cost: number;
}

type Part = Uint8Array | Region;

// Small leaf functions (no loop, no call, no bulk op) are not charged at entry: their run time
// is bounded by their size, so callers pay for them instead (the exact cost for a direct call,
// LEAF_MAX_COST for an indirect one). Charging tiny functions themselves keeps V8 from
// inlining them and cost up to 1.8× on comparator-heavy code.
export const LEAF_MAX_COST = 32;

export interface BodyContext {
  fuelGlobal: number;
  paramCount: number;
  funcIndex: number;
  /** Cost of an uncharged leaf function, or undefined if the function charges itself. */
  leafCost(funcIndex: number): number | undefined;
}

export interface BodySummary {
  /** Static instruction count of the whole body (excluding callees). */
  cost: number;
  /** True when the function can run unmetered: no loop, call or bulk op, and small. */
  leaf: boolean;
}

export interface RewrittenBody {
  bytes: Uint8Array;
  summary: BodySummary;
}

export function chargeCode(fuelGlobal: number, cost: number): Uint8Array {
  const w = new Writer();
  w.byte(0x23).u32(fuelGlobal); // global.get
  w.byte(0x42).s64(BigInt(cost)); // i64.const
  w.byte(0x7d); // i64.sub
  w.byte(0x24).u32(fuelGlobal); // global.set
  trapIfNegative(w, fuelGlobal);
  return w.finish();
}

function trapIfNegative(w: Writer, fuelGlobal: number): void {
  w.byte(0x23).u32(fuelGlobal); // global.get
  w.byte(0x42).byte(0x00); // i64.const 0
  w.byte(0x53); // i64.lt_s
  w.byte(0x04).byte(0x40); // if (empty)
  w.byte(0x00); // unreachable
  w.byte(0x0b); // end
}

// Stack-neutral: the i32 size on top of the stack is stashed in the scratch local, charged,
// and left in place for the bulk op that follows.
function bulkChargeCode(fuelGlobal: number, scratch: number): Uint8Array {
  const w = new Writer();
  w.byte(0x22).u32(scratch); // local.tee
  w.byte(0x23).u32(fuelGlobal); // global.get
  w.byte(0x20).u32(scratch); // local.get
  w.byte(0xad); // i64.extend_i32_u
  w.byte(0x42).s64(BULK_UNITS_SHIFT); // i64.const
  w.byte(0x88); // i64.shr_u
  w.byte(0x7d); // i64.sub
  w.byte(0x24).u32(fuelGlobal); // global.set
  trapIfNegative(w, fuelGlobal);
  return w.finish();
}

function reject(what: string, ctx: BodyContext, _r: Reader, opStart: number): never {
  throw new MeteringError(
    `metering: ${what} is not supported (function ${ctx.funcIndex}, code offset ${opStart})`,
  );
}

export function rewriteBody(input: Uint8Array, start: number, end: number, ctx: BodyContext): RewrittenBody {
  const r = new Reader(input, start, end);

  // Locals: keep the declaration, append one i32 scratch local only if a bulk op needs it.
  const localsStart = r.pos;
  const groups = r.u32();
  let declared = 0;
  for (let i = 0; i < groups; i++) {
    declared += r.u32();
    const t = r.byte();
    if (t === 0x63 || t === 0x64) reject('a typed function reference local (GC proposal)', ctx, r, r.pos - 1);
  }
  const localsEnd = r.pos;
  const scratch = ctx.paramCount + declared;
  let bulkCharge: Uint8Array | undefined;

  const parts: Part[] = [];
  const fnRegion: Region = { cost: 0 };
  let region = fnRegion;
  // One entry per open block; loops remember the region outside them.
  const control: (Region | null)[] = [];
  let runStart = r.pos;
  let finished = false;
  let total = 0;
  let hasLoop = false;
  let hasCall = false;

  const flush = (upTo: number) => {
    if (upTo > runStart) parts.push(input.subarray(runStart, upTo));
    runStart = upTo;
  };

  while (!r.eof()) {
    if (finished) reject('code after the final end', ctx, r, r.pos);
    const opStart = r.pos;
    const op = r.byte();
    if (op !== 0x0b) {
      const c = op < 0x6d || op > 0xa3 ? 1 : (HEAVY[op] ?? 1);
      region.cost += c;
      total += c;
    }
    switch (op) {
      case 0x00: case 0x01: case 0x0f: case 0x1a: case 0x1b: case 0xd1:
        break;
      case 0x02: case 0x04: // block, if
        r.skipBlockType();
        control.push(null);
        break;
      case 0x03: { // loop: the charge sits at the loop body's start, the target of every back edge
        r.skipBlockType();
        hasLoop = true;
        control.push(region);
        flush(r.pos);
        region = { cost: 0 };
        parts.push(region);
        break;
      }
      case 0x05: // else
        break;
      case 0x0b: { // end
        if (control.length === 0) {
          finished = true;
          break;
        }
        const outer = control.pop();
        if (outer) region = outer;
        break;
      }
      case 0x0c: case 0x0d: // br, br_if
        r.u32();
        break;
      case 0x0e: { // br_table
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.u32();
        break;
      }
      case 0x10: case 0x12: { // call, return_call: the callee charges at its own entry unless a leaf
        const leaf = ctx.leafCost(r.u32());
        if (leaf !== undefined) region.cost += leaf;
        hasCall = true;
        break;
      }
      case 0x11: case 0x13: // call_indirect, return_call_indirect: the target may be a leaf
        r.u32();
        r.u32();
        region.cost += LEAF_MAX_COST;
        hasCall = true;
        break;
      case 0x1c: { // select t*
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const t = r.byte();
          if (t === 0x63 || t === 0x64) reject('select with a typed reference (GC proposal)', ctx, r, opStart);
        }
        break;
      }
      case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26:
        r.u32();
        break;
      case 0x3f: case 0x40: // memory.size, memory.grow
        if (r.u32() !== 0) reject('multiple memories', ctx, r, opStart);
        break;
      case 0x41:
        r.skipLeb(5);
        break;
      case 0x42:
        r.skipLeb(10);
        break;
      case 0x43:
        r.skip(4);
        break;
      case 0x44:
        r.skip(8);
        break;
      case 0xd0: // ref.null heaptype
        r.skipLeb(5);
        break;
      case 0xd2: // ref.func
        r.u32();
        break;
      case 0xfc:
        prefixFC(r, ctx, opStart, () => {
          flush(opStart);
          bulkCharge ??= bulkChargeCode(ctx.fuelGlobal, scratch);
          parts.push(bulkCharge);
        });
        break;
      case 0xfd:
        prefixFD(r, ctx, opStart);
        break;
      case 0xfe:
        reject('atomics (threads proposal)', ctx, r, opStart);
      case 0x06: case 0x07: case 0x08: case 0x09: case 0x0a: case 0x18: case 0x19: case 0x1f:
        reject(`exception handling (opcode 0x${op.toString(16)})`, ctx, r, opStart);
      case 0xfb:
        reject('GC instructions', ctx, r, opStart);
      default:
        if (op >= 0x28 && op <= 0x3e) {
          memarg(r, ctx, opStart);
        } else if (op >= 0x45 && op <= 0xc4) {
          // Numeric instructions (MVP and sign-extension) have no immediates.
        } else {
          reject(`opcode 0x${op.toString(16)}`, ctx, r, opStart);
        }
    }
  }
  if (!finished || control.length) reject('a function body without its final end', ctx, r, r.pos);
  flush(r.pos);

  const leaf = !hasLoop && !hasCall && !bulkCharge && total <= LEAF_MAX_COST;
  const summary: BodySummary = { cost: total, leaf };
  if (leaf) return { bytes: input.subarray(start, end), summary };

  const w = new Writer();
  if (bulkCharge) {
    w.u32(groups + 1);
    // Skip the original group count and keep the groups themselves.
    const gr = new Reader(input, localsStart, localsEnd);
    gr.u32();
    w.bytes(input.subarray(gr.pos, localsEnd));
    w.u32(1).byte(0x7f);
  } else {
    w.bytes(input.subarray(localsStart, localsEnd));
  }
  w.bytes(chargeCode(ctx.fuelGlobal, Math.max(1, fnRegion.cost)));
  for (const p of parts) {
    w.bytes(p instanceof Uint8Array ? p : chargeCode(ctx.fuelGlobal, Math.max(1, p.cost)));
  }
  return { bytes: w.finish(), summary };
}

function memarg(r: Reader, ctx: BodyContext, opStart: number): void {
  const align = r.u32();
  if (align & 0x40) reject('multiple memories', ctx, r, opStart);
  r.skipLeb(10); // offset (u64 under memory64, which is rejected at module level)
}

function prefixFC(r: Reader, ctx: BodyContext, opStart: number, chargeBySize: () => void): void {
  const sub = r.u32();
  if (sub <= 7) return; // saturating float-to-int conversions
  switch (sub) {
    case 8: // memory.init data mem
      r.u32();
      if (r.u32() !== 0) reject('multiple memories', ctx, r, opStart);
      chargeBySize();
      return;
    case 9: // data.drop
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
      r.u32();
      return;
    case 10: // memory.copy dst src
      if (r.u32() !== 0 || r.u32() !== 0) reject('multiple memories', ctx, r, opStart);
      chargeBySize();
      return;
    case 11: // memory.fill
      if (r.u32() !== 0) reject('multiple memories', ctx, r, opStart);
      chargeBySize();
      return;
    case 12: // table.init elem table
    case 14: // table.copy dst src
      r.u32();
      r.u32();
      chargeBySize();
      return;
    case 17: // table.fill
      r.u32();
      chargeBySize();
      return;
    default:
      reject(`opcode 0xfc ${sub}`, ctx, r, opStart);
  }
}

function prefixFD(r: Reader, ctx: BodyContext, opStart: number): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) {
    memarg(r, ctx, opStart);
  } else if (sub === 12 || sub === 13) {
    r.skip(16); // v128.const, i8x16.shuffle
  } else if (sub >= 21 && sub <= 34) {
    r.skip(1); // lane index
  } else if (sub >= 84 && sub <= 91) {
    memarg(r, ctx, opStart);
    r.skip(1);
  } else if (sub <= 0x113) {
    // Remaining SIMD and relaxed-SIMD opcodes take no immediates; unknown ones in this range
    // fail WebAssembly.validate on the input.
  } else {
    reject(`opcode 0xfd ${sub}`, ctx, r, opStart);
  }
}

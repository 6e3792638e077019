// Fuel → time: how many fuel units this machine burns per millisecond, measured once per
// process (each worker thread measures its own) with a small metered loop. The runtime turns
// a plugin's `timeout-ms` into a fuel cap with it, which is what bounds a synchronous wasm
// call: nothing can interrupt one on its own thread.

import { meterModule } from '../metering.ts';
import { Writer } from './bytes.ts';
import { wasm } from './wasm-api.ts';

/** Fuel per run; small enough that one run is well under a millisecond on a fast machine. */
const RUN_FUEL = 400_000n;
/** Runs; the first ones run baseline (Liftoff) code until V8 swaps in the optimised tier. */
const RUNS = 40;
/** Floor, in case every run was descheduled: keeps a budget of at least some work per ms. */
const MIN_RATE = 50_000;

/**
 * The calibration module: `spin(seed)` loops forever on a mix of integer arithmetic and
 * memory loads and stores (the bulk of compiled guest code) until its fuel runs out.
 */
function spinModule(): Uint8Array {
  // One dependency chain (each step needs the previous one's result): no instruction-level
  // parallelism to hide the cost, as in a guest's hash, parser or search loop.
  const body = new Writer()
    .u32(0) // no locals besides x
    .byte(0x03).byte(0x40) // loop
    // x = x * K + 1
    .byte(0x20).u32(0).byte(0x42).s64(6364136223846793005n).byte(0x7e).byte(0x42).s64(1n).byte(0x7c).byte(0x21).u32(0)
    // mem[x & 1016] = x
    .byte(0x20).u32(0).byte(0xa7).byte(0x41).u32(1016).byte(0x71).byte(0x20).u32(0).byte(0x37).u32(3).u32(0)
    // x = x ^ mem[(x >> 7) & 1016]
    .byte(0x20).u32(0)
    .byte(0x20).u32(0).byte(0x42).s64(7n).byte(0x88).byte(0xa7).byte(0x41).u32(1016).byte(0x71).byte(0x29).u32(3).u32(0)
    .byte(0x85).byte(0x21).u32(0)
    // x = (x * K) ^ (x >> 29)
    .byte(0x20).u32(0).byte(0x42).s64(-7046029254386353131n).byte(0x7e).byte(0x20).u32(0).byte(0x42).s64(29n).byte(0x88).byte(0x85).byte(0x21).u32(0)
    .byte(0x0c).u32(0) // br 0
    .byte(0x0b) // end loop
    .byte(0x20).u32(0)
    .byte(0x0b)
    .finish();
  const section = (id: number, content: Uint8Array): Uint8Array => new Writer().byte(id).u32(content.length).bytes(content).finish();
  return new Writer()
    .bytes(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]))
    .bytes(section(1, new Writer().u32(1).byte(0x60).u32(1).byte(0x7e).u32(1).byte(0x7e).finish())) // (i64) -> i64
    .bytes(section(3, new Writer().u32(1).u32(0).finish()))
    .bytes(section(5, new Writer().u32(1).byte(0x00).u32(1).finish())) // memory 1
    .bytes(section(7, new Writer().u32(1).name('spin').byte(0x00).u32(0).finish()))
    .bytes(section(10, new Writer().u32(1).u32(body.length).bytes(body).finish()))
    .finish();
}

/** Measures fuel units per millisecond now (the best of several short runs). */
export function measureFuelRate(): number {
  const m = meterModule(spinModule(), { memoryMaxBytes: 65536 });
  const inst = new wasm.Instance(new wasm.Module(m.bytes), {});
  const fuel = inst.exports[m.fuelGlobal] as { value: bigint };
  const spin = inst.exports['spin'] as (seed: bigint) => bigint;
  let best = 0;
  for (let i = 0; i < RUNS; i++) {
    fuel.value = RUN_FUEL;
    const t0 = performance.now();
    try {
      spin(BigInt(i));
    } catch {
      // The out-of-fuel trap ends every run.
    }
    const ms = performance.now() - t0;
    const used = Number(RUN_FUEL - fuel.value);
    if (ms > 0) best = Math.max(best, used / ms);
  }
  return Math.max(MIN_RATE, Math.round(best));
}

let rate: number | undefined;

/** Fuel units per millisecond on this machine, measured on first use and then cached. */
export function fuelPerMs(): number {
  rate ??= measureFuelRate();
  return rate;
}

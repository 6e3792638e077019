// Fuel ↔ time: the weights that keep fuel proportional to time (division, square root) and
// the per-thread calibration the runtime turns `timeout-ms` into a fuel cap with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import wabtInit from 'wabt';
import { fuelUsed, meterModule } from '../../plugin-abi/src/metering.ts';
import { HEAVY_COST } from '../../plugin-abi/src/metering/code.ts';
import { fuelPerMs, measureFuelRate } from '../../plugin-abi/src/metering/calibrate.ts';
import { wasm } from '../../plugin-abi/src/metering/wasm-api.ts';
import { callFuel } from '../../plugin-abi/src/runtime/deadline.ts';

async function wat(text: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('t.wat', text);
  try {
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

/** The same loop as calibrate.ts builds byte by byte (one dependency chain). */
const spinWasm = await wat(`(module (memory 1)
  (func (export "spin") (param $x i64) (result i64)
    (loop
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (i64.const 1)))
      (i64.store (i32.and (i32.wrap_i64 (local.get $x)) (i32.const 1016)) (local.get $x))
      (local.set $x (i64.xor (local.get $x) (i64.load (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 7))) (i32.const 1016)))))
      (local.set $x (i64.xor (i64.mul (local.get $x) (i64.const -7046029254386353131)) (i64.shr_u (local.get $x) (i64.const 29))))
      (br 0))
    (local.get $x)))`);

test('division, remainder and square root cost HEAVY_COST units, other instructions one', async () => {
  // The empty loop keeps each function charged at its own entry (leaves are charged by callers).
  const m = meterModule(await wat(`(module
    (func (export "add") (param i64 i64) (result i64) (loop) local.get 0 local.get 1 i64.add)
    (func (export "div") (param i64 i64) (result i64) (loop) local.get 0 local.get 1 i64.div_u)
    (func (export "rem") (param i32 i32) (result i32) (loop) local.get 0 local.get 1 i32.rem_s)
    (func (export "sqrt") (param f64) (result f64) (loop) local.get 0 local.get 0 f64.div f64.sqrt))`), { memoryMaxBytes: 0 });
  const inst = new wasm.Instance(new wasm.Module(m.bytes), {});
  const used = (name: string, ...args: unknown[]): bigint => {
    (inst.exports[m.fuelGlobal] as { value: bigint }).value = 1000n;
    (inst.exports[name] as (...a: unknown[]) => unknown)(...args);
    return fuelUsed(inst, m.fuelGlobal, 1000);
  };
  const add = used('add', 7n, 3n);
  assert.equal(used('div', 7n, 3n) - add, BigInt(HEAVY_COST - 1));
  assert.equal(used('rem', 7, 3) - add, BigInt(HEAVY_COST - 1));
  assert.equal(used('sqrt', 2) - add, BigInt(2 * HEAVY_COST - 1));
});

test('the calibrated rate is measured once per thread, and a budget of N ms of it runs for about N ms', () => {
  const rate = fuelPerMs();
  assert.ok(rate > 50_000, `rate ${rate}`);
  assert.equal(fuelPerMs(), rate, 'cached');
  assert.ok(measureFuelRate() > 50_000);
  // The calibration loop itself with 50 ms of fuel: a loose window (the machine is shared),
  // which a rate off by 10× falls out of.
  const { fuel } = callFuel(Number.MAX_SAFE_INTEGER, 50);
  const ms = spinFor(fuel);
  assert.ok(ms > 5 && ms < 1000, `50 ms of fuel ran ${ms.toFixed(1)} ms`);
});

test('callFuel: the smaller of fuel and the deadline\'s share, and which one it was', () => {
  const rate = fuelPerMs();
  assert.deepEqual(callFuel(1e15, 100), { fuel: BigInt(Math.floor(100 * rate)), timeBound: true });
  assert.deepEqual(callFuel(1000, 100), { fuel: 1000n, timeBound: false });
});

/** Runs the calibration module's loop on `fuel` and returns the milliseconds it took. */
function spinFor(fuel: bigint): number {
  // Built like calibrate.ts's, through the same public pieces: meter + instantiate.
  const { bytes, fuelGlobal } = meterModule(spinWasm, { memoryMaxBytes: 65536 });
  const inst = new wasm.Instance(new wasm.Module(bytes), {});
  const spin = inst.exports['spin'] as (x: bigint) => bigint;
  const g = inst.exports[fuelGlobal] as { value: bigint };
  g.value = 1_000_000n; // warm-up run
  try { spin(1n); } catch { /* out of fuel */ }
  g.value = fuel;
  const t0 = performance.now();
  try { spin(2n); } catch { /* out of fuel */ }
  return performance.now() - t0;
}

// Micro-benchmark: metered vs unmetered AssemblyScript guest code, and the cost of metering
// itself. Not a test. Run: node_modules/.bin/node plugin-abi/bench/metering-overhead.ts

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import asc from 'assemblyscript/asc';
import { meterModule, setFuel } from '../src/metering.ts';
import { wasm, type WasmInstance } from '../src/metering/wasm-api.ts';

const SOURCE = new URL('../../test/fixtures/wasm/metering/assembly/hash.ts', import.meta.url).pathname;

async function compile(): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-metering-bench-'));
  try {
    const out = join(dir, 'hash.wasm');
    const res = await asc.main([SOURCE, '-O3', '--runtime', 'stub', '--debug', '--outFile', out]);
    if (res.error) throw new Error(`asc failed: ${res.error.message}\n${res.stderr.toString()}`);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Fn = (n: number) => unknown;

// Alternates the two variants round by round (the machine is shared and noisy) and keeps the
// best round of each, in ns per call.
function compare(a: () => void, b: () => void, calls: number, rounds = 15): [number, number] {
  for (let i = 0; i < calls; i++) {
    a(); // warm up (tier-up to TurboFan)
    b();
  }
  const best = [Infinity, Infinity];
  for (let r = 0; r < rounds; r++) {
    [a, b].forEach((f, k) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) f();
      best[k] = Math.min(best[k]!, Number(process.hrtime.bigint() - t0) / calls);
    });
  }
  return [best[0]!, best[1]!];
}

const bytes = await compile();
const t0 = process.hrtime.bigint();
const metered = meterModule(bytes, { memoryMaxBytes: 16 << 20 });
const meterMs = Number(process.hrtime.bigint() - t0) / 1e6;
let warm = Infinity;
for (let i = 0; i < 20; i++) {
  const t = process.hrtime.bigint();
  meterModule(bytes, { memoryMaxBytes: 16 << 20 });
  warm = Math.min(warm, Number(process.hrtime.bigint() - t) / 1e6);
}
console.log(`module: ${bytes.length} B → ${metered.bytes.length} B; meterModule ${meterMs.toFixed(2)} ms cold, ${warm.toFixed(3)} ms warm`);

const env = { env: { abort: () => { throw new Error('abort'); } } };
const plain: WasmInstance = new wasm.Instance(new wasm.Module(bytes), env);
const inst: WasmInstance = new wasm.Instance(new wasm.Module(metered.bytes), env);
const BUDGET = 1n << 60n;

const cases: [name: string, arg: number, calls: number][] = [
  ['fnv', 100_000, 200],
  ['sortChecksum', 2_000, 100],
  ['fib', 20, 200],
];
for (const [name, arg, calls] of cases) {
  const p = plain.exports[name] as Fn;
  const m = inst.exports[name] as Fn;
  if (p(arg) !== m(arg)) throw new Error(`${name}: results differ`);
  setFuel(inst, metered.fuelGlobal, BUDGET);
  const [tp, tm] = compare(() => p(arg), () => m(arg), calls);
  setFuel(inst, metered.fuelGlobal, BUDGET);
  m(arg);
  const used = BUDGET - (inst.exports[metered.fuelGlobal] as { value: bigint }).value;
  console.log(
    `${name}(${arg}): unmetered ${(tp / 1000).toFixed(1)} µs, metered ${(tm / 1000).toFixed(1)} µs, ` +
      `ratio ${(tm / tp).toFixed(3)}; ${used} fuel/call ≈ ${(tm / Number(used)).toFixed(3)} ns per unit`,
  );
}

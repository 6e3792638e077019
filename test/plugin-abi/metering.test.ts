import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';
import asc from 'assemblyscript/asc';
import {
  fuelUsed,
  getFuel,
  isOutOfFuel,
  meterModule,
  setFuel,
  type MeteredModule,
} from '../../plugin-abi/src/metering.ts';
import { wasm, type WasmImports, type WasmInstance, type WasmMemory } from '../../plugin-abi/src/metering/wasm-api.ts';
import { trapStack } from '../../plugin-abi/src/runtime/trap-stack.ts';

const FIXTURES = new URL('../fixtures/wasm/metering/', import.meta.url);
const PAGE = 65536;
const ALL_FEATURES = {
  threads: true,
  exceptions: true,
  bulk_memory: true,
  sign_extension: true,
  multi_value: true,
  sat_float_to_int: true,
  mutable_globals: true,
  reference_types: true,
};

let tmp: string;
let ascWasm: Uint8Array;
const rejected: Record<string, Uint8Array> = {};

async function wat(name: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const text = await readFile(new URL(name, FIXTURES), 'utf8');
  const mod = wabt.parseWat(name, text, ALL_FEATURES);
  try {
    mod.resolveNames();
    return mod.toBinary({ log: false, write_debug_names: true }).buffer;
  } finally {
    mod.destroy();
  }
}

type Fn = (...args: unknown[]) => unknown;

function instantiate(m: MeteredModule, imports: WasmImports = {}): WasmInstance {
  return new wasm.Instance(new wasm.Module(m.bytes), imports);
}

function fn(inst: WasmInstance, name: string): Fn {
  const f = inst.exports[name];
  assert.equal(typeof f, 'function', `export ${name}`);
  return f as Fn;
}

function trapOf(call: () => unknown): Error {
  try {
    call();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected a trap');
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weir-metering-'));
  const src = new URL('assembly/hash.ts', FIXTURES).pathname;
  const out = join(tmp, 'hash.wasm');
  const res = await asc.main([src, '-O3', '--runtime', 'stub', '--debug', '--outFile', out]);
  if (res.error) throw new Error(`asc failed: ${res.error.message}\n${res.stderr.toString()}`);
  ascWasm = new Uint8Array(await readFile(out));
  for (const name of ['shared-memory', 'atomics', 'exceptions', 'try']) rejected[name] = await wat(`${name}.wat`);
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('an infinite loop runs out of fuel and is told apart from a guest trap', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: 4 * PAGE });
  assert.equal(m.fuelGlobal, 'weir_fuel');
  const inst = instantiate(m);

  setFuel(inst, m.fuelGlobal, 1_000_000);
  const spin = trapOf(() => fn(inst, 'spin')());
  assert.ok(spin instanceof wasm.RuntimeError);
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);

  const fresh = instantiate(m);
  setFuel(fresh, m.fuelGlobal, 1_000_000);
  const boom = trapOf(() => fn(fresh, 'boom')());
  assert.ok(boom instanceof wasm.RuntimeError);
  assert.equal(isOutOfFuel(fresh, m.fuelGlobal), false);
});

test('deep recursion is stopped by fuel', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: PAGE });
  const inst = instantiate(m);
  setFuel(inst, m.fuelGlobal, 10_000);
  trapOf(() => fn(inst, 'recurse')(1_000_000));
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);

  const ok = instantiate(m);
  setFuel(ok, m.fuelGlobal, 1_000_000);
  assert.equal(fn(ok, 'recurse')(100), 100);
  assert.equal(isOutOfFuel(ok, m.fuelGlobal), false);
});

test('a finite loop completes and fuel used grows roughly linearly with iterations', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: PAGE });
  const inst = instantiate(m);
  const budget = 10_000_000n;
  const used: bigint[] = [];
  for (const n of [0, 10, 100, 1000, 10_000]) {
    setFuel(inst, m.fuelGlobal, budget);
    let expected = 0;
    for (let i = 0; i < n; i++) expected = (expected + i * 3) | 0;
    assert.equal(fn(inst, 'count')(n), expected);
    used.push(fuelUsed(inst, m.fuelGlobal, budget));
  }
  for (let i = 1; i < used.length; i++) assert.ok(used[i]! > used[i - 1]!, `monotonic: ${used}`);
  // Per-iteration cost is constant: 10× the iterations costs about 10× the fuel.
  const perIter = (a: number, b: number) => Number(used[b]! - used[a]!) / ([0, 10, 100, 1000, 10_000][b]! - [0, 10, 100, 1000, 10_000][a]!);
  const ratio = perIter(3, 4) / perIter(1, 2);
  assert.ok(ratio > 0.9 && ratio < 1.1, `per-iteration cost ratio ${ratio}`);
  assert.ok(perIter(3, 4) >= 1);
});

test('the start function is metered with startFuel', async () => {
  const bytes = await wat('guest.wat');
  const m = meterModule(bytes, { memoryMaxBytes: PAGE });
  assert.equal(fn(instantiate(m), 'started')(), 100);
  const starved = meterModule(bytes, { memoryMaxBytes: PAGE, startFuel: 10 });
  assert.throws(() => instantiate(starved), wasm.RuntimeError);
});

test('memory.grow past the cap returns -1 and the memory never exceeds it', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: 4 * PAGE + 1000 });
  assert.equal(m.memoryMaxPages, 4);
  assert.equal(m.importedMemory, undefined);
  const inst = instantiate(m);
  setFuel(inst, m.fuelGlobal, 1_000_000);
  const grow = fn(inst, 'grow');
  assert.equal(grow(2), 1);
  assert.equal(grow(2), -1);
  assert.equal(grow(1), 3);
  assert.equal(grow(1), -1);
  assert.equal(fn(inst, 'pages')(), 4);
  const memory = inst.exports.memory as WasmMemory;
  assert.throws(() => memory.grow(1), RangeError);
  assert.equal(memory.buffer.byteLength, 4 * PAGE);
});

test('a cap below the initial memory is an error', async () => {
  assert.throws(() => meterModule(ascWasm, { memoryMaxBytes: 0 }), /below .* initial size/);
});

test('an imported memory gets the cap in its import and the limits are reported', async () => {
  const m = meterModule(await wat('imported-memory.wat'), { memoryMaxBytes: 3 * PAGE });
  assert.deepEqual(m.importedMemory, { module: 'env', name: 'memory', initialPages: 2, maximumPages: 3 });
  // A host memory without the cap does not link.
  const unbounded = new wasm.Memory({ initial: 2, maximum: 100 });
  assert.throws(() => instantiate(m, { env: { memory: unbounded } }), wasm.LinkError);
  const memory = new wasm.Memory({ initial: 2, maximum: m.importedMemory!.maximumPages });
  const inst = instantiate(m, { env: { memory } });
  setFuel(inst, m.fuelGlobal, 1000);
  assert.equal(fn(inst, 'grow')(1), 2);
  assert.equal(fn(inst, 'grow')(1), -1);
});

test('memory.fill and memory.copy are charged by size', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: 64 * PAGE });
  const inst = instantiate(m);
  setFuel(inst, m.fuelGlobal, 1_000_000_000n);
  assert.equal(fn(inst, 'grow')(63), 1);
  const budget = 1_000_000_000n;
  setFuel(inst, m.fuelGlobal, budget);
  fn(inst, 'fill')(0, 16);
  const small = fuelUsed(inst, m.fuelGlobal, budget);
  setFuel(inst, m.fuelGlobal, budget);
  fn(inst, 'fill')(0, 64 * PAGE);
  const big = fuelUsed(inst, m.fuelGlobal, budget);
  assert.ok(big > small + 100_000n, `fill charged ${small} vs ${big}`);
  const memory = inst.exports.memory as WasmMemory;
  assert.equal(new Uint8Array(memory.buffer)[64 * PAGE - 1], 0xab);

  // A huge fill with a small budget traps out of fuel before touching memory.
  setFuel(inst, m.fuelGlobal, 1000);
  trapOf(() => fn(inst, 'fill')(0, 64 * PAGE));
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);
  setFuel(inst, m.fuelGlobal, 1000);
  trapOf(() => fn(inst, 'copy')(0, 1, 64 * PAGE - 1));
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);
});

test('shared memory, atomics and unknown instructions are rejected with a clear message', async () => {
  assert.throws(() => meterModule(Uint8Array.from([0, 1, 2]), { memoryMaxBytes: PAGE }), /not a valid WebAssembly/);
  assert.throws(() => meterModule(rejected['shared-memory']!, { memoryMaxBytes: PAGE }), /shared memory is not supported/);
  assert.throws(() => meterModule(rejected.atomics!, { memoryMaxBytes: PAGE }), /atomics .* not supported/);
  assert.throws(() => meterModule(rejected.exceptions!, { memoryMaxBytes: PAGE }), /exception handling.* not supported/);
  // An instruction the walker does not know, inside a loop, is refused rather than skipped.
  assert.throws(() => meterModule(rejected.try!, { memoryMaxBytes: PAGE }), /exception handling \(opcode 0x6\) is not supported \(function 0/);
});

test('the name section survives and trapStack names the looping function', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: PAGE });
  assert.ok(m.functionNames.includes('spin_forever'));
  assert.ok(m.functionNames.includes('recurse'));
  const inst = instantiate(m);
  setFuel(inst, m.fuelGlobal, 10_000);
  const err = trapOf(() => fn(inst, 'spin')());
  assert.equal(trapStack(err, m.functionNames)[0], 'spin_forever');
  assert.equal(trapStack(new Error('not wasm'), m.functionNames)[0], undefined);
  assert.deepEqual(trapStack('at wasm://wasm/1234:wasm-function[99]:0x10', []), ['wasm-function[99]']);
});

test('exports, imports and data segments are intact', async () => {
  const original = await wat('guest.wat');
  const m = meterModule(original, { memoryMaxBytes: PAGE });
  const inst = instantiate(m);
  const origInst = new wasm.Instance(new wasm.Module(original));
  const exportsOf = (i: WasmInstance) => Object.keys(i.exports).sort();
  assert.deepEqual(exportsOf(inst), [...exportsOf(origInst), 'weir_fuel'].sort());
  const names = (bytes: Uint8Array) => wasm.Module.customSections(new wasm.Module(bytes), 'name');
  assert.deepEqual(new Uint8Array(names(m.bytes)[0]!), new Uint8Array(names(original)[0]!));
  setFuel(inst, m.fuelGlobal, 1000);
  const ptr = fn(inst, 'greeting_ptr')() as number;
  const len = fn(inst, 'greeting_len')() as number;
  const memory = inst.exports.memory as WasmMemory;
  assert.equal(new TextDecoder().decode(new Uint8Array(memory.buffer, ptr, len)), 'hello from weir');
});

test('the fuel export name does not clash with an existing export', async () => {
  const m = meterModule(await wat('guest.wat'), { memoryMaxBytes: PAGE, fuelGlobalName: 'memory' });
  assert.equal(m.fuelGlobal, 'memory_1');
  const inst = instantiate(m);
  // What the start function left of the default start fuel.
  const left = getFuel(inst, 'memory_1');
  assert.ok(left > 0n && left < 100_000_000n, `fuel left ${left}`);
  assert.ok(inst.exports.memory && !(inst.exports.memory instanceof wasm.Global));
});

test('leaf functions are paid for by their callers, directly and indirectly', async () => {
  const m = meterModule(await wat('leaf.wat'), { memoryMaxBytes: PAGE });
  const inst = instantiate(m);
  const budget = 1_000_000_000n;
  const perCall = (name: string, n: number) => {
    setFuel(inst, m.fuelGlobal, budget);
    assert.equal(fn(inst, name)(n), n);
    return fuelUsed(inst, m.fuelGlobal, budget);
  };
  for (const name of ['direct', 'indirect']) {
    const a = perCall(name, 100);
    const b = perCall(name, 1100);
    // Each iteration pays for the loop body plus the leaf it calls (3 instructions).
    assert.ok((b - a) / 1000n >= 10n, `${name}: ${(b - a) / 1000n} per iteration`);
    setFuel(inst, m.fuelGlobal, 10_000);
    trapOf(() => fn(inst, name)(1_000_000_000));
    assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);
  }
  // Indirect calls are billed as a worst-case leaf.
  assert.ok(perCall('indirect', 1000) > perCall('direct', 1000));
});

test('rustc-style module: multi-value, bulk memory, sign-ext, tables, passive data', async () => {
  const m = meterModule(await wat('rust-like.wat'), { memoryMaxBytes: 32 * PAGE });
  const inst = instantiate(m);
  setFuel(inst, m.fuelGlobal, 100_000);
  assert.equal(fn(inst, 'dispatch')(1, 7, 5), 12);
  assert.equal(fn(inst, 'dispatch')(2, 7, 5), 2);
  assert.deepEqual([0, 1, 2, 9].map((x) => fn(inst, 'classify')(x)), [10, 20, 30, 30]);
  assert.equal(fn(inst, 'swap_sub')(10, 3), -7);
  assert.equal(fn(inst, 'sext')(0xff), -1);
  assert.equal(fn(inst, 'sat')(1e20), 2147483647);
  const expected = [...'rusty'].reduce((a, c) => a + c.charCodeAt(0), 0);
  assert.equal(fn(inst, 'sum_passive')(), expected);
  assert.equal(inst.exports.__data_end instanceof wasm.Global, true);
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), false);
});

test('AssemblyScript module: works metered, loops are stopped, strings survive', () => {
  const m = meterModule(ascWasm, { memoryMaxBytes: 16 * PAGE });
  assert.ok(m.functionNames.some((n) => n.includes('fnv')), `names: ${m.functionNames}`);
  const abort = () => {
    throw new Error('abort');
  };
  const plain = new wasm.Instance(new wasm.Module(ascWasm), { env: { abort } });
  const inst = instantiate(m, { env: { abort } });
  setFuel(inst, m.fuelGlobal, 100_000_000);
  assert.equal(fn(inst, 'fnv')(1000), fn(plain, 'fnv')(1000));
  assert.equal(fn(inst, 'sortChecksum')(500), fn(plain, 'sortChecksum')(500));

  const ptr = fn(inst, 'greet')() as number;
  const memory = inst.exports.memory as WasmMemory;
  const byteLen = new Uint32Array(memory.buffer, ptr - 4, 1)[0]!;
  assert.equal(new TextDecoder('utf-16le').decode(new Uint8Array(memory.buffer, ptr, byteLen)), 'hello from assemblyscript');

  setFuel(inst, m.fuelGlobal, 1_000_000);
  const err = trapOf(() => fn(inst, 'spinForever')());
  assert.equal(isOutOfFuel(inst, m.fuelGlobal), true);
  assert.match(trapStack(err, m.functionNames)[0] ?? '', /spinForever/);
});

/**
 * Bounded, seeded fuzzers (see target.ts): each runs in its own process for `--seconds`
 * (60 by default) from `--seed` (a fixed default, so a run is reproducible; `--seed=random`
 * picks one and prints it). A fuzzer fails on a check that throws (the failing input is kept
 * in corpus/<name>/found-*), on a crash (its process ends without a result), on a hang (no
 * result within the time plus 90 s) and on unbounded memory (the system under test more than
 * doubling and growing by over 100 MB after its warm-up). The table goes to docs/reliability.md.
 *
 *   node test/fuzz/run.ts [--seconds=60] [--seed=20261202] [--only=http1,kdl] [--no-docs]
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import fc from 'fast-check';
import { flags, writeReliabilitySection } from '../../bench/lib/endurance.ts';
import { keepFailure } from './mutate.ts';
import type { FuzzTarget } from './target.ts';
import { TARGETS } from './targets/index.ts';

const args = flags(process.argv.slice(2));
const seconds = Number(args.get('seconds') ?? 60);
const seedArg = args.get('seed') ?? '20261202';
const seed = seedArg === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedArg);
const MEMORY_GROWTH_BYTES = 100 * 2 ** 20;

interface Result {
  readonly name: string;
  readonly cases: number;
  readonly ms: number;
  readonly memStart: number;
  readonly memEnd: number;
  readonly error?: string;
  readonly kept?: string[];
}

/** One fuzzer in this process: the child side. */
async function child(target: FuzzTarget<unknown>): Promise<Result> {
  const t0 = performance.now();
  const env = await target.setup();
  let cases = 0;
  let memStart = 0;
  const recent: unknown[] = [];
  const warmup = Math.max(1000, seconds * 100);
  try {
    await env.alive();
    const details = await fc.check(fc.asyncProperty(target.arbitrary, async (input) => {
      recent.push(input);
      if (recent.length > 5) recent.shift();
      await target.check(env, input);
      cases++;
      if (cases % 25 === 0) await env.alive();
      if (!memStart && performance.now() - t0 > warmup) memStart = env.memory();
    }), { seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, endOnFailure: true });
    await env.alive();
    const memEnd = env.memory();
    let error: string | undefined;
    let kept: string[] | undefined;
    if (details.failed) {
      error = String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance).slice(0, 1500);
      // The failing input, and the ones before it (a crash may be an earlier input's doing).
      kept = recent.map((i) => keepFailure(target.name, target.encode(i), target.ext));
    } else if (memStart && memEnd > memStart * 2 && memEnd - memStart > MEMORY_GROWTH_BYTES) {
      error = `memory grew from ${mb(memStart)} to ${mb(memEnd)} MB`;
    }
    return { name: target.name, cases, ms: performance.now() - t0, memStart, memEnd, error, kept };
  } catch (e) {
    const kept = recent.map((i) => keepFailure(target.name, target.encode(i), target.ext));
    return { name: target.name, cases, ms: performance.now() - t0, memStart, memEnd: env.memory(), error: (e as Error).message.slice(0, 1500), kept };
  } finally {
    await env.close();
  }
}

const mb = (b: number): string => (b / 2 ** 20).toFixed(0);

/** Runs one fuzzer in a child process, bounded: a crash or a hang is a failure too. */
function inChild(name: string): Promise<Result> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--expose-gc', new URL(import.meta.url).pathname, `--child=${name}`, `--seconds=${seconds}`, `--seed=${seed}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    const t = setTimeout(() => c.kill('SIGKILL'), (seconds + 90) * 1000);
    c.on('exit', (code, signal) => {
      clearTimeout(t);
      const line = out.split('\n').find((l) => l.startsWith('{"name"'));
      if (line) return resolve(JSON.parse(line) as Result);
      resolve({ name, cases: 0, ms: 0, memStart: 0, memEnd: 0, error: signal === 'SIGKILL' ? `hang: no result within ${seconds + 90} s` : `the fuzzer's process ended (${code ?? signal}) without a result` });
    });
  });
}

async function main(): Promise<void> {
  const name = args.get('child');
  if (name) {
    const target = TARGETS.find((t) => t.name === name);
    if (!target) throw new Error(`no fuzzer ${name}`);
    process.stdout.write(`${JSON.stringify(await child(target))}\n`);
    return;
  }
  const only = args.get('only')?.split(',');
  const load = loadavg()[0]!.toFixed(1);
  console.log(`fuzz: seed ${seed}, ${seconds} s per fuzzer`);
  const results: Result[] = [];
  for (const t of TARGETS.filter((x) => !only || only.includes(x.name))) {
    const r = await inChild(t.name);
    console.log(`${r.name}: ${r.cases} cases in ${(r.ms / 1000).toFixed(0)} s, ${r.error ? `FAILED: ${r.error}` : 'ok'}${r.kept ? `\n  kept: ${r.kept.join(' ')}` : ''}`);
    results.push(r);
  }
  if (!args.has('no-docs') && !only) {
    const rows = ['| Fuzzer | Inputs | Cases | Result | Memory start → end (MB) |', '| --- | --- | --- | --- | --- |'];
    for (const r of results) rows.push(`| ${r.name} | ${TARGETS.find((t) => t.name === r.name)!.description} | ${r.cases} | ${r.error ? `failed: ${r.error.split('\n')[0]!.replace(/\|/g, '\\|')}` : 'passed'} | ${mb(r.memStart)} → ${mb(r.memEnd)} |`);
    writeReliabilitySection('fuzz', '## Fuzzing', `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run fuzz -- --seconds=${seconds}\` (seed ${seed}), load average ${load} at start.\n\n${rows.join('\n')}`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

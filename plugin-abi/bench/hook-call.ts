/**
 * One on-request-headers call with 10 headers: our generated codec vs jco's transpiled glue,
 * on the same echo test plugin. Two cases: `/pass` (the guest reads the path through the
 * exchange functions and returns continue, so this is the cost of crossing) and a full echo (the guest returns
 * 20 mutations and calls two host imports).
 *
 *   node_modules/.bin/node plugin-abi/bench/hook-call.ts
 *
 * Reports the median per-call time over batches, after warm-up.
 */
import { callOnRequestHeaders } from '../generated/codec.ts';
import type { WireRequestHead as RequestHead } from '../src/runtime/exchange.ts';
import { GuestMemory } from '../src/abi/guest-memory.ts';
import { RecordingHost, codecEcho, jcoEcho } from '../../test/plugin-abi/harness.ts';

/** A host that records nothing, so the benchmark measures the call path only. */
class QuietHost extends RecordingHost {
  override counterAdd(): bigint { return 1n; }
  override geoCountry(): string | undefined { return 'NZ'; }
}

function head(path: string): RequestHead {
  const headers = [
    ['host', 'api.example.com'], ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) Weir/0.1'], ['accept', 'application/json'],
    ['accept-encoding', 'gzip, br'], ['accept-language', 'en-NZ,en;q=0.9'], ['x-request-id', '7f0c1e2a-95b4-4c55-b1f2-0d7e1a6c3b21'],
    ['authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3ZWlyIn0.sig'], ['content-type', 'application/json'],
    ['x-forwarded-for', '203.0.113.7'], ['cookie', 'session=abc123; theme=dark'],
  ].map(([name, value]) => ({ name: name!, value: value! }));
  return {
    method: 'GET', scheme: 'https', authority: 'api.example.com', path, query: 'page=2&limit=50', headers,
    clientAddress: '203.0.113.7', clientPort: 51234, routeName: 'api', properties: [], httpVersion: '1.1',
  };
}

/** Median ns per call of `fn`, over `batches` batches of `per` calls (min kept in `mins`). */
const mins: Record<string, number> = {};
let current = '';
function measure(fn: () => unknown, batches = 200, per = 500): number {
  for (let i = 0; i < 20_000; i++) fn();
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / per);
  }
  samples.sort((x, y) => x - y);
  mins[current] = samples[0]!;
  return samples[samples.length >> 1]!;
}

const fmt = (ns: number): string => (ns < 1000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(2)} µs`);

export async function run(): Promise<Record<string, number>> {
  const oursHost = new QuietHost();
  const refHost = new QuietHost();
  const ours = await codecEcho(oursHost);
  const ref = await jcoEcho(refHost);
  const results: Record<string, number> = {};
  for (const path of ['/pass', '/echo']) {
    const h = head(path);
    oursHost.setExchange(h);
    refHost.setExchange(h);
    let ctx = 0n;
    current = `codec ${path}`;
    results[current] = measure(() => callOnRequestHeaders(ours, ++ctx));
    current = `jco   ${path}`;
    results[current] = measure(() => ref['onRequestHeaders']!(++ctx));
  }
  // How GuestMemory decodes strings: a JS loop for short ASCII, Buffer#toString otherwise.
  const mem = new GuestMemory();
  const buf = new ArrayBuffer(65536);
  mem.attach({ buffer: buf, grow: () => 0 }, () => 0);
  const u8 = new Uint8Array(buf);
  const nb = Buffer.from(buf);
  const td = new TextDecoder();
  for (const text of ['accept-encoding', 'Mozilla/5.0 (X11; Linux x86_64) Weir/0.1 (compatible)']) {
    const b = new TextEncoder().encode(text);
    u8.set(b, 64);
    const n = b.length;
    let s = '';
    const loop = (): string => { s = ''; for (let i = 64; i < 64 + n; i++) s += String.fromCharCode(u8[i]!); return s; };
    for (const [name, fn] of [['JS loop (ASCII)', loop], ['Buffer#toString', () => nb.toString('utf8', 64, 64 + n)], ['TextDecoder', () => td.decode(u8.subarray(64, 64 + n))], ['GuestMemory.readString', () => mem.readString(64, n)]] as const) {
      current = `decode ${n} B: ${name}`;
      results[current] = measure(fn, 100, 5000);
    }
  }
  return results;
}

if (import.meta.main) {
  const r = await run();
  console.log(`${'case'.padEnd(40)} median (min batch)`);
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(40)} ${fmt(v)} (${fmt(mins[k]!)})`);
}

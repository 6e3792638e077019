/** `weir run` on a port in use: one clean WEIR_ERR_LISTEN line with the address, no stack, exit 1. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { runWeir } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { tmpDir } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function taken(): Promise<number> {
  const port = await freePort();
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return port;
}

const config = (listen: string, extra = ''): string => `schema-version "1.0"
listeners { listener "main" { address "${listen}"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }
${extra}
`;

async function runOn(text: string): Promise<{ code: number | null; out: string }> {
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, text);
  const p = runWeir(['run', '-c', file]);
  cleanups.push(() => p.kill());
  const code = await p.exited(20_000);
  return { code, out: p.output() };
}

function assertCleanListenError(r: { code: number | null; out: string }, address: string): void {
  assert.equal(r.code, 1, r.out);
  const errors = r.out.split('\n').filter((l) => l.startsWith('weir: '));
  assert.equal(errors.length, 1, r.out);
  assert.match(errors[0]!, new RegExp(`^weir: WEIR_ERR_LISTEN: .*${address.replace(/\./g, '\\.')}`));
  assert.doesNotMatch(r.out, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(r.out, /"stack"/, 'no stack in a log line');
}

test('weir run: the listener port is in use', async () => {
  const port = await taken();
  assertCleanListenError(await runOn(config(`127.0.0.1:${port}`)), `127.0.0.1:${port}`);
});

test('weir run with two proxy threads: the listener port is in use', async () => {
  const port = await taken();
  assertCleanListenError(await runOn(config(`127.0.0.1:${port}`, 'system { worker-threads 2 }')), `127.0.0.1:${port}`);
});

test('weir run: the metrics listener port is in use', async () => {
  const port = await taken();
  assertCleanListenError(await runOn(config('127.0.0.1:0', `observability { metrics { address "127.0.0.1:${port}"; } }`)), `127.0.0.1:${port}`);
});

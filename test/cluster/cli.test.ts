/** `weir run` with `worker-threads 2`: signals reach every proxy thread. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/servers.ts';
import { tmpDir } from '../helpers/weir.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

test('weir run: two threads answer, SIGHUP reloads both, SIGTERM drains and exits 0', async () => {
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  const config = (extra: string): string => `schema-version "1.0"
system { worker-threads 2; graceful-shutdown-timeout-secs 2; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes {
    route "status" { matches { path "/_/status"; }; builtin-handler "status"; }
    ${extra}
}
observability { logging { level "info"; access-log #false; } }
`;
  writeFileSync(file, config(''));
  const child = spawn(process.execPath, [join(ROOT, 'host/bin/weir.ts'), 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 200 && !out.includes('"weir started"'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /"threads":2[^\n]*"weir started"|"weir started"[^\n]*"threads":2/);
    const threads = async (): Promise<Map<number, number>> => {
      const seen = new Map<number, number>();
      for (let i = 0; i < 400 && seen.size < 2; i++) {
        const s = JSON.parse((await get(port, '/_/status')).body) as { thread: number; generation: number };
        seen.set(s.thread, s.generation);
      }
      return seen;
    };
    assert.deepEqual([...(await threads()).keys()].sort(), [0, 1]);
    writeFileSync(file, config('route "new" { matches { path "/new"; }; builtin-handler "health"; }'));
    child.kill('SIGHUP');
    // Both threads reach generation 2 (bounded polling).
    let gens = new Map<number, number>();
    for (let i = 0; i < 50; i++) {
      gens = await threads();
      if ([...gens.values()].every((g) => g >= 2) && gens.size === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // (The file watch may reload once more besides SIGHUP.)
    assert.equal(gens.size, 2);
    assert.ok([...gens.values()].every((g) => g >= 2), out);
    assert.equal((await get(port, '/new')).status, 200);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    await assert.rejects(get(port, '/_/status'), /ECONNREFUSED/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

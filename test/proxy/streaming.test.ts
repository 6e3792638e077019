import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { request, Agent } from 'undici';
import { tmpDir } from '../helpers/weir.ts';

// 200 MB each way through a Weir child process whose RSS is sampled: streaming means the
// proxy's memory growth is independent of the body size. The growth seen (~80 MB) is V8's
// young generation and socket buffers awaiting collection, the same for any body size.
const SIZE = 200 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'w');
/** Growth over idle RSS allowed while 200 MB pass each way: half the body size. */
const GROWTH_CEILING = SIZE / 2;

let child: ChildProcess | undefined;
let origin: http.Server | undefined;
after(() => {
  child?.kill('SIGKILL');
  origin?.close();
  origin?.closeAllConnections();
});

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function* chunks(total: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK.length) yield CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
}

test('200 MB upload and download stream through with bounded proxy memory', async () => {
  let uploaded = 0;
  origin = http.createServer((req, res) => {
    if (req.method === 'POST') {
      req.on('data', (c: Buffer) => (uploaded += c.length));
      req.on('end', () => res.end(String(uploaded)));
      return;
    }
    res.writeHead(200, { 'content-length': String(SIZE) });
    Readable.from(chunks(SIZE)).pipe(res);
  });
  await new Promise<void>((r) => origin!.listen(0, '127.0.0.1', r));
  const originPort = (origin.address() as AddressInfo).port;
  const dir = tmpDir();
  const cfg = join(dir, 'weir.kdl');
  writeFileSync(cfg, `
listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "o"; policies { max-body-size "1GiB"; } } }
upstreams { upstream "o" { target "127.0.0.1:${originPort}"; } }
observability { logging { level "info"; access-log #false; } }
`);
  child = spawn(process.execPath, [new URL('../../host/bin/weir.ts', import.meta.url).pathname, 'run', '-c', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child!.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"msg":"listening"/.test(buf) && /"address":"127\.0\.0\.1:(\d+)"/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child!.once('exit', (code) => reject(new Error(`weir exited with ${code}`)));
  });
  await new Promise((r) => setTimeout(r, 200));
  const idle = rss(child.pid!);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(child!.pid!))), 50);
  const agent = new Agent();
  try {
    // download
    const res = await request(`http://127.0.0.1:${port}/big`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    let got = 0;
    for await (const c of res.body) got += (c as Buffer).length;
    assert.equal(got, SIZE);
    // upload (chunked, no Content-Length)
    const up = await request(`http://127.0.0.1:${port}/up`, { method: 'POST', body: Readable.from(chunks(SIZE)), dispatcher: agent });
    assert.equal(up.statusCode, 200);
    assert.equal(Number(await up.body.text()), SIZE);
  } finally {
    clearInterval(sampler);
    await agent.close();
  }
  assert.ok(peak > 0, 'RSS was sampled');
  const mib = (n: number): string => (n / 1048576).toFixed(0);
  assert.ok(peak - idle < GROWTH_CEILING, `proxy RSS grew from ${mib(idle)} to ${mib(peak)} MiB (growth ceiling ${mib(GROWTH_CEILING)} MiB)`);
});

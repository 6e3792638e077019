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

// 200 MB each way through a Weir child process whose RSS is sampled as the bytes flow:
// streaming means the proxy's memory does not grow with the bytes passed. An absolute RSS
// ceiling flakes on a shared machine (V8's young generation and socket buffers vary with
// load), so the test asserts the trend instead: after warm-up, the least-squares slope of
// RSS against bytes delivered is near zero. A proxy that buffered the body would show a
// slope near 1 (every byte kept), far above the bound.
const SIZE = 200 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'w');
/** Bytes delivered between two RSS samples. */
const SAMPLE_EVERY = 2 * 1024 * 1024;
/** Samples before this share of the body are warm-up (pools, JIT, young generation filling). */
const WARM_UP = 0.2;
/** Largest RSS growth per byte delivered after warm-up: a quarter of what buffering shows. */
const MAX_SLOPE = 0.25;

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

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

/** Samples RSS each time another SAMPLE_EVERY bytes went through; checks the trend at the end. */
class Trend {
  private next = SAMPLE_EVERY;
  readonly points: Array<[number, number]> = [];
  private readonly pid: number;
  constructor(pid: number) {
    this.pid = pid;
  }
  at(bytes: number): void {
    if (bytes < this.next) return;
    this.next += SAMPLE_EVERY;
    if (bytes >= SIZE * WARM_UP) this.points.push([bytes, rss(this.pid)]);
  }
  check(what: string): void {
    assert.ok(this.points.length >= 20, `${what}: ${this.points.length} RSS samples`);
    const mib = (n: number): string => (n / 1048576).toFixed(0);
    const ys = this.points.map(([, y]) => y);
    const s = slope(this.points);
    assert.ok(s < MAX_SLOPE, `${what}: proxy RSS grew ${s.toFixed(3)} bytes per byte delivered after warm-up (RSS ${mib(Math.min(...ys))}–${mib(Math.max(...ys))} MiB; bound ${MAX_SLOPE})`);
  }
}

function* chunks(total: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK.length) yield CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
}

test('200 MB upload and download stream through: proxy memory does not grow with the bytes passed', async () => {
  let uploaded = 0;
  let upTrend: Trend | undefined;
  origin = http.createServer((req, res) => {
    if (req.method === 'POST') {
      req.on('data', (c: Buffer) => {
        uploaded += c.length;
        upTrend?.at(uploaded);
      });
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
  const agent = new Agent();
  const downTrend = new Trend(child.pid!);
  upTrend = new Trend(child.pid!);
  try {
    // download
    const res = await request(`http://127.0.0.1:${port}/big`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    let got = 0;
    for await (const c of res.body) {
      got += (c as Buffer).length;
      downTrend.at(got);
    }
    assert.equal(got, SIZE);
    // upload (chunked, no Content-Length)
    const up = await request(`http://127.0.0.1:${port}/up`, { method: 'POST', body: Readable.from(chunks(SIZE)), dispatcher: agent });
    assert.equal(up.statusCode, 200);
    assert.equal(Number(await up.body.text()), SIZE);
  } finally {
    await agent.close();
  }
  downTrend.check('download');
  upTrend.check('upload');
});

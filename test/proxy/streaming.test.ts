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

// 300 MB each way through a Weir child process whose RSS is sampled as the bytes flow:
// streaming means the proxy's memory does not grow with the bytes passed. An absolute RSS
// ceiling flakes on a shared machine (V8's young generation and socket buffers vary with
// load), so the test asserts the trend: RSS reaches a plateau. The peak over the last third
// of the body may not exceed the peak over the middle third by more than a sixth of the body;
// a proxy that kept the body would add a third of it between the two.
const SIZE = 300 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'w');
/** Bytes delivered between two RSS samples. */
const SAMPLE_EVERY = 2 * 1024 * 1024;
/** Largest rise of the RSS peak from the middle to the last third of the body. */
const MAX_RISE = SIZE / 6;

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

/** Samples RSS each time another SAMPLE_EVERY bytes went through; checks the plateau at the end. */
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
    this.points.push([bytes, rss(this.pid)]);
  }
  check(what: string): void {
    assert.ok(this.points.length >= 90, `${what}: ${this.points.length} RSS samples`);
    const peak = (from: number, to: number): number => Math.max(...this.points.filter(([b]) => b > from * SIZE && b <= to * SIZE).map(([, r]) => r));
    const middle = peak(1 / 3, 2 / 3);
    const last = peak(2 / 3, 1);
    const mib = (n: number): string => (n / 1048576).toFixed(0);
    assert.ok(last - middle < MAX_RISE, `${what}: proxy RSS peak rose from ${mib(middle)} MiB (middle third) to ${mib(last)} MiB (last third); allowed rise ${mib(MAX_RISE)} MiB`);
  }
}

function* chunks(total: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK.length) yield CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
}

test('300 MB upload and download stream through: proxy memory does not grow with the bytes passed', async () => {
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

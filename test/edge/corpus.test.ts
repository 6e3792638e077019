/**
 * The raw-byte request corpus (test/fixtures/edge/corpus.ts) against both cleartext
 * listener kinds. A raw-socket origin records every byte that reaches it.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { CORPUS, type CorpusCase, type ForwardExpect } from '../fixtures/edge/corpus.ts';
import { startRawOrigin, type RawOrigin } from './raw-origin.ts';
import { wire } from './wire.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: RawOrigin;
const weirs: Record<string, Weir> = {};

function config(port: number, protocol: string): string {
  return `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "${protocol}"; } }
routes {
    route "all" {
        matches { path-prefix "/"; }
        upstream "origin"
    }
}
upstreams { upstream "origin" { target "127.0.0.1:${port}" } }
system { graceful-shutdown-timeout-secs 1 }
`;
}

before(async () => {
  origin = await startRawOrigin();
  for (const p of ['http', 'h2c']) weirs[p] = (await startWeirWith(config(origin.port, p))).weir;
});
after(async () => {
  for (const w of Object.values(weirs)) await w.close();
  await origin.close();
});

test('the corpus is big enough and every case is labelled', () => {
  const rejects = CORPUS.filter((c) => c.expect === 'reject').length;
  const forwards = CORPUS.filter((c) => c.expect === 'forward').length;
  assert.ok(CORPUS.length >= 60, `${CORPUS.length} cases`);
  assert.ok(rejects >= 30 && forwards >= 30, `${rejects} reject, ${forwards} forward`);
  assert.equal(new Set(CORPUS.map((c) => c.name)).size, CORPUS.length, 'names are unique');
});

function checkForward(seen: RawOrigin['requests'][number], want: ForwardExpect, label: string): void {
  assert.equal(seen.method, want.method, `${label}: method`);
  assert.equal(seen.url, want.url, `${label}: target`);
  if (want.body !== undefined) assert.equal(seen.body.toString('latin1'), want.body, `${label}: body`);
  for (const [k, v] of Object.entries(want.headers ?? {})) {
    if (v === null) assert.equal(seen.headers[k], undefined, `${label}: ${k} must not reach the origin`);
    else assert.equal(Buffer.from(String(seen.headers[k]), 'utf8').toString('latin1') === v || seen.headers[k] === v, true, `${label}: ${k} = ${JSON.stringify(seen.headers[k])}, want ${JSON.stringify(v)}`);
  }
}

async function runCase(proto: string, c: CorpusCase): Promise<void> {
  const weir = weirs[proto]!;
  const port = weir.address().port;
  const label = `[${proto}] ${c.name}`;
  const mark = origin.chunks.length;
  const before = origin.requests.length;
  if (c.expect === 'reject') {
    const r = await wire(port, c.bytes, { timeoutMs: 4000 });
    assert.equal(r.responses.length, 1, `${label}: one response, got ${JSON.stringify(r.raw.slice(0, 200))}`);
    assert.equal(r.responses[0]!.status, c.status ?? 400, `${label}: status`);
    assert.match(r.responses[0]!.head, /\r\nconnection: close/i, `${label}: says close`);
    assert.ok(r.closed, `${label}: connection closed`);
    // A sentinel request after the case: once it arrived, anything the case sent would have too.
    const sentinel = `/sentinel-${proto}-${mark}`;
    const res = await request(`${weir.url()}${sentinel}`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    const arrived = origin.requests.slice(before);
    assert.deepEqual(arrived.map((q) => q.url), [sentinel], `${label}: only the sentinel reached the origin`);
    const bytes = Buffer.concat(origin.chunks.slice(mark)).toString('latin1');
    assert.ok(!/smug/i.test(bytes), `${label}: bytes of the rejected request reached the origin: ${JSON.stringify(bytes.slice(0, 200))}`);
    return;
  }
  const r = await wire(port, c.bytes, { expect: c.requests.length, timeoutMs: 4000 });
  assert.equal(r.responses.length, c.requests.length, `${label}: responses ${JSON.stringify(r.raw.slice(0, 300))}`);
  for (const resp of r.responses) assert.equal(resp.status, 200, `${label}: status ${resp.head}`);
  const arrived = origin.requests.slice(before);
  assert.equal(arrived.length, c.requests.length, `${label}: requests at the origin`);
  c.requests.forEach((want, i) => checkForward(arrived[i]!, want, label));
}

for (const proto of ['http', 'h2c']) {
  test(`corpus over a ${proto} listener: every case behaves as labelled`, async () => {
    const failures: string[] = [];
    let rejected = 0;
    let forwarded = 0;
    for (const c of CORPUS) {
      try {
        await runCase(proto, c);
        if (c.expect === 'reject') rejected++;
        else forwarded++;
      } catch (err) {
        failures.push((err as Error).message.split('\n')[0]!);
      }
    }
    if (process.env['WEIR_CORPUS_REPORT']) console.log(`${proto}: ${rejected} rejected, ${forwarded} forwarded as labelled, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.deepEqual(origin.errors, [], 'the origin never saw a broken request');
  });
}

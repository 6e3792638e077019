/**
 * Availability under slow and pipelining clients, Weir on its default limits: slowloris,
 * slow body, slow read (slowhttptest, 300 connections each) and a pipelining client (300
 * pipelined GETs of 1 MiB that are never read) run beside a normal load of 50 requests/s
 * from another client address; ≥ 99 % of the normal requests must succeed, half of them
 * promptly, and none may wait for the attack to end (a starved client would). Latency itself
 * is measured beside nginx by `npm run bench:availability` (docs/reliability.md): a p99 bound
 * here failed on a loaded 2-core machine (1.85 s at load average 10) with every request served.
 * The origin runs in its own process. Each scenario: 3 s for the attack to establish, then
 * 8 s of normal load (400 requests). The slowhttptest scenarios skip when slowhttptest is
 * missing (CI installs it).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWeirWith } from '../helpers/weir.ts';
import { ATTACKS, slowhttptestAvailable, startOriginProcess, underAttack } from '../helpers/attacks.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const haveSlowhttptest = slowhttptestAvailable();

let started: Promise<{ port: number }> | undefined;
function weir(): Promise<{ port: number }> {
  started ??= (async () => {
    const origin = await startOriginProcess();
    const { weir } = await startWeirWith(`schema-version "1.0"
listeners { listener "h1" { address "127.0.0.1:0"; protocol "http"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "origin"; } }
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}" } }
system { graceful-shutdown-timeout-secs 1 }
`);
    cleanups.push(() => origin.stop(), () => weir.close());
    return { port: weir.address('h1').port };
  })();
  return started;
}

for (const kind of ATTACKS) {
  const needsTool = kind !== 'pipelining';
  test(`${kind} beside normal traffic: ≥ 99 % of normal requests succeed, p50 < 250 ms, none starved`, { skip: needsTool && !haveSlowhttptest ? 'slowhttptest is not installed (apt-get install slowhttptest)' : false }, async (t) => {
    const { port } = await weir();
    const r = await underAttack(kind, { host: '127.0.0.1', port }, { size: 300, seconds: 15, bigPath: '/big', smallPath: '/small', rampMs: 3000, normalMs: 8000, rate: 50, normalPath: '/normal' });
    t.diagnostic(JSON.stringify(r));
    assert.ok(r.sent >= 300, `${r.sent} normal requests sent`);
    assert.ok(r.ok >= r.sent * 0.99, `${r.ok} of ${r.sent} normal requests succeeded`);
    assert.ok(r.p50 < 250, `p50 ${r.p50} ms`);
    // The attack runs 15 s: a request that waited for it to end would take longer than this.
    assert.ok(r.p99 < 5000, `p99 ${r.p99} ms: normal requests waited for the attack`);
  });
}

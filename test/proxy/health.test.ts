// Health over real sockets (docs/health.md): circuit breakers per upstream and per route,
// connection-pool max-requests / max-pending-requests, outlier detection (consecutive 5xx,
// gateway errors, success rate, growing ejections, max-ejection-percent, panic mode) and the
// active checks' method, host, body-match, jitter and slow start. Origins fail on command.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startWeirWith } from '../helpers/weir.ts';
import { startAdmin, eventually } from '../admin/helpers.ts';
import { bad } from '../config/helpers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An origin on port 0 whose behaviour a test switches: `status` to answer, `holdMs` to wait first. */
interface Controlled {
  port: number;
  address: string;
  status: number;
  holdMs: number;
  hits: number;
  /** Requests to `/hc` (health checks), with method, host and time. */
  checks: Array<{ method: string; host: string | undefined; at: number }>;
  /** Body of `/hc` answers. */
  checkBody: string;
  checkStatus: number;
}

async function controlled(): Promise<Controlled> {
  const c: Controlled = { port: 0, address: '', status: 200, holdMs: 0, hits: 0, checks: [], checkBody: 'status: ok', checkStatus: 200 };
  const server = http.createServer((req, res) => {
    if (req.url === '/hc') {
      c.checks.push({ method: req.method!, host: req.headers.host, at: Date.now() });
      return void res.writeHead(c.checkStatus).end(req.method === 'HEAD' ? undefined : c.checkBody);
    }
    c.hits++;
    const answer = (): void => void res.writeHead(c.status).end(String(c.port));
    if (c.holdMs > 0) setTimeout(answer, c.holdMs);
    else answer();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  c.port = (server.address() as AddressInfo).port;
  c.address = `127.0.0.1:${c.port}`;
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return c;
}

const LISTENER = 'listeners { listener "main" { address "127.0.0.1:0"; } }\nsystem { graceful-shutdown-timeout-secs 1 }\n';

async function get(url: string): Promise<{ status: number; code: string | undefined; body: string }> {
  const res = await request(url);
  const body = await res.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.statusCode, code, body };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('upstream circuit-breaker: failure-threshold opens it, timeout-seconds later half-open-max-requests probes go through, success-threshold closes it', async () => {
  const o = await controlled();
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "m" { matches { path "/metrics"; }; builtin-handler "metrics"; }; route "r" { upstream "o"; } }
upstreams { upstream "o" { target "${o.address}"; circuit-breaker { failure-threshold 3; success-threshold 2; timeout-seconds 0.4; half-open-max-requests 1; } } }
`);
  cleanups.push(() => weir.close());
  const circuit = async (): Promise<string | undefined> => (await weir.state()).upstreams[0]!.circuit;
  const gauge = async (): Promise<string | undefined> => /weir_upstream_circuit_state\{upstream="o"\} (\d)/.exec((await get(`${url}/metrics`)).body)?.[1];
  assert.equal(await gauge(), '0');
  assert.equal(await circuit(), 'closed');
  o.status = 500;
  for (let i = 0; i < 2; i++) assert.equal((await get(`${url}/x`)).status, 500);
  assert.equal(await circuit(), 'closed', 'two failures are under failure-threshold 3');
  o.status = 200;
  assert.equal((await get(`${url}/x`)).status, 200, 'a success resets the count');
  o.status = 500;
  for (let i = 0; i < 3; i++) assert.equal((await get(`${url}/x`)).status, 500);
  assert.equal(await circuit(), 'open');
  assert.equal(await gauge(), '2', 'weir_upstream_circuit_state 2 = open');
  const hits = o.hits;
  const refused = await get(`${url}/x`);
  assert.deepEqual([refused.status, refused.code], [503, 'WEIR_ERR_CIRCUIT_OPEN']);
  assert.equal(o.hits, hits, 'an open breaker fails fast without reaching the target');
  // Half-open: one probe at a time; a failed probe opens it again.
  await eventually(async () => (await circuit()) === 'half-open', 'half-open after timeout-seconds');
  assert.equal(await gauge(), '1', 'weir_upstream_circuit_state 1 = half-open');
  assert.equal((await get(`${url}/x`)).status, 500, 'the probe reaches the target');
  assert.equal(await circuit(), 'open', 'a failed probe opens it again');
  await eventually(async () => (await circuit()) === 'half-open', 'half-open again');
  o.status = 200;
  o.holdMs = 300;
  const [a, b] = await Promise.all([get(`${url}/x`), sleep(50).then(() => get(`${url}/x`))]);
  assert.equal(a.status, 200, 'the first probe goes through');
  assert.deepEqual([b.status, b.code], [503, 'WEIR_ERR_CIRCUIT_OPEN'], 'half-open-max-requests 1: a second attempt while the probe is in flight is refused');
  assert.equal(await circuit(), 'half-open', 'one success is under success-threshold 2');
  o.holdMs = 0;
  assert.equal((await get(`${url}/x`)).status, 200);
  assert.equal(await circuit(), 'closed', 'success-threshold successes close it');
  assert.equal((await get(`${url}/x`)).status, 200);
});

test('route circuit-breaker: the breaker of one route opens while another route to the same upstream keeps going, and closes after its probes succeed', async () => {
  const o = await controlled();
  const { url, weir } = await startWeirWith(`${LISTENER}routes {
    route "fragile" { matches { path-prefix "/fragile"; }; upstream "o"; circuit-breaker { failure-threshold 2; success-threshold 2; timeout-seconds 0.5; half-open-max-requests 1; } }
    route "other" { upstream "o"; }
}
upstreams { upstream "o" { target "${o.address}"; } }
`);
  cleanups.push(() => weir.close());
  o.status = 503;
  for (let i = 0; i < 2; i++) assert.equal((await get(`${url}/fragile`)).status, 503);
  const hits = o.hits;
  const r = await get(`${url}/fragile`);
  assert.deepEqual([r.status, r.code], [503, 'WEIR_ERR_CIRCUIT_OPEN']);
  assert.equal(o.hits, hits);
  o.status = 200;
  assert.equal((await get(`${url}/other`)).status, 200, 'the other route has no breaker and reaches the target');
  assert.equal((await get(`${url}/fragile`)).code, 'WEIR_ERR_CIRCUIT_OPEN', 'the fragile route stays open for timeout-seconds');
  await sleep(600);
  o.holdMs = 300;
  const [a, b] = await Promise.all([get(`${url}/fragile`), sleep(50).then(() => get(`${url}/fragile`))]);
  assert.deepEqual([a.status, b.code], [200, 'WEIR_ERR_CIRCUIT_OPEN'], 'half-open: one probe at a time');
  o.holdMs = 0;
  assert.equal((await get(`${url}/fragile`)).status, 200, 'the second probe');
  o.status = 500;
  assert.equal((await get(`${url}/fragile`)).status, 500, 'closed after success-threshold: requests reach the target again');
});

test('connection-pool max-requests and max-pending-requests: 503 with their codes at once', async () => {
  const o = await controlled();
  o.holdMs = 400;
  const { url, weir } = await startWeirWith(`${LISTENER}routes {
    route "many" { matches { path-prefix "/many"; }; upstream "many"; }
    route "queue" { upstream "queue"; }
}
upstreams {
    upstream "many" { target "${o.address}"; connection-pool { max-requests 2; } }
    upstream "queue" { target "${o.address}"; connection-pool { max-connections 1; max-pending-requests 1; queue-timeout 5; } }
}
`);
  cleanups.push(() => weir.close());
  const first = [get(`${url}/many`), get(`${url}/many`)];
  await eventually(() => o.hits === 2, 'two requests in flight');
  const third = await get(`${url}/many`);
  assert.deepEqual([third.status, third.code], [503, 'WEIR_ERR_UPSTREAM_MAX_REQUESTS']);
  assert.deepEqual((await Promise.all(first)).map((r) => r.status), [200, 200]);
  o.hits = 0;
  const inFlight = get(`${url}/q1`);
  await eventually(() => o.hits === 1, 'one request holds the only connection');
  const waiting = get(`${url}/q2`);
  await sleep(50);
  const over = await get(`${url}/q3`);
  assert.deepEqual([over.status, over.code], [503, 'WEIR_ERR_UPSTREAM_MAX_PENDING'], 'one waits, the next is refused');
  assert.deepEqual([(await inFlight).status, (await waiting).status], [200, 200], 'the waiting request gets the connection once it is free');
});

test('outlier-detection consecutive-5xx: ejected, longer each time, never past max-ejection-percent; visible in the admin API and metrics', async () => {
  const [a, b, c] = [await controlled(), await controlled(), await controlled()];
  const admin = await startAdmin([a.port], {
    routes: 'route "od" { matches { path-prefix "/od"; }; upstream "od"; }\nroute "m" { matches { path "/metrics"; }; builtin-handler "metrics"; }',
    upstreams: `upstream "od" {
        target "${a.address}"
        target "${b.address}"
        target "${c.address}"
        outlier-detection { consecutive-5xx 3; consecutive-gateway-errors 0; base-ejection-time 1; interval 60; max-ejection-percent 40; }
    }`,
  });
  cleanups.push(() => admin.close());
  const view = async (): Promise<{ panic: boolean; targets: Array<{ address: string; ejected: boolean; ejections: number; ejectionReason?: string }> }> => {
    const r = await admin.call('GET', '/api/v1/upstreams');
    return (r.json as { upstreams: Array<{ id: string; panic: boolean; targets: any[] }> }).upstreams.find((u) => u.id === 'od')!;
  };
  b.status = 500;
  c.status = 500;
  // Round robin: b and c each get their 3rd failure within 9 requests; only one of three may be out (40%).
  for (let i = 0; i < 9; i++) await get(`${admin.proxy}/od`);
  let v = await view();
  const out = v.targets.filter((t) => t.ejected);
  assert.equal(out.length, 1, `max-ejection-percent 40 of 3 targets: one ejected at most: ${JSON.stringify(v.targets)}`);
  assert.equal(out[0]!.ejectionReason, 'consecutive-5xx');
  assert.equal(out[0]!.ejections, 1);
  assert.equal(v.panic, false);
  const ejected = out[0]!.address === b.address ? b : c;
  const before = ejected.hits;
  for (let i = 0; i < 6; i++) await get(`${admin.proxy}/od`);
  assert.equal(ejected.hits, before, 'an ejected target gets no request');
  const metrics = (await get(`${admin.proxy}/metrics`)).body;
  assert.match(metrics, new RegExp(`weir_upstream_target_ejections_total\\{upstream="od",target="${ejected.address}"\\} 1`));
  assert.match(metrics, new RegExp(`weir_upstream_target_ejected\\{upstream="od",target="${ejected.address}"\\} 1`));
  assert.match(metrics, /weir_upstream_panic\{upstream="od"\} 0/);
  // Back after base-ejection-time; three more failures eject it for twice as long.
  await eventually(async () => !(await view()).targets.find((t) => t.address === ejected.address)!.ejected, 'the first ejection ends', 5000);
  const other = ejected === b ? c : b;
  other.status = 200;
  await eventually(async () => {
    await get(`${admin.proxy}/od`);
    return (await view()).targets.find((t) => t.address === ejected.address)!.ejections === 2;
  }, 'a second ejection');
  await sleep(1300);
  v = await view();
  assert.equal(v.targets.find((t) => t.address === ejected.address)!.ejected, true, 'the second ejection lasts 2 × base-ejection-time: still out after more than one');
});

test('outlier-detection consecutive-gateway-errors: 502, 503 and 504 in a row eject, 500s do not', async () => {
  const [a, b] = [await controlled(), await controlled()];
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "${b.address}"
    outlier-detection { consecutive-5xx 0; consecutive-gateway-errors 3; base-ejection-time 30; max-ejection-percent 50; }
} }
`);
  cleanups.push(() => weir.close());
  const ejected = async (): Promise<boolean[]> => (await weir.state()).upstreams[0]!.targets.map((t) => t.ejected);
  b.status = 500;
  for (let i = 0; i < 10; i++) await get(`${url}/x`);
  assert.deepEqual(await ejected(), [false, false], 'consecutive-5xx 0 is off, and 500 is no gateway error');
  // 502, 503, 504 in a row (consecutive-gateway-errors 3).
  let k = 0;
  Object.defineProperty(b, 'status', { get: () => [502, 503, 504][k++ % 3]!, set: () => {} });
  for (let i = 0; i < 6; i++) await get(`${url}/x`);
  assert.deepEqual(await ejected(), [false, true]);
  const hits = b.hits;
  for (let i = 0; i < 4; i++) assert.equal((await get(`${url}/x`)).status, 200);
  assert.equal(b.hits, hits);
});

test('outlier-detection: an attempt without a response (connect failure) counts as a gateway error', async () => {
  const a = await controlled();
  const gone = http.createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const goneAt = (gone.address() as AddressInfo).port;
  await new Promise((r) => gone.close(r));
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "127.0.0.1:${goneAt}"
    outlier-detection { consecutive-5xx 0; consecutive-gateway-errors 2; base-ejection-time 30; }
} }
`);
  cleanups.push(() => weir.close());
  const codes: Array<string | undefined> = [];
  for (let i = 0; i < 4; i++) codes.push((await get(`${url}/x`)).code);
  assert.deepEqual(codes.filter((c) => c !== undefined), ['WEIR_ERR_UPSTREAM_CONNECT', 'WEIR_ERR_UPSTREAM_CONNECT']);
  const t = (await weir.state()).upstreams[0]!.targets[1]!;
  assert.deepEqual([t.ejected, t.ejectionReason], [true, 'consecutive-gateway-errors'], 'ejected after 2, not the 5 connect failures of the default');
  for (let i = 0; i < 4; i++) assert.equal((await get(`${url}/x`)).status, 200);
});

test('outlier-detection success-rate: a target far below the success rate of the fleet is ejected', async () => {
  const targets = await Promise.all([0, 1, 2, 3, 4].map(() => controlled()));
  const bad = targets[4]!;
  // Fails every other request: never 2 in a row, so only the success rate can eject it.
  let n = 0;
  Object.defineProperty(bad, 'status', { get: () => (n++ % 2 === 0 ? 500 : 200), set: () => {} });
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
${targets.map((t) => `    target "${t.address}"`).join('\n')}
    outlier-detection { consecutive-5xx 2; consecutive-gateway-errors 0; success-rate { min-hosts 5; min-requests 10; stdev-factor 1; }; interval 1; base-ejection-time 60; }
} }
`);
  cleanups.push(() => weir.close());
  const state = async (): Promise<ReadonlyArray<{ ejected: boolean; ejectionReason?: string }>> => (await weir.state()).upstreams[0]!.targets;
  const ok = await eventually(async () => {
    await Promise.all(Array.from({ length: 25 }, () => get(`${url}/x`)));
    return (await state())[4]!.ejected;
  }, 'the half-failing target is ejected', 20_000);
  assert.ok(ok);
  const s = await state();
  assert.equal(s[4]!.ejectionReason, 'success-rate');
  assert.deepEqual(s.slice(0, 4).map((t) => t.ejected), [false, false, false, false]);
});

test('outlier-detection panic-threshold: with too few targets available requests go to every target', async () => {
  const [a, b] = [await controlled(), await controlled()];
  const config = (panic: number): string => `${LISTENER}routes { route "m" { matches { path "/metrics"; }; builtin-handler "metrics"; }; route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "${b.address}"
    outlier-detection { consecutive-gateway-errors 1; base-ejection-time 60; max-ejection-percent 100; panic-threshold ${panic}; }
} }
`;
  for (const panic of [0, 60]) {
    const { url, weir } = await startWeirWith(config(panic));
    cleanups.push(() => weir.close());
    a.status = b.status = 503;
    for (let i = 0; i < 4; i++) await get(`${url}/x`);
    const s = (await weir.state()).upstreams[0]!;
    assert.deepEqual(s.targets.map((t) => t.ejected), [true, true]);
    a.status = b.status = 200;
    const hits = a.hits + b.hits;
    const r = await get(`${url}/x`);
    if (panic === 0) {
      assert.equal(r.status, 503, 'panic-threshold 0: every target ejected, nothing is tried');
      assert.equal(a.hits + b.hits, hits);
    } else {
      assert.equal(s.panic, true);
      assert.match((await get(`${url}/metrics`)).body, /weir_upstream_panic\{upstream="o"\} 1/);
      assert.equal(r.status, 200, 'panic mode: ejected targets are tried');
      assert.equal(a.hits + b.hits, hits + 1);
    }
    await weir.close();
  }
});

test('outlier-detection panic-threshold: below the threshold (not only with every target out) ejected targets take requests again', async () => {
  const [a, b, c] = [await controlled(), await controlled(), await controlled()];
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "${b.address}"
    target "${c.address}"
    outlier-detection { consecutive-gateway-errors 1; base-ejection-time 60; max-ejection-percent 100; panic-threshold 80; }
} }
`);
  cleanups.push(() => weir.close());
  c.status = 503;
  for (let i = 0; i < 3; i++) await get(`${url}/x`);
  const s = (await weir.state()).upstreams[0]!;
  assert.deepEqual(s.targets.map((t) => t.ejected), [false, false, true]);
  assert.equal(s.panic, true, '2 of 3 available is under 80%');
  c.status = 200;
  const hits = c.hits;
  for (let i = 0; i < 9; i++) assert.equal((await get(`${url}/x`)).status, 200);
  assert.ok(c.hits - hits >= 2, `in panic mode the ejected target gets its share: ${c.hits - hits} of 9`);
});

test('health-check method, host and body-match decide health; interval-jitter-secs spreads the checks', async () => {
  const [a, b] = [await controlled(), await controlled()];
  b.checkBody = 'status: degraded';
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "${b.address}"
    health-check { type "http" { path "/hc"; host "health.internal"; }; method "POST"; body-match "^status: ok$"; interval-secs 0.02; interval-jitter-secs 0.4; healthy-threshold 1; unhealthy-threshold 1; }
} }
`);
  cleanups.push(() => weir.close());
  const health = async (): Promise<boolean[]> => (await weir.state()).upstreams[0]!.targets.map((t) => t.healthy);
  await eventually(async () => JSON.stringify(await health()) === '[true,false]', 'b answers a body body-match rejects');
  assert.equal(a.checks[0]!.method, 'POST');
  assert.equal(a.checks[0]!.host, 'health.internal');
  for (let i = 0; i < 4; i++) assert.equal((await get(`${url}/x`)).body, String(a.port));
  b.checkBody = 'status: ok';
  await eventually(async () => JSON.stringify(await health()) === '[true,true]', 'b matches again');
  const start = Date.now();
  const count = a.checks.length;
  await sleep(2000);
  const span = Date.now() - start;
  const checks = a.checks.length - count;
  // Without jitter 2 s of 20 ms intervals would be ~100 checks; with up to 400 ms added, ~10.
  assert.ok(checks > 0 && checks < span / 20 / 2, `${checks} checks in ${span} ms`);
  const gaps = a.checks.slice(-6).map((c, i, all) => (i === 0 ? 0 : c.at - all[i - 1]!.at)).slice(1);
  assert.ok(new Set(gaps).size > 1, `the gaps differ: ${gaps.join(' ')}`);
});

test('slow-start-secs: a target whose health check passes again gets a growing share of its weight', async () => {
  const [a, b] = [await controlled(), await controlled()];
  b.checkStatus = 500;
  const { url, weir } = await startWeirWith(`${LISTENER}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" {
    target "${a.address}"
    target "${b.address}"
    slow-start-secs 3
    health-check { type "http"; path "/hc"; interval-secs 0.05; healthy-threshold 1; unhealthy-threshold 1; }
} }
`);
  cleanups.push(() => weir.close());
  const health = async (): Promise<boolean[]> => (await weir.state()).upstreams[0]!.targets.map((t) => t.healthy);
  await eventually(async () => JSON.stringify(await health()) === '[true,false]', 'b unhealthy');
  b.checkStatus = 200;
  await eventually(async () => JSON.stringify(await health()) === '[true,true]', 'b back');
  const share = async (): Promise<number> => {
    const before = b.hits;
    for (let i = 0; i < 40; i++) await get(`${url}/x`);
    return b.hits - before;
  };
  const early = await share();
  await sleep(3200);
  const late = await share();
  assert.ok(early < late, `b's share grows: ${early} of 40 right after it came back, ${late} of 40 after slow-start-secs`);
  assert.ok(late >= 15, `after slow-start-secs b has its whole weight: ${late} of 40`);
});

test('health keys without an effect are refused: a route breaker without an upstream, slow-start-secs with nothing that takes targets out, max-pending-requests on h2', async () => {
  const cases: Array<[string, RegExp]> = [
    ['routes { route "r" { builtin-handler "health"; circuit-breaker { failure-threshold 2; } } }', /circuit-breaker.*no `upstream`/],
    ['routes { route "r" { upstream "o"; } }\nupstreams { upstream "o" { target "127.0.0.1:1"; slow-start-secs 5; } }', /slow-start-secs/],
    ['routes { route "r" { upstream "o"; } }\nupstreams { upstream "o" { target "127.0.0.1:1"; protocol "h2"; connection-pool { max-pending-requests 5; } } }', /max-pending-requests/],
  ];
  for (const [text, message] of cases) {
    const diags = await bad(`${LISTENER}${text}`);
    assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_CONSTRAINT' && message.test(d.message)), JSON.stringify(diags));
  }
});

// The first-party ip-filter (plugins/ip-filter) through the real proxy: allow and deny lists on
// the client address Weir computes — the socket peer over IPv4 and over an IPv6 listener on
// ::1, and the X-Forwarded-For client behind trusted-proxies (never a header from an
// untrusted peer); its cases.json; config errors from `weir validate` at file:line:column.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { firstPartyPluginPath } from '../../host/src/assets.ts';
import { runPluginTests } from '../../plugin-abi/src/harness/cases.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
const CASES = new URL('../../plugins/ip-filter/cases.json', import.meta.url).pathname;

let origin: Origin;
const weirs: Weir[] = [];

before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin((_req, res) => res.writeHead(200).end('ok'));
});

after(async () => {
  for (const w of weirs) await w.close();
  await origin.close();
});

const config = (): string => `
filters {
    filter "loopback" { type "ip-filter"; allow "127.0.0.0/8" "::1"; }
    filter "loopback-but-me" { type "ip-filter"; allow "127.0.0.0/8"; deny "127.0.0.1/32" "::1/128"; }
    filter "private" { type "ip-filter"; allow "10.0.0.0/8" "192.168.0.0/16" "2001:db8::/32"; deny "10.1.2.3/32" "2001:db8:bad::/48"; }
    filter "deny-only" { type "ip-filter"; deny "10.0.0.0/8" "fd00::/8"; }
}
routes {
    route "loopback" { matches { path "/loopback"; }; upstream "o"; filters "loopback"; }
    route "but-me" { matches { path "/but-me"; }; upstream "o"; filters "loopback-but-me"; }
    route "private" { matches { path "/private"; }; upstream "o"; filters "private"; }
    route "deny-only" { matches { path "/deny-only"; }; upstream "o"; filters "deny-only"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`;

async function weirOn(address: string, listener = ''): Promise<string> {
  const { weir, url } = await startWeirWith(`listeners { listener "m" { address "${address}"; ${listener} } }\n${config()}`);
  weirs.push(weir);
  return url;
}

async function call(url: string, headers: Record<string, string> = {}) {
  const before = origin.seen.length;
  const res = await request(url, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, upstreamCalls: origin.seen.length - before };
}

function denied(r: Awaited<ReturnType<typeof call>>, why: string): void {
  assert.equal(r.status, 403, why);
  assert.equal(r.upstreamCalls, 0, `${why}: the upstream saw nothing`);
  assert.equal(r.headers['content-type'], 'application/json', why);
  assert.equal(JSON.parse(r.text).error.code, 'WEIR_ERR_IP_DENIED', why);
}

test('ip-filter: allow and deny on the socket address (IPv4); deny wins over allow; no allow list = all but denied', async () => {
  const url = await weirOn('127.0.0.1:0');
  const ok = await call(`${url}/loopback`);
  assert.equal(ok.status, 200);
  assert.equal(ok.upstreamCalls, 1);
  denied(await call(`${url}/but-me`), '127.0.0.1 is in 127.0.0.0/8 but denied');
  denied(await call(`${url}/private`), '127.0.0.1 is in no allow range');
  assert.equal((await call(`${url}/deny-only`)).status, 200, 'not in the deny list');
  // From an untrusted peer X-Forwarded-For is not the client: it cannot buy its way in.
  denied(await call(`${url}/private`, { 'x-forwarded-for': '10.2.3.4' }), 'a spoofed X-Forwarded-For is ignored');
});

// Known before the tests are declared (a top-level await would let the root's after hook run early).
const hasIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));

test('ip-filter: IPv6 allow and deny through a real listener on ::1', { skip: hasIpv6Loopback ? false : 'no IPv6 loopback on this machine' }, async () => {
  const url = await weirOn('[::1]:0');
  assert.match(url, /^http:\/\/\[::1\]:/);
  assert.equal((await call(`${url}/loopback`)).status, 200, '::1 is listed');
  denied(await call(`${url}/but-me`), '::1/128 denied');
  denied(await call(`${url}/private`), '::1 is in no allow range');
  assert.equal((await call(`${url}/deny-only`)).status, 200, '::1 is not in fd00::/8');
});

test('ip-filter: behind trusted-proxies the X-Forwarded-For client is filtered (IPv4 and IPv6), not the proxy', async () => {
  const url = await weirOn('127.0.0.1:0', 'trusted-proxies "127.0.0.1/32" "10.9.0.0/16";');
  const p = `${url}/private`;
  const r = await call(p, { 'x-forwarded-for': '10.2.3.4' });
  assert.equal(r.status, 200);
  assert.equal(r.upstreamCalls, 1);
  assert.equal((await call(p, { 'x-forwarded-for': '192.168.1.1, 10.9.0.1' })).status, 200, 'the trusted hop is skipped');
  assert.equal((await call(p, { 'x-forwarded-for': '2001:db8::7' })).status, 200, 'IPv6 client in 2001:db8::/32');
  denied(await call(p, { 'x-forwarded-for': '10.1.2.3' }), 'denied /32 inside the allow range');
  denied(await call(p, { 'x-forwarded-for': '2001:db8:bad::7' }), 'IPv6 deny through X-Forwarded-For');
  denied(await call(p, { forwarded: 'for="[2001:db8:bad::8]:4711"' }), 'IPv6 deny through Forwarded');
  denied(await call(p, { 'x-forwarded-for': '10.2.3.4, 203.0.113.9' }), 'the right-most untrusted hop is the client, not the left-most');
  denied(await call(`${url}/deny-only`, { 'x-forwarded-for': 'fd12::1' }), 'deny-only list, IPv6');
  assert.equal((await call(`${url}/deny-only`, { 'x-forwarded-for': '203.0.113.9' })).status, 200);
});

test('ip-filter: plugins/ip-filter/cases.json passes under weir plugin test', async () => {
  const out: string[] = [];
  const failed = await runPluginTests(firstPartyPluginPath('ip-filter'), CASES, (s) => out.push(s));
  assert.equal(failed, 0, out.join(''));
  assert.ok(out.filter((l) => l.startsWith('ok ')).length >= 14, out.join(''));
});

test('ip-filter: weir validate reports a bad CIDR at file:line:column', () => {
  const f = join(tmpDir(), 'weir.kdl');
  writeFileSync(f, `listeners { listener "m" { address "127.0.0.1:0"; } }
upstreams { upstream "o" { target "127.0.0.1:1"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "a" "b" "c"; } }
filters {
    filter "a" {
        type "ip-filter"
        allow "10.0.0.0/8" "10.1.2.3/8"
    }
    filter "b" { type "ip-filter"; deny "2001:db8::/129"; }
    filter "c" { type "ip-filter"; }
}
`);
  const v = spawnSync(process.execPath, [WEIR, 'validate', f], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(v.status, 1, v.stderr);
  assert.match(v.stderr, /weir\.kdl:7:9: error WEIR_ERR_PLUGIN_CONFIG: .*"10\.1\.2\.3\/8" has host bits set beyond its \/8 prefix; the network is 10\.0\.0\.0\/8/);
  assert.match(v.stderr, /weir\.kdl:9:36: error WEIR_ERR_PLUGIN_CONFIG: .*"2001:db8::\/129" has an invalid prefix length \(0 to 128\)/);
  assert.match(v.stderr, /weir\.kdl:10:5: error WEIR_ERR_PLUGIN_CONFIG: .*config-schema: missing `allow`/);
});

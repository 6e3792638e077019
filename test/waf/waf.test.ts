// The WAF (plugins/waf, an AssemblyScript component on the public ABI) through the real
// proxy: blocking and detect mode, every inspected part, exclusions, the top-level block,
// body decompression within its caps, and the audit entries of matches.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { eventually } from '../admin/helpers.ts';
import type { Weir } from '../../host/src/weir.ts';
import { runPluginTests } from '../../plugin-abi/src/harness/cases.ts';

let origin: Origin;
const weirs: Weir[] = [];

before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin((_req, res, body) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${body.length}`));
});

after(async () => {
  for (const w of weirs) await w.close();
  await origin.close();
});

/** Weir with `blocks` and an audit log file; returns its URL and a reader of the audit lines. */
async function weirOn(blocks: string): Promise<{ url: string; weir: Weir; audit: () => Array<Record<string, unknown>> }> {
  const file = join(tmpDir('weir-waf-'), 'audit.log');
  // One node per line: reads as KDL v1 too (the Sentinel seed below is v1).
  const { weir, url } = await startWeirWith(`listeners {
    listener "m" {
        address "127.0.0.1:0"
    }
}
upstreams {
    upstream "o" {
        target "127.0.0.1:${origin.port}"
    }
}
observability {
    logging {
        audit-log "${file}"
    }
}
${blocks}`);
  weirs.push(weir);
  const audit = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);
  return { url, weir, audit };
}

interface Sent {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

async function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Sent> {
  const res = await request(url, { method: (opts.method ?? (opts.body === undefined ? 'GET' : 'POST')) as 'GET', headers: opts.headers, body: opts.body });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const q = (s: string) => encodeURIComponent(s);

function assertBlocked(r: Sent, what: string): void {
  assert.equal(r.status, 403, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, 'WEIR_ERR_WAF_BLOCKED', what);
}

test('waf block mode: SQLi in a JSON body, XSS in a query, and each inspected part are refused with 403 WEIR_ERR_WAF_BLOCKED; benign requests pass', async () => {
  const { url } = await weirOn(`
filters { filter "w" { type "waf"; mode "block"; paranoia-level 1; anomaly-threshold 5; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "w"; } }`);
  const before = origin.seen.length;
  assertBlocked(await send(`${url}/api/users`, json({ user: { name: "x' or 1=1--" } })), 'SQLi in a JSON string value');
  assertBlocked(await send(`${url}/api/users`, json({ "1 union select password from users--": 1 })), 'SQLi in a JSON key');
  assertBlocked(await send(`${url}/search?q=${q('<script>alert(1)</script>')}`), 'XSS in a query');
  assertBlocked(await send(`${url}/search?q=%253Cscript%253Ealert(1)%253C%252Fscript%253E`), 'double-encoded XSS in a query');
  assertBlocked(await send(`${url}/search?${q("' or '1'='1")}=x`), 'SQLi in a query parameter name');
  assertBlocked(await send(`${url}/view?file=${q('../../../../etc/passwd')}`), 'traversal');
  assertBlocked(await send(`${url}/view?page=${q('http://198.51.100.7/shell.txt?')}`), 'RFI');
  assertBlocked(await send(`${url}/ping?host=${q('127.0.0.1; cat /etc/passwd')}`), 'command injection');
  assertBlocked(await send(`${url}/`, { headers: { 'user-agent': 'sqlmap/1.7.2#stable (https://sqlmap.org)' } }), 'scanner user agent');
  assertBlocked(await send(`${url}/`, { headers: { cookie: `session=abc; pref=${q("1' union select null,version()--")}` } }), 'SQLi in a cookie');
  assertBlocked(await send(`${url}/`, { headers: { referer: `https://example.com/?q=${q('"><svg onload=alert(1)>')}` } }), 'XSS in the referer');
  assertBlocked(await send(`${url}/form`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=ann&comment=${q('<img src=x onerror=alert(1)>')}` }), 'XSS in a form field');
  const boundary = '----weirtest42';
  const multipart = [`--${boundary}`, 'Content-Disposition: form-data; name="title"', '', 'hello', `--${boundary}`, 'Content-Disposition: form-data; name="bio"', '', '<iframe src="javascript:alert(1)">', `--${boundary}--`, ''].join('\r\n');
  assertBlocked(await send(`${url}/upload`, { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart }), 'XSS in a multipart field');
  assertBlocked(await send(`${url}/api`, { headers: { 'content-type': 'application/json' }, body: '{"a": "unterminated' }), 'a JSON body that does not parse');
  assert.equal(origin.seen.length, before, 'no blocked request reached the upstream');

  const benign = [
    await send(`${url}/api/users`, json({ name: "Siobhán O'Brien", bio: 'I <3 Rust & Go; a < b', price: '$19.99' })),
    await send(`${url}/search?q=${q("men's shoes < $100")}`),
    await send(`${url}/form`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=D%27Angelo&company=AT%26T' }),
    await send(`${url}/upload`, { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart.replace('<iframe src="javascript:alert(1)">', "Rock 'n' roll") }),
  ];
  assert.deepEqual(benign.map((r) => r.status), [200, 200, 200, 200], benign.map((r) => r.text).join(' / '));
  assert.equal(origin.seen.at(-4)!.body.toString(), JSON.stringify({ name: "Siobhán O'Brien", bio: 'I <3 Rust & Go; a < b', price: '$19.99' }), 'the inspected body goes upstream unchanged');
});

test('waf detect mode passes matching requests and writes one audit entry per match (rule, parameter, data truncated); block mode audits too', async () => {
  const { url, audit } = await weirOn(`
filters {
    filter "watch" { type "waf"; mode "detect"; }
    filter "guard" { type "waf"; }
}
routes {
    route "detect" { matches { path-prefix "/d/"; }; upstream "o"; filters "watch"; }
    route "block" { matches { path-prefix "/b/"; }; upstream "o"; filters "guard"; }
}`);
  const long = `x' or 1=1-- ${'a'.repeat(200)}`;
  const passed = await send(`${url}/d/api`, json({ name: long, q: '<script>alert(1)</script>' }));
  assert.equal(passed.status, 200, passed.text);
  assert.equal(origin.seen.at(-1)!.url, '/d/api');
  assertBlocked(await send(`${url}/b/search?q=${q('1 union select 1,2,3--')}`), 'block mode');
  const lines = await eventually(() => {
    const l = audit().filter((x) => x['event'] === 'plugin');
    return l.length >= 3 && audit().some((x) => x['event'] === 'denial') ? l : undefined;
  }, 'audit entries of the matches');
  const detected = lines.filter((x) => x['route'] === 'detect');
  const sqli = detected.find((x) => x['rule'] === 7001)!;
  assert.ok(sqli, JSON.stringify(lines));
  assert.equal(sqli['parameter'], 'body:name');
  assert.equal(sqli['class'], 'sqli');
  assert.equal(sqli['message'], 'SQL injection token shape');
  assert.equal(sqli['outcome'], 'detected');
  assert.equal(sqli['mode'], 'detect');
  assert.equal(sqli['filter'], 'watch');
  assert.ok((sqli['data'] as string).startsWith("x' or 1=1--") && (sqli['data'] as string).length <= 65, `truncated: ${String(sqli['data'])}`);
  assert.equal(sqli['path'], '/d/api');
  assert.match(String(sqli['requestId']), /\S/);
  assert.ok(detected.some((x) => x['rule'] === 6001 && x['parameter'] === 'body:q'), 'the XSS match has its own entry');
  const blocked = lines.find((x) => x['route'] === 'block')!;
  assert.deepEqual([blocked['rule'], blocked['parameter'], blocked['outcome']], [7001, 'query:q', 'blocked']);
  const denial = audit().find((x) => x['event'] === 'denial')!;
  assert.deepEqual([denial['route'], denial['status']], ['block', 403]);
});

test('waf exclusions: by rule and parameter on one route, by class, and a whole route', async () => {
  const { url } = await weirOn(`
filters {
    filter "w" {
        type "waf"
        exclude rule=7001 route="search" parameter="query:q"
        exclude rule="xss" parameter="body:html*"
        exclude route="legacy"
    }
}
routes {
    route "search" { matches { path-prefix "/search"; }; upstream "o"; filters "w"; }
    route "api" { matches { path-prefix "/api"; }; upstream "o"; filters "w"; }
    route "legacy" { matches { path-prefix "/legacy"; }; upstream "o"; filters "w"; }
}`);
  const sqli = q("' or '1'='1");
  assert.equal((await send(`${url}/search?q=${sqli}`)).status, 200, 'rule 7001 is off for query:q on route search');
  assertBlocked(await send(`${url}/search?term=${sqli}`), 'another parameter of that route');
  assertBlocked(await send(`${url}/api?q=${sqli}`), 'the same parameter on another route');
  assert.equal((await send(`${url}/api`, json({ html_body: '<script>alert(1)</script>', htmlTitle: '<b onclick=alert(1)>' }))).status, 200, 'class xss off for body:html*');
  assertBlocked(await send(`${url}/api`, json({ html_body: "' or 1=1--" })), 'other classes still apply there');
  assertBlocked(await send(`${url}/api`, json({ text: '<script>alert(1)</script>' })), 'and other parameters');
  assert.equal((await send(`${url}/legacy?q=${sqli}`)).status, 200, 'route legacy has no WAF');
});

test('waf top-level block: every route gets it ahead of its filters; a route exclusion takes it off; enabled #false turns it off', async () => {
  const { url } = await weirOn(`
waf {
    mode "block"
    paranoia-level 2
    anomaly-threshold 5
    exclude route="open"
    exclude rule=6001 parameter="query:html"
}
routes {
    route "a" { matches { path-prefix "/a"; }; upstream "o"; }
    route "b" { matches { path-prefix "/b"; }; upstream "o"; }
    route "open" { matches { path-prefix "/open"; }; upstream "o"; }
}`);
  const xss = q('<script>alert(1)</script>');
  assertBlocked(await send(`${url}/a?q=${xss}`), 'route a');
  assertBlocked(await send(`${url}/b?q=${xss}`), 'route b');
  // Paranoia 2: `drop table x` alone is a statement (PL1 lets it pass, see the next test).
  assertBlocked(await send(`${url}/a?q=${q('drop table accounts')}`), 'paranoia level 2 rule');
  assert.equal((await send(`${url}/open?q=${xss}`)).status, 200);
  assert.equal((await send(`${url}/a?html=${xss}`)).status, 200, 'rule 6001 excluded for query:html');
  assertBlocked(await send(`${url}/a?html=${q('<img src=x onerror=alert(1)>')}`), 'other XSS rules still apply to it');
  assert.equal((await send(`${url}/a?q=${q("O'Brien")}`)).status, 200);

  const off = await weirOn(`
waf { enabled #false; }
routes { route "a" { matches { path-prefix "/"; }; upstream "o"; } }`);
  assert.equal((await send(`${off.url}/a?q=${xss}`)).status, 200);
});

test('waf paranoia-level and anomaly-threshold gate and score rules', async () => {
  const { url } = await weirOn(`
filters {
    filter "pl1" { type "waf"; paranoia-level 1; }
    filter "pl2" { type "waf"; paranoia-level 2; }
    filter "lenient" { type "waf"; anomaly-threshold 10; }
    filter "strict" { type "waf"; anomaly-threshold 3; }
}
routes {
    route "pl1" { matches { path-prefix "/pl1"; }; upstream "o"; filters "pl1"; }
    route "pl2" { matches { path-prefix "/pl2"; }; upstream "o"; filters "pl2"; }
    route "lenient" { matches { path-prefix "/lenient"; }; upstream "o"; filters "lenient"; }
    route "strict" { matches { path-prefix "/strict"; }; upstream "o"; filters "strict"; }
}`);
  const statement = q('drop table accounts');
  assert.equal((await send(`${url}/pl1?q=${statement}`)).status, 200, 'rule 7010 runs from paranoia level 2');
  assertBlocked(await send(`${url}/pl2?q=${statement}`), 'paranoia level 2');
  // One critical match scores 5: under a threshold of 10; two of them reach it.
  assert.equal((await send(`${url}/lenient?q=${q("' or 1=1--")}`)).status, 200);
  assertBlocked(await send(`${url}/lenient?q=${q("' or 1=1--")}&r=${q('<script>alert(1)</script>')}`), 'two critical matches');
  // A warning (3) reaches a threshold of 3: invalid percent-encoding in the query (rule 1003).
  assertBlocked(await send(`${url}/strict?q=50%zz`), 'rule 1003 at threshold 3');
  // Nothing of one request's inspection is left for the next: a body's `%` is not the next path's.
  assert.equal((await send(`${url}/strict/a`, json({ text: '50% off today' }))).status, 200);
  assert.equal((await send(`${url}/strict/b`)).status, 200);
});

test('waf body inspection: gzip bodies are decompressed and inspected; a zip bomb is refused with 413 before it is inflated; size, ratio, content types and inspect-request-body', async () => {
  const { url } = await weirOn(`
filters {
    filter "w" { type "waf"; body-inspection { max-body-inspection-bytes "64KiB"; max-decompression-ratio 50; }; }
    filter "json-only" { type "waf"; body-inspection { content-types "application/json"; }; }
    filter "no-body" { type "waf"; body-inspection { inspect-request-body #false; }; }
    filter "raw" { type "waf"; body-inspection { decompress #false; }; }
}
routes {
    route "w" { matches { path-prefix "/w"; }; upstream "o"; filters "w"; }
    route "json-only" { matches { path-prefix "/json-only"; }; upstream "o"; filters "json-only"; }
    route "no-body" { matches { path-prefix "/no-body"; }; upstream "o"; filters "no-body"; }
    route "raw" { matches { path-prefix "/raw"; }; upstream "o"; filters "raw"; }
}`);
  const gz = (s: string | Buffer) => ({ 'content-type': 'application/json', 'content-encoding': 'gzip', body: gzipSync(s) });
  const attack = JSON.stringify({ name: "x' union select password from users--" });
  const a = gz(attack);
  assertBlocked(await send(`${url}/w`, { headers: { 'content-type': a['content-type'], 'content-encoding': a['content-encoding'] }, body: a.body }), 'SQLi in a gzip JSON body');
  const benign = JSON.stringify({ name: "O'Brien", note: 'fine' });
  const b = gz(benign);
  const ok = await send(`${url}/w`, { headers: { 'content-type': b['content-type'], 'content-encoding': 'gzip' }, body: b.body });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(origin.seen.at(-1)!.body.toString(), benign, 'the decoded body goes upstream');
  assert.equal(origin.seen.at(-1)!.headers['content-encoding'], undefined);

  // 50 MB of zeros gzip to ~48 KB: refused at the inspection cap, not inflated.
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
  assert.ok(bomb.length < 64 * 1024, `bomb is ${bomb.length} bytes`);
  const seen = origin.seen.length;
  const r = await send(`${url}/w`, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb });
  assert.equal(r.status, 413, r.text);
  assert.match(r.text, /WEIR_ERR_DECOMPRESSION_LIMIT/);
  assert.equal(origin.seen.length, seen, 'the upstream never saw it');
  // Ratio: 20 KB of text that gzips 100× is over max-decompression-ratio 50.
  const r2 = await send(`${url}/w`, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify({ a: 'a'.repeat(20_000) })) });
  assert.equal(r2.status, 413, r2.text);
  // An encoding Weir does not decode is not passed on uninspected either.
  const unknown = await send(`${url}/w`, { headers: { 'content-type': 'application/json', 'content-encoding': 'compress' }, body: 'x' });
  assert.equal(unknown.status, 415);
  assert.match(unknown.text, /WEIR_ERR_BODY_ENCODING/);
  // Larger than max-body-inspection-bytes without encoding: refused, never passed uninspected.
  const big = await send(`${url}/w`, json({ a: 'b'.repeat(70 * 1024) }));
  assert.equal(big.status, 413);
  assert.match(big.text, /WEIR_ERR_BODY_TOO_LARGE/);

  const form = { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `x=${q("' or 1=1--")}` };
  assert.equal((await send(`${url}/json-only`, form)).status, 200, 'form bodies are not inspected by a json-only WAF');
  assertBlocked(await send(`${url}/json-only`, json({ x: "' or 1=1--" })), 'json still is');
  assert.equal((await send(`${url}/no-body`, json({ x: "' or 1=1--" }))).status, 200, 'inspect-request-body #false');
  assertBlocked(await send(`${url}/no-body?x=${q("' or 1=1--")}`), 'the query still is');
  // decompress #false: the encoded body is not inspected, which scores 3 (rule 1006), under the threshold.
  const raw = await send(`${url}/raw`, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: a.body });
  assert.equal(raw.status, 200, raw.text);
  assert.equal(origin.seen.at(-1)!.headers['content-encoding'], 'gzip', 'passed as sent');
});

test('the Sentinel seed waf block works as written: JSON and form bodies inspected (gzip decoded within the ratio), others not, bodies over max-body-inspection-bytes refused', async () => {
  const seed = readFileSync(new URL('../fixtures/config/seeds/sentinel-roadmap-03-waf.kdl', import.meta.url), 'utf8');
  const { url } = await weirOn(`${seed}
routes {
    route "r" {
        matches {
            path-prefix "/"
        }
        upstream "o"
    }
}`);
  const attack = JSON.stringify({ q: "1; drop table users--" });
  assertBlocked(await send(`${url}/api`, json(JSON.parse(attack))), 'JSON');
  assertBlocked(await send(`${url}/api`, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(attack) }), 'gzip JSON');
  assertBlocked(await send(`${url}/form`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `q=${q('1; drop table users--')}` }), 'form');
  assert.equal((await send(`${url}/text`, { headers: { 'content-type': 'text/plain' }, body: '1; drop table users--' })).status, 200, 'text/plain is not in content-types');
  const bomb = await send(`${url}/api`, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(50 * 1024 * 1024)) });
  assert.equal(bomb.status, 413);
  const big = await send(`${url}/api`, json({ a: 'b'.repeat(1024 * 1024) }));
  assert.equal(big.status, 413);
});

test('weir plugin test: the cases in plugins/waf/cases.json pass', async () => {
  const out: string[] = [];
  const failed = await runPluginTests(fileURLToPath(new URL('../../plugins/waf/build/waf.wasm', import.meta.url)), fileURLToPath(new URL('../../plugins/waf/cases.json', import.meta.url)), (s) => out.push(s));
  assert.equal(failed, 0, out.join(''));
  assert.match(out.join(''), /6 passed, 0 failed/);
});

test('weir validate refuses an exclusion naming no rule or class, at its line and column', () => {
  const file = join(tmpDir('weir-waf-'), 'weir.kdl');
  writeFileSync(file, `listeners { listener "m" { address "127.0.0.1:0"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }
filters {
    filter "a" { type "waf"; exclude rule=9999; }
    filter "b" {
        type "waf"
        exclude rule="sqlx" route="r"
    }
}
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "a" "b"; } }
`);
  const v = spawnSync(process.execPath, [fileURLToPath(new URL('../../host/bin/weir.ts', import.meta.url)), 'validate', file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(v.status, 1, v.stderr);
  assert.match(v.stderr, /weir\.kdl:4:30: error WEIR_ERR_PLUGIN_CONFIG: .*no rule 9999/);
  assert.match(v.stderr, /weir\.kdl:7:9: error WEIR_ERR_PLUGIN_CONFIG: .*rule must be a rule id or one of sqli, xss/);
});

test('waf over HTTP/2 (h2c): a streamed body without content-length is buffered and inspected', async () => {
  const { weir } = await weirOn(`
listeners {
    listener "h2" {
        address "127.0.0.1:0"
        protocol "h2c"
    }
}
filters {
    filter "w" {
        type "waf"
    }
}
routes {
    route "r" {
        matches {
            path-prefix "/"
        }
        upstream "o"
        filters "w"
    }
}`);
  const session = http2.connect(weir.url('h2'));
  const post = (body: string) => new Promise<number>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/api', 'content-type': 'application/json', 'user-agent': 'Mozilla/5.0' });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
    // Two chunks, no content-length: the host buffers them for the WAF.
    req.write(body.slice(0, 10));
    setTimeout(() => req.end(body.slice(10)), 20);
  });
  try {
    assert.equal(await post(JSON.stringify({ name: "x' or 'a'='a" })), 403);
    assert.equal(await post(JSON.stringify({ name: "O'Brien" })), 200);
  } finally {
    session.close();
  }
});

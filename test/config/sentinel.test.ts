// Sentinel's spellings (docs/sentinel.md): each fixture below is written the way Sentinel
// writes it, run through the real proxy, and must act exactly as its Weir spelling does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { echo, startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { rawRequest } from '../helpers/http.ts';
import { createPki } from '../helpers/tls.ts';
import { freePort } from '../helpers/servers.ts';
import { runWeir } from '../helpers/process.ts';
import { loadConfig, loadConfigText } from '../../host/src/config/load.ts';
import { migrateText, parseKdl } from '../../host/src/config/kdl.ts';
import type { DialectUse } from '../../host/src/config/dialect.ts';
import { ROOT, type KeySpec } from '../../host/src/config/schema.ts';
import { firstPartyPluginPath } from '../../host/src/assets.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function origin(handler?: OriginHandler): Promise<Origin> {
  const o = await startOrigin(handler);
  cleanups.push(() => o.close());
  return o;
}

/** Listens on a free port (closed after the tests); returns the port. */
async function serve(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as net.AddressInfo).port;
}

/** Starts Weir on `text`, runs `probe` against it, stops it. */
async function observe<T>(text: string, probe: (url: string, port: number) => Promise<T>): Promise<T> {
  const { weir, url } = await startWeirWith(text);
  try {
    return await probe(url, Number(new URL(url).port));
  } finally {
    await weir.close();
  }
}

/** The Sentinel form and the Weir form observed the same way; both must give `expected`. */
async function same<T>(sentinel: string, weir: string, probe: (url: string, port: number) => Promise<T>, expected: T): Promise<void> {
  const s = await observe(sentinel, probe);
  const w = await observe(weir, probe);
  assert.deepEqual(w, expected, 'the Weir spelling');
  assert.deepEqual(s, expected, 'the Sentinel spelling acts as the Weir one');
}

const listener = 'listeners { listener "http" { address "127.0.0.1:0"; protocol "http"; } }\nsystem { graceful-shutdown-timeout-secs 1 }';

async function get(url: string, path = '/', headers: Record<string, string> = {}): Promise<number> {
  const r = await request(url + path, { headers });
  await r.body.dump();
  return r.statusCode;
}

test('sentinel priority "critical" | "high" | "normal" | "low" orders routes like the numbers', async () => {
  const o = await origin();
  const cfg = (lo: string, hi: string, mid: string): string => `${listener}
routes {
    route "fallback" { priority ${lo}; matches { path-prefix "/"; }; builtin-handler "not-found"; }
    route "normal" { priority ${mid}; matches { path-prefix "/a"; }; builtin-handler "not-found"; }
    route "api" { priority ${hi}; matches { path-prefix "/a"; }; upstream "o"; }
}
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }`;
  const probe = async (url: string): Promise<number[]> => [await get(url, '/a'), await get(url, '/b')];
  await same(cfg('"low"', '"critical"', '"normal"'), cfg('-100', '1000', '0'), probe, [200, 404]);
  await same(cfg('"low"', '"high"', '"normal"'), cfg('-100', '100', '0'), probe, [200, 404]);
});

test('sentinel limits max-header-size-bytes, max-header-size, max-body-size-bytes and max-body-size', async () => {
  const o = await origin();
  const cfg = (h: string, b: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${o.port}"; }
limits { ${h} 2048; max-header-count 100; ${b} 100; }`;
  const probe = async (url: string): Promise<number[]> => {
    const big = await get(url, '/', { 'x-big': 'a'.repeat(4000) });
    const small = await get(url, '/', { 'x-small': 'a' });
    const r = await request(url + '/', { method: 'POST', body: 'b'.repeat(200) });
    await r.body.dump();
    const ok = await request(url + '/', { method: 'POST', body: 'b'.repeat(50) });
    await ok.body.dump();
    return [big, small, r.statusCode, ok.statusCode];
  };
  await same(cfg('max-header-size-bytes', 'max-body-size-bytes'), cfg('max-header-bytes', 'max-body-bytes'), probe, [431, 200, 413, 200]);
  await same(cfg('max-header-size', 'max-body-size'), cfg('max-header-bytes', 'max-body-bytes'), probe, [431, 200, 413, 200]);
});

test('sentinel upstream timeouts connect-secs, request-secs, read-secs, write-secs', async () => {
  const o = await origin((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late'), 3000);
    else res.end('ok');
  });
  const cfg = (s: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${o.port}"; timeouts { connect${s} 2; request${s} 0.5; read${s} 5; write${s} 5; } }`;
  await same(cfg('-secs'), cfg(''), async (url) => [await get(url, '/slow'), await get(url, '/fast')], [504, 200]);
});

test('sentinel retry-policy with retryable-status-codes, backoff-base-ms and backoff-max-ms retries a 503', async () => {
  let n = 0;
  const o = await origin((req, res) => {
    res.statusCode = n++ % 2 === 0 ? 503 : 200;
    res.end();
  });
  const sentinel = `${listener}
route "r" {
    matches { path-prefix "/"; }
    upstream "o"
    retry-policy { max-attempts 2; retryable-status-codes 503; backoff-base-ms 1; backoff-max-ms 5; }
}
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  const weir = `${listener}
route "r" {
    matches { path-prefix "/"; }
    upstream "o"
    policies { retry { max-attempts 2; retry-on "503"; backoff-ms 1; max-backoff-ms 5; } }
}
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  await same(sentinel, weir, async (url) => {
    n = 0;
    return [await get(url), n];
  }, [200, 2]);
});

test('sentinel load-balancing "round-robin" and "weighted-round-robin" alternate like round_robin', async () => {
  const mk = async (name: string): Promise<Origin> => origin((req, res) => res.end(name));
  const a = await mk('a');
  const b = await mk('b');
  const cfg = (lb: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}"; load-balancing "${lb}"; }`;
  const probe = async (url: string): Promise<string> => {
    let out = '';
    for (let i = 0; i < 4; i++) out += await (await request(url + '/')).body.text();
    return out;
  };
  await same(cfg('round-robin'), cfg('round_robin'), probe, 'abab');
  await same(cfg('weighted-round-robin'), cfg('weighted'), probe, 'abab');
  const refused = await loadConfigText(cfg('sticky_session'), 'lb.kdl', { skipFileChecks: true });
  assert.ok(!refused.ok && refused.diagnostics.some((d) => d.code === 'WEIR_ERR_CONFIG_UNSUPPORTED' && d.message.includes('sticky')));
  for (const [sentinel, weir] of [['ip-hash', 'ip_hash'], ['least-connections', 'least_connections'], ['peak-ewma', 'peak_ewma'], ['weighted-random', 'weighted_random'], ['least-tokens', 'least_tokens']]) {
    const r = await loadConfigText(cfg(sentinel!), 'lb.kdl', { skipFileChecks: true });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.diagnostics));
    assert.equal(r.config.upstreams.get('o')!.loadBalancing, weir);
  }
});

test('sentinel health-check type "http" { path; expected-status } checks that path for that status', async () => {
  // Target a answers its check path with 204, b with 200: the expected status picks which one is healthy.
  const mk = (name: string, hc: number): Promise<Origin> => origin((req, res) => {
    res.statusCode = req.url === '/hc' ? hc : 200;
    res.end(req.url === '/hc' ? '' : name);
  });
  const a = await mk('a', 204);
  const b = await mk('b', 200);
  const cfg = (hc: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}"; health-check { ${hc} interval-secs 0.1; timeout-secs 1; unhealthy-threshold 1; healthy-threshold 1; } }`;
  const probe = async (url: string): Promise<string> => {
    const seen = (o: Origin): number => o.seen.filter((s) => s.url === '/hc').length;
    const start = [seen(a), seen(b)];
    const end = Date.now() + 10_000;
    while ((seen(a) < start[0]! + 2 || seen(b) < start[1]! + 2) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    let out = '';
    for (let i = 0; i < 4; i++) out += await (await request(url + '/x')).body.text();
    return out;
  };
  await same('// healthy: a\n' + cfg('type "http" { path "/hc"; expected-status 204; };'), cfg('type "http"; path "/hc"; expected-status 204;'), probe, 'aaaa');
  await same(cfg('type "http" { path "/hc"; expected-status 200; };'), cfg('type "http"; path "/hc"; expected-status 200;'), probe, 'bbbb');
});

test('sentinel connection-pool idle-timeout-secs and max-lifetime-secs close idle upstream connections', async () => {
  const closed: number[] = [];
  const server = http.createServer((req, res) => res.end('ok'));
  server.on('connection', (s: net.Socket) => s.on('close', () => closed.push(Date.now())));
  const port = await serve(server);
  const cfg = (s: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${port}"; connection-pool { idle-timeout${s} 0.3; max-lifetime${s} 60; } }`;
  await same(cfg('-secs'), cfg(''), async (url) => {
    closed.length = 0;
    const status = await get(url);
    const end = Date.now() + 5000;
    while (closed.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    // Closed by the proxy's idle timeout, long before the 60 s lifetime and the test's end.
    return [status, closed.length];
  }, [200, 1]);
});

test('sentinel route websocket #true allows upgrades like policies websocket', async () => {
  const server = http.createServer((req, res) => res.end());
  server.on('upgrade', (req, socket: net.Socket) => {
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  const port = await serve(server);
  const cfg = (ws: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; ${ws} }
upstream "o" { target "127.0.0.1:${port}"; }`;
  const upgrade = 'GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  const probe = async (_url: string, p: number): Promise<string> => (await rawRequest(p, upgrade)).split('\r\n')[0]!.split(' ')[1]!;
  await same(cfg('websocket #true'), cfg('policies { websocket #true; }'), probe, '101');
  const off = await observe(cfg('policies { websocket #false; }'), probe);
  assert.notEqual(off, '101');
  await same(cfg('websocket #false'), cfg('policies { websocket #false; }'), probe, off);
});

test('sentinel observability logging access-log { enabled; file; format "json" } writes that file', async () => {
  const o = await origin();
  const dir = tmpDir();
  const cfg = (log: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${o.port}"; }
observability { logging { level "warn"; ${log} } }`;
  const run = async (text: string, file: string): Promise<string[]> => {
    const { weir, url } = await startWeirWith(text, { accessLog: undefined });
    await get(url, '/logged');
    await weir.close();
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { path?: string; url?: string }).path ?? '') : [];
  };
  const s = join(dir, 's.log');
  const w = join(dir, 'w.log');
  assert.deepEqual(await run(cfg(`access-log { enabled #true; file "${s}"; format "json"; }`), s), await run(cfg(`access-log "${w}"`), w));
  assert.ok(readFileSync(s, 'utf8').includes('/logged'));
  const off = join(dir, 'off.log');
  assert.deepEqual(await run(cfg(`access-log { enabled #false; file "${off}"; }`), off), []);
});

test('sentinel TLS min-version "TLS1.3" / "1.3" refuses a TLS 1.2 client like "TLSv1.3"', async () => {
  const pki = createPki();
  const cert = pki.server('srv', ['localhost', '127.0.0.1']);
  const cfg = (v: string): string => `listeners { listener "https" { address "127.0.0.1:0"; tls { cert-file "${cert.cert}"; key-file "${cert.key}"; min-version "${v}"; } } }
route "r" { matches { path-prefix "/"; }; builtin-handler "health"; }
system { graceful-shutdown-timeout-secs 1 }`;
  const probe = async (_url: string, port: number): Promise<string[]> => {
    const versions: string[] = [];
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      versions.push(await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost', maxVersion });
        s.once('secureConnect', () => {
          resolve(s.getProtocol() ?? '');
          s.end();
        });
        s.once('error', () => resolve('refused'));
      }));
    }
    return versions;
  };
  await same(cfg('TLS1.3'), cfg('TLSv1.3'), probe, ['refused', 'TLSv1.3']);
  await same(cfg('1.2'), cfg('TLSv1.2'), probe, ['TLSv1.2', 'TLSv1.3']);
});

test('sentinel TLS cipher-suites: a client offering only a suite not listed is refused', async () => {
  const pki = createPki();
  const cert = pki.server('srv', ['localhost', '127.0.0.1']);
  const cfg = (suites: string): string => `listeners { listener "https" { address "127.0.0.1:0"; tls { cert-file "${cert.cert}"; key-file "${cert.key}"; ${suites} } } }
route "r" { matches { path-prefix "/"; }; builtin-handler "health"; }
system { graceful-shutdown-timeout-secs 1 }`;
  const clients: tls.ConnectionOptions[] = [
    { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
    { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
    { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' },
    {},
  ];
  const probe = async (_url: string, port: number): Promise<string[]> => {
    const out: string[] = [];
    for (const c of clients) {
      out.push(await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost', ...c });
        s.once('secureConnect', () => {
          resolve(`${s.getProtocol()} ${s.getCipher().name}`);
          s.end();
        });
        s.once('error', () => resolve('refused'));
      }));
    }
    return out;
  };
  const ok12 = 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256';
  // Unset: Node's defaults take every one of these clients.
  assert.deepEqual(await observe(cfg(''), probe), [ok12, 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384', 'TLSv1.3 TLS_AES_256_GCM_SHA384', 'TLSv1.3 TLS_AES_256_GCM_SHA384']);
  await same(
    cfg('cipher-suites "tls-ecdhe-ecdsa-with-aes-128-gcm-sha256" "tls_aes_128_gcm_sha256";'),
    cfg('cipher-suites "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" "TLS_AES_128_GCM_SHA256";'),
    probe,
    [ok12, 'refused', 'refused', 'TLSv1.3 TLS_AES_128_GCM_SHA256'],
  );
  // OpenSSL's names work too; no TLS 1.3 suite listed: TLS 1.2 only.
  await same(cfg('cipher-suites "ECDHE-ECDSA-AES128-GCM-SHA256";'), cfg('cipher-suites "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";'), probe, [ok12, 'refused', 'refused', ok12]);
  const bad = await loadConfigText('listeners { listener "h" { tls { cert-file "a.crt"; key-file "a.key";\ncipher-suites "TLS_AES_128_GCM_SHA256" "TLS_RSA_WITH_RC4_128_MD5"; }; }; }', 'sentinel.kdl', { skipFileChecks: true });
  const d = !bad.ok ? bad.diagnostics.find((x) => x.message.includes('TLS_RSA_WITH_RC4_128_MD5')) : undefined;
  assert.ok(d && d.loc?.line === 2 && d.loc.column === 40 && d.code === 'WEIR_ERR_CONFIG_VALUE', JSON.stringify(bad));
  const none = await loadConfigText('listeners { listener "h" { tls { cert-file "a.crt"; key-file "a.key"; min-version "TLSv1.3";\ncipher-suites "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"; }; }; }', 'sentinel.kdl', { skipFileChecks: true });
  assert.ok(!none.ok && none.diagnostics.some((x) => x.code === 'WEIR_ERR_CONFIG_CONSTRAINT' && x.loc?.line === 2), JSON.stringify(none));
});

test('sentinel upstream tls insecure-skip-verify and ca-cert', async () => {
  const pki = createPki('Upstream CA');
  const cert = pki.server('up', ['localhost', '127.0.0.1']);
  const server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => res.end('tls'));
  const port = await serve(server);
  const cfg = (t: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${port}"; tls { sni "localhost"; ${t} } }`;
  const probe = async (url: string): Promise<number> => get(url);
  // Without the CA, verification fails unless it is skipped.
  await same(cfg('insecure-skip-verify #true;'), cfg('verify #false;'), probe, 200);
  await same(cfg('insecure-skip-verify #false;'), cfg('verify #true;'), probe, 502);
  await same(cfg(`ca-cert "${pki.caCert}";`), cfg(`ca-file "${pki.caCert}";`), probe, 200);
});

test('sentinel rate-limit redis-fallback-local counts locally while Redis is down', async () => {
  const o = await origin();
  const dead = await freePort();
  const cfg = (k: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; filters "rl"; }
upstream "o" { target "127.0.0.1:${o.port}"; }
plugin "rate-limit" { path "${firstPartyPluginPath('rate-limit')}"; }
filter "rl" { type "rate-limit"; max-rps 1; burst 2; backend "redis"; redis-url "redis://127.0.0.1:${dead}"; redis-timeout-ms 100; ${k} #true; }`;
  // The first request may wait out the Redis connect before falling back: only the later ones are compared.
  const probe = async (url: string): Promise<number[]> => {
    await get(url);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) out.push(await get(url));
    return out;
  };
  for (const k of ['redis-fallback-local', 'redis-fallback']) {
    const s = await observe(cfg(k), probe);
    assert.ok(s.includes(429) && !s.some((x) => x >= 500), `${k}: local counters limit the burst: ${s.join(' ')}`);
  }
  const noFallback = await observe(cfg('redis-fallback').replace('redis-fallback #true', 'redis-fallback #false'), probe);
  assert.ok(!noFallback.includes(429), `without fallback nothing is counted: ${noFallback.join(' ')}`);
});

test('sentinel policies request-headers and response-headers act as a headers filter', async () => {
  const o = await origin((req, res, body) => {
    res.setHeader('x-origin', 'yes');
    echo(req, res, body);
  });
  const sentinel = `${listener}
route "r" {
    matches { path-prefix "/"; }
    upstream "o"
    policies {
        request-headers { set { X-A "1"; }; add { X-B "2"; }; remove "x-drop" "x-drop2"; }
        response-headers { set { X-Served "weir"; }; remove "x-origin"; }
    }
}
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  const weir = `${listener}
filter "h" {
    type "headers"
    request { set "X-A" "1"; add "X-B" "2"; remove "x-drop" "x-drop2"; }
    response { set "X-Served" "weir"; remove "x-origin"; }
}
route "r" { matches { path-prefix "/"; }; upstream "o"; filters "h"; }
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  await same(sentinel, weir, async (url) => {
    const r = await request(url + '/', { headers: { 'x-a': 'client', 'x-b': '0', 'x-drop': 'd', 'x-drop2': 'd' } });
    const seen = ((await r.body.json()) as { headers: Record<string, string> }).headers;
    return [seen['x-a'], seen['x-b'], seen['x-drop'] ?? '-', seen['x-drop2'] ?? '-', r.headers['x-served'], r.headers['x-origin'] ?? '-'];
  }, ['1', '0, 2', '-', '-', 'weir', '-']);
  const bad = await loadConfigText(`${listener}\nroute "r" { builtin-handler "health"; policies { request-headers {\nrename { X-Old "X-New"; }; }; }; }`, 'sentinel.kdl', { skipFileChecks: true });
  assert.ok(!bad.ok && bad.diagnostics.some((d) => d.code === 'WEIR_ERR_CONFIG_UNSUPPORTED' && d.loc?.line === 4 && d.message.includes('rename')), JSON.stringify(bad));
});

test('sentinel rewrite-path (route or policies) acts as a url-rewrite filter', async () => {
  const o = await origin();
  const cfg = (where: string, filter: string): string => `${listener}
${filter}
route "r" { matches { path-prefix "/"; }; upstream "o"; ${where} }
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  const weir = cfg('filters "rw";', 'filter "rw" { type "url-rewrite"; regex-rewrite "^.*$" "/index.html"; }');
  const probe = async (url: string): Promise<string[]> => {
    const out: string[] = [];
    for (const p of ['/deep/page?q=1', '/']) {
      const r = await request(url + p);
      out.push(((await r.body.json()) as { url: string }).url);
    }
    return out;
  };
  await same(cfg('policies { rewrite-path "/index.html"; }', ''), weir, probe, ['/index.html?q=1', '/index.html']);
  await same(cfg('rewrite-path "/index.html";', ''), weir, probe, ['/index.html?q=1', '/index.html']);
});

test('sentinel policies rate-limit acts as a rate-limit filter with the same keys', async () => {
  const o = await origin();
  const cfg = (route: string, filter: string): string => `${listener}
${filter}
route "r" { matches { path-prefix "/"; }; upstream "o"; ${route} }
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  const probe = async (url: string): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < 5; i++) out.push(await get(url));
    return out;
  };
  // 0.01 per second: nothing refills during the probe, so only the burst passes.
  const weir = cfg('filters "rl";', 'filter "rl" { type "rate-limit"; max-rps 0.01; burst 2; key "client-ip"; status-code 503; }');
  await same(cfg('policies { rate-limit { requests-per-second 0.01; burst 2; key "client-ip"; status-code 503; }; }', ''), weir, probe, [200, 200, 503, 503, 503]);
  await same(cfg('policies { rate-limit { max-rps 0.01; burst 3; }; }', ''), cfg('filters "rl";', 'filter "rl" { type "rate-limit"; max-rps 0.01; burst 3; }'), probe, [200, 200, 200, 429, 429]);
});

test('sentinel limits max-decompressed-size-bytes and max-decompression-ratio cap every decoded request body', async () => {
  const o = await origin((_req, res, body) => res.end(String(body.length)));
  const noise = (n: number): string => randomBytes(n).toString('base64').slice(0, n);
  const bodies = [gzipSync(noise(4000)), gzipSync(noise(500)), gzipSync('a'.repeat(2000))];
  const cfg = (limits: string, own: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; policies { request-decompression ${own}; }; }
upstream "o" { target "127.0.0.1:${o.port}"; }
limits { ${limits} }`;
  const probe = async (url: string): Promise<string[]> => {
    const out: string[] = [];
    for (const body of bodies) {
      const r = await request(url + '/', { method: 'POST', body, headers: { 'content-encoding': 'gzip' } });
      out.push(`${r.statusCode} ${await r.body.text()}`.slice(0, 3));
    }
    return out;
  };
  // 4000 bytes decoded is past 1000; 500 is not; 2000 bytes of "a" inflate far past 3 times their size.
  await same(cfg('max-decompressed-size-bytes 1000; max-decompression-ratio 3', ''), cfg('', '{ max-bytes 1000; max-ratio 3; }'), probe, ['413', '200', '413']);
  // Without the caps the same bodies pass: the limits did the refusing.
  assert.deepEqual(await observe(cfg('', ''), probe), ['200', '200', '200']);
  // A route's own caps win over the limits.
  assert.deepEqual(await observe(cfg('max-decompressed-size-bytes 1000; max-decompression-ratio 3', '{ max-bytes 8000; max-ratio 1000; }'), probe), ['200', '200', '200']);
  const r = await loadConfigText(`${listener}\nroute "r" { builtin-handler "health"; }\nlimits {\nmax-decompression-ratio 3; }`, 'sentinel.kdl', { skipFileChecks: true });
  assert.ok(r.ok);
  const warn = r.warnings.find((d) => d.code === 'WEIR_ERR_CONFIG_CONSTRAINT');
  assert.ok(warn && warn.loc?.line === 5, JSON.stringify(r.warnings));
});

test('sentinel listener max-concurrent-streams and keepalive-max-requests act as the limits for that listener', async () => {
  const o = await origin();
  const up = `route "r" { matches { path-prefix "/"; }; upstream "o"; }\nupstream "o" { target "127.0.0.1:${o.port}"; }\nsystem { graceful-shutdown-timeout-secs 1 }`;
  const h2 = (own: string, limits: string): string => `listeners { listener "h" { address "127.0.0.1:0"; protocol "h2c"; ${own} } }\nlimits { ${limits} }\n${up}`;
  const streams = async (url: string): Promise<number | undefined> => {
    const session = http2.connect(url);
    try {
      await once(session, 'remoteSettings');
      return session.remoteSettings.maxConcurrentStreams;
    } finally {
      session.destroy();
    }
  };
  await same(h2('max-concurrent-streams 7;', ''), h2('', 'http2 { max-concurrent-streams 7; }'), streams, 7);
  // The listener's own value wins over the limits.
  assert.equal(await observe(h2('max-concurrent-streams 7;', 'http2 { max-concurrent-streams 50; }'), streams), 7);
  const h1 = (own: string, limits: string): string => `listeners { listener "h" { address "127.0.0.1:0"; protocol "http"; ${own} } }\nlimits { ${limits} }\n${up}`;
  const connection = async (url: string): Promise<string[]> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const out: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        out.push(await new Promise<string>((resolve, reject) => {
          http.get(url + '/', { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.headers.connection)));
          }).on('error', reject);
        }));
      }
    } finally {
      agent.destroy();
    }
    return out;
  };
  await same(h1('keepalive-max-requests 2;', ''), h1('', 'max-requests-per-connection 2;'), connection, ['keep-alive', 'close', 'keep-alive']);
  assert.deepEqual(await observe(h1('keepalive-max-requests 2;', 'max-requests-per-connection 100;'), connection), ['keep-alive', 'close', 'keep-alive']);
});

test('sentinel listener default-route takes the requests no route matches', async () => {
  const o = await origin();
  const cfg = (own: string, fallback: string): string => `listeners { listener "h" { address "127.0.0.1:0"; ${own} } }
system { graceful-shutdown-timeout-secs 1 }
route "api" { matches { path-prefix "/api/"; }; builtin-handler "health"; }
route "web" { ${fallback} upstream "o"; }
upstream "o" { target "127.0.0.1:${o.port}"; }`;
  const probe = async (url: string): Promise<number[]> => [await get(url, '/api/x'), await get(url, '/elsewhere')];
  await same(cfg('default-route "web";', 'matches { path "/web-only"; };'), cfg('', 'priority -100; matches { path-prefix "/"; };'), probe, [200, 200]);
  // Without it the same routes leave /elsewhere unmatched.
  assert.deepEqual(await observe(cfg('', 'matches { path "/web-only"; };'), probe), [200, 404]);
  const bad = await loadConfigText('listeners { listener "h" {\ndefault-route "nope"; }; }\nroute "web" { builtin-handler "health"; }', 'sentinel.kdl', { skipFileChecks: true });
  assert.ok(!bad.ok && bad.diagnostics.some((d) => d.message.includes('nope') && d.loc?.line === 2), JSON.stringify(bad));
});

test('sentinel route service-type picks the error reply format: HTML for web and static, JSON for api', async () => {
  const closed = await freePort();
  const dir = tmpDir();
  const cfg = `${listener}
route "web" { matches { path-prefix "/web/"; }; upstream "gone"; service-type "web"; }
route "api" { matches { path-prefix "/api/"; }; upstream "gone"; service-type "api"; }
route "plain" { matches { path-prefix "/plain/"; }; upstream "gone"; }
route "files" { matches { path-prefix "/files/"; }; static-files { root "${dir}"; }; service-type "static"; }
upstream "gone" { target "127.0.0.1:${closed}"; }`;
  const out = await observe(cfg, async (url) => {
    const rows: string[][] = [];
    for (const p of ['/web/x', '/api/x', '/plain/x', '/files/missing.txt']) {
      const r = await request(url + p);
      const body = await r.body.text();
      const code = /WEIR_ERR_[A-Z_]+/.exec(body)?.[0] ?? '';
      rows.push([String(r.statusCode), String(r.headers['content-type']).split(';')[0]!, body.startsWith('<!DOCTYPE html>') ? 'html' : JSON.parse(body).error.code === code ? 'json' : '?', code]);
    }
    return rows;
  });
  assert.deepEqual(out, [
    ['502', 'text/html', 'html', 'WEIR_ERR_UPSTREAM_CONNECT'],
    ['502', 'application/json', 'json', 'WEIR_ERR_UPSTREAM_CONNECT'],
    ['502', 'application/json', 'json', 'WEIR_ERR_UPSTREAM_CONNECT'],
    ['404', 'text/html', 'html', 'WEIR_ERR_FILE_NOT_FOUND'],
  ]);
});

test('sentinel policies buffer-requests reads the whole body before the upstream is called', async () => {
  let arrived = 0;
  const port = await serve(http.createServer((req, res) => {
    arrived++;
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(String(n)));
  }));
  const cfg = (policies: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; policies { ${policies} }; }
upstream "o" { target "127.0.0.1:${port}"; }`;
  const total = 200_000;
  // Half the body, a pause, the rest: did the upstream see the request before the body was whole?
  const probe = async (_url: string, weirPort: number): Promise<[number, string]> => {
    arrived = 0;
    const sock = net.connect(weirPort, '127.0.0.1');
    await once(sock, 'connect');
    sock.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${total}\r\nconnection: close\r\n\r\n`);
    sock.write(Buffer.alloc(total / 2, 97));
    await new Promise((r) => setTimeout(r, 500));
    const early = arrived;
    let reply = '';
    sock.on('data', (c: Buffer) => (reply += c.toString()));
    sock.write(Buffer.alloc(total / 2, 97));
    await once(sock, 'end');
    sock.destroy();
    return [early, reply.slice(reply.indexOf('\r\n\r\n') + 4)];
  };
  assert.deepEqual(await observe(cfg('buffer-requests #true;'), probe), [0, String(total)]);
  assert.deepEqual(await observe(cfg('buffer-requests #false;'), probe), [1, String(total)]);
  // A chunked body past the route's limit is refused before the upstream is called.
  const chunked = await observe(cfg('buffer-requests #true; max-body-size 1000;'), async (url) => {
    arrived = 0;
    const r = await request(url + '/', { method: 'POST', body: Readable.from([Buffer.alloc(800, 97), Buffer.alloc(800, 97)]) });
    await r.body.dump();
    return [r.statusCode, arrived];
  });
  assert.deepEqual(chunked, [413, 0]);
});

test('sentinel limits max-in-flight-requests: one request more than the cap gets 503 WEIR_ERR_OVERLOADED', async () => {
  const held: http.ServerResponse[] = [];
  const o = await origin((req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end('ok');
  });
  const cfg = (cap: string): string => `${listener}
route "r" { matches { path-prefix "/"; }; upstream "o"; }
upstream "o" { target "127.0.0.1:${o.port}"; }
limits { ${cap} }`;
  const probe = async (url: string): Promise<Array<number | string>> => {
    held.length = 0;
    const holding = [request(url + '/hold'), request(url + '/hold')];
    for (let i = 0; i < 600 && held.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    const over = await request(url + '/now');
    const body = await over.body.text();
    for (const r of held) r.end('released');
    for (const r of await Promise.all(holding)) await r.body.dump();
    return [over.statusCode, /WEIR_ERR_[A-Z_]+/.exec(body)?.[0] ?? body, await get(url, '/now')];
  };
  assert.deepEqual(await observe(cfg('max-in-flight-requests 2;'), probe), [503, 'WEIR_ERR_OVERLOADED', 200]);
  assert.deepEqual(await observe(cfg('max-in-flight-requests 3;'), probe), [200, 'ok', 200]);
});

test('sentinel keys without a Weir feature are refused with WEIR_ERR_CONFIG_UNSUPPORTED at their line, saying what to use', async () => {
  const tlsBlock = (line: string): string => `listeners {\n    listener "https" {\n        tls { cert-file "a.crt"; key-file "a.key"; }\n        tls {\n${line}\n        }\n    }\n}`;
  const cases: Array<[string, string, string]> = [
    ['ocsp-stapling', `listeners { listener "h" { tls { cert-file "a.crt"; key-file "a.key";\nocsp-stapling #true; }; }; }`, 'staple'],
    ['daemon', 'system {\ndaemon #true\n}', 'service manager'],
    ['user', 'system {\nuser "weir"\n}', 'User='],
    ['group', 'system {\ngroup "weir"\n}', 'Group='],
    ['working-directory', 'system {\nworking-directory "/srv"\n}', 'WorkingDirectory='],
    ['agents', 'schema-version "1.0"\nagents { agent "waf" { type "waf"; unix-socket path="/run/waf.sock"; }; }', 'type "wasm"'],
    ['type `agent`', 'filters {\n    filter "auth" { type "agent"; agent "auth"; }\n}', 'agent protocol'],
    ['buffer-responses', 'route "r" { builtin-handler "health"; policies {\nbuffer-responses #true; }; }', 'response-buffer-bytes'],
    ['error-log', 'observability { logging {\nerror-log { file "/var/log/e.log"; }; }; }', 'process log'],
  ];
  void tlsBlock;
  for (const [key, text, says] of cases) {
    const r = await loadConfigText(text, 'sentinel.kdl', { skipFileChecks: true });
    assert.ok(!r.ok, key);
    const d = r.diagnostics.find((x) => x.code === 'WEIR_ERR_CONFIG_UNSUPPORTED');
    assert.ok(d && d.message.includes(key.replace(/^type /, '')) && d.message.includes(says), `${key}: ${JSON.stringify(r.diagnostics)}`);
    assert.equal(d.loc?.line, text.startsWith('filters') || text.startsWith('schema') ? 2 : 2, key);
  }
});

test('sentinel system pid-file is written by weir run and removed when it exits', async () => {
  const dir = tmpDir();
  const pid = join(dir, 'weir.pid');
  const file = join(dir, 'weir.kdl');
  writeFileSync(file, `system {\n    pid-file "${pid}"\n    graceful-shutdown-timeout-secs 1\n}\nlisteners { listener "h" { address "127.0.0.1:0"; }; }\nroute "r" { builtin-handler "health"; }\n`);
  const w = runWeir(['run', '-c', file]);
  cleanups.push(async () => w.kill());
  const end = Date.now() + 60_000;
  while (!existsSync(pid) && Date.now() < end && w.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  assert.equal(readFileSync(pid, 'utf8').trim(), String(w.child.pid), w.output());
  w.child.kill('SIGTERM');
  await w.exited(30_000);
  assert.equal(existsSync(pid), false, 'removed at exit');
});

/** Every value alias of the schema, with the path of keys leading to it. */
function valueAliases(specs: readonly KeySpec[], path: KeySpec[] = []): Array<{ path: KeySpec[]; from: string; to: string | number | boolean }> {
  const out: Array<{ path: KeySpec[]; from: string; to: string | number | boolean }> = [];
  for (const s of specs) {
    if (s.shorthandFor) continue;
    for (const v of [...(s.args ?? []), ...(s.rest ? [s.rest] : [])]) for (const [from, to] of Object.entries(v.valueAliases ?? {})) out.push({ path: [...path, s], from, to });
    if (s.children) out.push(...valueAliases(s.children, [...path, s]));
  }
  return out;
}

test('every value alias of the schema is rewritten to its Weir value, as validate --explain reports', () => {
  const all = valueAliases(ROOT);
  assert.ok(all.length > 30);
  for (const a of all) {
    const written = /^\d+$/.test(a.from) ? a.from : JSON.stringify(a.from);
    const text = a.path.slice(0, -1).reduceRight((acc, s) => `${s.name}${s.args?.length ? ' "x"' : ''} { ${acc} }`, `${a.path.at(-1)!.name} ${written}`);
    const uses: DialectUse[] = [];
    const r = parseKdl(text, 'v.kdl', uses);
    assert.ok(r.ok);
    let node = r.nodes[0]!;
    for (const s of a.path.slice(1)) node = node.children.find((c) => c.name === s.name)!;
    assert.deepEqual(node.args, [a.to], text);
    assert.equal(uses.length, 1, text);
    assert.equal(uses[0]!.loc.line, 1);
  }
});

test('weir migrate keeps comments and rewrites Sentinel spellings; the result loads to the same config', async () => {
  const o = await origin();
  const text = `// Sentinel
${listener}
routes {
    // the API
    route "api" {
        priority "high" // named
        matches { path-prefix "/"; }
        upstream "o"
        retry-policy { max-attempts 2; }
    }
}
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; timeouts { connect-secs 3; } } }
limits { max-header-size-bytes 4096; }
`;
  const m = migrateText(text, 'a.kdl');
  assert.ok(m.ok);
  for (const c of ['// Sentinel', '// the API', '// named', 'priority 100', 'connect 3', 'max-header-bytes 4096', 'retry {']) assert.ok(m.text.includes(c), `${c} in\n${m.text}`);
  assert.ok(!/retry-policy|connect-secs|max-header-size-bytes/.test(m.text));
  assert.equal(m.uses.length, 4);
  const a = await loadConfigText(text, 'a.kdl');
  const b = await loadConfigText(m.text, 'a.kdl');
  assert.ok(a.ok && b.ok);
  const strip = (c: unknown): string => JSON.stringify(c, (k, v: unknown) => (k === 'loc' || k === 'node' || k === 'settings' || k === 'configLoc' ? undefined : v instanceof Map ? [...v] : v));
  assert.equal(strip(a.config), strip(b.config));
  assert.equal(b.dialect?.length, 0);
});

test('weir validate --explain names each Sentinel spelling and its Weir key; weir migrate prints Weir spelling', async () => {
  const dir = tmpDir();
  const file = join(dir, 'sentinel.kdl');
  writeFileSync(file, `route "r" {\n    priority "critical"\n    builtin-handler "health"\n}\nlimits {\n    max-body-size-bytes 1000\n}\n`);
  const v = runWeir(['validate', '--explain', file]);
  assert.equal(await v.exited(60_000), 0, v.output());
  assert.match(v.output(), /sentinel\.kdl:2:5: `route › priority "critical"` → `route › priority 1000`/);
  assert.match(v.output(), /sentinel\.kdl:6:5: `limits › max-body-size-bytes` → `limits › max-body-bytes`/);
  const m = runWeir(['migrate', file]);
  assert.equal(await m.exited(60_000), 0, m.output());
  assert.match(m.output(), /priority 1000/);
  assert.match(m.output(), /max-body-bytes 1000/);
});

test('include "dir/*.kdl" globs and a Sentinel config directory (entry file, listeners/, routes/, upstreams/, filters/) load; errors name the file', async () => {
  const o = await origin();
  const dir = tmpDir();
  for (const d of ['listeners', 'routes/api', 'upstreams', 'filters', 'conf.d']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'zentinel.kdl'), 'system { graceful-shutdown-timeout-secs 1 }\ninclude "conf.d/*.kdl"\n');
  writeFileSync(join(dir, 'conf.d', 'limits.kdl'), 'limits { max-body-size-bytes 100; }\n');
  writeFileSync(join(dir, 'listeners', 'http.kdl'), 'listeners { listener "http" { address "127.0.0.1:0"; } }\n');
  writeFileSync(join(dir, 'routes', 'api', 'api.kdl'), 'routes { route "api" { matches { path-prefix "/"; }; upstream "o"; filters "h"; } }\n');
  writeFileSync(join(dir, 'routes', 'skip.example.kdl'), 'this is not loaded {\n');
  writeFileSync(join(dir, 'upstreams', 'o.kdl'), `upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }\n`);
  writeFileSync(join(dir, 'filters', 'h.kdl'), 'filters { filter "h" { type "headers"; request { set "x-dir" "yes"; } } }\n');
  const r = await loadConfig(dir);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.diagnostics));
  assert.equal(r.config.limits.maxBodyBytes, 100);
  assert.equal(r.config.routes[0]!.name, 'api');
  const { weir, url } = await startWeirWith('', { configPath: dir });
  cleanups.push(() => weir.close());
  const res = await request(url + '/x');
  const body = JSON.parse(await res.body.text()) as { headers: Record<string, string> };
  assert.equal(body.headers['x-dir'], 'yes');
  // An error in a sub-folder file is reported at that file's line.
  writeFileSync(join(dir, 'upstreams', 'bad.kdl'), 'upstreams {\n    upstream "p" { target "127.0.0.1:1"; bogus 1; }\n}\n');
  const bad = await loadConfig(dir);
  assert.ok(!bad.ok);
  const d = bad.diagnostics.find((x) => x.code === 'WEIR_ERR_CONFIG_UNKNOWN_KEY');
  assert.equal(d?.loc?.file, join(dir, 'upstreams', 'bad.kdl'));
  assert.equal(d?.loc?.line, 2);
  // A glob that matches nothing is an error at the include.
  writeFileSync(join(dir, 'zentinel.kdl'), 'include "nothing/*.kdl"\n');
  const none = await loadConfig(join(dir, 'zentinel.kdl'));
  assert.ok(!none.ok && none.diagnostics.some((x) => x.code === 'WEIR_ERR_CONFIG_INCLUDE' && x.loc?.line === 1));
});

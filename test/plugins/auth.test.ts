// The first-party auth plugins (plugins/api-key, plugins/basic-auth, plugins/jwt) through the
// real proxy over real sockets, configured the way users write them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, constants, createHmac, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { runPluginTests } from '../../plugin-abi/src/harness/cases.ts';
import { firstPartyPluginPath } from '../../host/src/assets.ts';
import { echo, startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import type { StartOptions, Weir } from '../../host/src/weir.ts';

let origin: Origin;
const weirs: Weir[] = [];

before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin(echo);
});

after(async () => {
  for (const w of weirs) await w.close();
  await origin.close();
});

async function weirOn(filters: string, routes: string, opts: Partial<StartOptions> = {}): Promise<{ url: string; weir: Weir }> {
  const { weir, url } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
filters { ${filters} }
routes { ${routes} }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`, opts);
  weirs.push(weir);
  return { url, weir };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const before = origin.seen.length;
  const res = await request(url, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, seen: origin.seen.length > before ? origin.seen.at(-1) : undefined };
}

function errorCode(text: string): string {
  return (JSON.parse(text) as { error: { code: string } }).error.code;
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

test('api-key: keys-file (plain and salted SHA-256), key from env, strip, 401 codes, label as auth.subject for rate-limit and the access log, file change reloads', async () => {
  const dir = tmpDir();
  const keys = join(dir, 'keys.txt');
  const salted = `sha256:s4lt:${createHash('sha256').update('s4lt' + 'hashed-secret').digest('hex')}`;
  writeFileSync(keys, `# label key\nalice alice-key-123\nbob\t${salted}\n`);
  process.env['WEIR_TEST_SERVICE_KEY'] = 'svc-key-from-env';
  const access: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const line of chunk.toString().split('\n')) if (line) access.push(JSON.parse(line) as Record<string, unknown>); cb(); } });
  const { url } = await weirOn(`
    filter "keys" { type "api-key"; header "x-api-key"; keys-file "${keys}"; key "\${WEIR_TEST_SERVICE_KEY}" label="svc"; strip #true; }
    filter "keep" { type "api-key"; keys-file "${keys}"; strip #false; }
    filter "per-key" { type "rate-limit"; max-rps 0.001; burst 1; key "property:auth.subject"; }`, `
    route "limited" { matches { path-prefix "/limited"; }; upstream "o"; filters "keys" "per-key"; }
    route "keep" { matches { path-prefix "/keep"; }; upstream "o"; filters "keep"; }
    route "r" { matches { path-prefix "/"; }; upstream "o"; filters "keys"; }`, { accessLog: pino({ level: 'info' }, sink), watch: true });

  const ok = await get(`${url}/a`, { 'x-api-key': 'alice-key-123' });
  assert.equal(ok.status, 200);
  assert.equal(ok.seen!.headers['x-api-key'], undefined, 'strip #true: the upstream never sees the key');
  assert.equal((await get(`${url}/a`, { 'x-api-key': 'hashed-secret' })).status, 200, 'salted hash');
  assert.equal((await get(`${url}/a`, { 'x-api-key': 'svc-key-from-env' })).status, 200, 'key from the environment');
  assert.equal((await get(`${url}/keep`, { 'x-api-key': 'alice-key-123' })).seen!.headers['x-api-key'], 'alice-key-123', 'strip #false');

  const missing = await get(`${url}/a`);
  assert.equal(missing.status, 401);
  assert.equal(missing.headers['www-authenticate'], 'ApiKey header="x-api-key"');
  assert.equal(errorCode(missing.text), 'WEIR_ERR_AUTH_MISSING');
  assert.equal(missing.seen, undefined, 'no upstream call');
  for (const wrong of ['alice-key-124', 'alice-key-12', 'sha256:s4lt:' + salted.slice(12), 'hashed-secretx']) {
    const r = await get(`${url}/a`, { 'x-api-key': wrong });
    assert.equal(r.status, 401, wrong);
    assert.equal(errorCode(r.text), 'WEIR_ERR_AUTH_INVALID');
  }

  // The label is the rate-limit key: one bucket per key, whoever sends it.
  assert.equal((await get(`${url}/limited`, { 'x-api-key': 'alice-key-123' })).status, 200);
  assert.equal((await get(`${url}/limited`, { 'x-api-key': 'alice-key-123' })).status, 429);
  assert.equal((await get(`${url}/limited`, { 'x-api-key': 'hashed-secret' })).status, 200, 'bob has his own bucket');
  const line = access.find((l) => l['path'] === '/limited' && l['status'] === 200);
  assert.equal(line?.['user'], 'alice', 'the access log names the key label');
  assert.equal(access.find((l) => l['status'] === 401)?.['user'], undefined);

  // Hot reload: the file changing is enough (watched with the config files).
  writeFileSync(keys, `carol carol-key-456\n`);
  await eventually('new key accepted after the file changed', async () => (await get(`${url}/a`, { 'x-api-key': 'carol-key-456' })).status === 200);
  assert.equal((await get(`${url}/a`, { 'x-api-key': 'alice-key-123' })).status, 401, 'a removed key stops working');
  assert.equal((await get(`${url}/a`, { 'x-api-key': 'svc-key-from-env' })).status, 200);
});

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;

/** `weir validate` on a config around `filters` (one route using the filter "f"); stderr and status. */
function validate(filters: string): { status: number | null; stderr: string; file: string } {
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, `listeners { listener "m" { address "127.0.0.1:0"; } }
filters {
${filters}
}
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "f"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }
`);
  const r = spawnSync(process.execPath, [WEIR, 'validate', file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, file };
}

for (const name of ['api-key', 'basic-auth', 'jwt']) {
  test(`${name}: the weir plugin test cases in plugins/${name}/cases.json pass`, async () => {
    const out: string[] = [];
    const failed = await runPluginTests(firstPartyPluginPath(name), new URL(`../../plugins/${name}/cases.json`, import.meta.url).pathname, (s) => out.push(s));
    assert.equal(failed, 0, out.join(''));
    assert.match(out.join(''), /[1-9]\d* passed, 0 failed/);
  });
}

test('api-key: weir validate gives file:line:column for a bad keys-file line, an unreadable file and a wrong type', () => {
  const keys = join(tmpDir(), 'keys.txt');
  writeFileSync(keys, 'alice k1\nbob sha256:salt:nothex\n');
  const badLine = validate(`    filter "f" {\n        type "api-key"\n        keys-file "${keys}"\n    }`);
  assert.equal(badLine.status, 1);
  assert.match(badLine.stderr, new RegExp(`${badLine.file}:5:9: error WEIR_ERR_PLUGIN_CONFIG: .*keys-file entry 2: a hashed key is sha256:SALT:HEX`));
  const gone = validate(`    filter "f" { type "api-key"; keys-file "/nonexistent/keys.txt"; }`);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /weir\.kdl:3:\d+: error WEIR_ERR_CONFIG_FILE/);
  const type = validate(`    filter "f" { type "api-key"; key "k" label="a"; strip "yes"; }`);
  assert.equal(type.status, 1);
  assert.match(type.stderr, /weir\.kdl:3:\d+: error WEIR_ERR_CONFIG_TYPE/);
});

test('basic-auth: htpasswd with bcrypt (cost 10) and SHA-crypt users, 401 with the Basic challenge, a reload reads the file again', async () => {
  const bcrypt = (await import('bcryptjs')).default;
  const { encrypt } = await import('unixcrypt');
  const dir = tmpDir();
  const users = join(dir, 'users.htpasswd');
  writeFileSync(users, `ann:${bcrypt.hashSync('ann pw', 10)}\nben:${encrypt('ben pw', '$5$bensalt')}\ncid:${encrypt('cid pw', '$6$rounds=6000$cidsalt')}\n`);
  const { url, weir } = await weirOn(`
    filter "basic" { type "basic-auth"; htpasswd "${users}"; realm "api"; }
    filter "tag" { type "headers"; request { set "x-seen" "yes"; } }`, `
    route "open" { matches { path-prefix "/open"; }; upstream "o"; }
    route "r" { matches { path-prefix "/"; }; upstream "o"; filters "basic" "tag"; }`);
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

  // Several bcrypt checks in flight, and a request on another route meanwhile: all answered.
  const [a1, a2, open, b, c] = await Promise.all([
    get(`${url}/x/ann`, basic('ann', 'ann pw')), get(`${url}/x/wrong`, basic('ann', 'wrong')), get(`${url}/open`),
    get(`${url}/x/ben`, basic('ben', 'ben pw')), get(`${url}/x/cid`, basic('cid', 'cid pw')),
  ]);
  assert.equal(a1.status, 200);
  const seenAnn = origin.seen.find((r) => r.url === '/x/ann')!;
  assert.equal(seenAnn.headers['authorization'], undefined, 'the credentials stay at the proxy');
  assert.equal(seenAnn.headers['x-seen'], 'yes', 'the chain goes on after the suspended check');
  assert.equal(a2.status, 401);
  assert.equal(a2.headers['www-authenticate'], 'Basic realm="api", charset="UTF-8"');
  assert.equal(errorCode(a2.text), 'WEIR_ERR_AUTH_INVALID');
  assert.equal(origin.seen.find((r) => r.url === '/x/wrong'), undefined, 'no upstream call');
  assert.equal(open.status, 200);
  assert.equal(b.status, 200, 'SHA-256-crypt');
  assert.equal(c.status, 200, 'SHA-512-crypt with rounds');
  assert.equal(errorCode((await get(`${url}/x`)).text), 'WEIR_ERR_AUTH_MISSING');
  assert.equal((await get(`${url}/x`, basic('nobody', 'ann pw'))).status, 401);
  assert.equal((await get(`${url}/x`, basic('ann', 'ann pw'))).status, 200, 'again (remembered)');

  writeFileSync(users, `dee:${encrypt('dee pw', '$6$deesalt')}\n`);
  assert.equal((await weir.reload()).ok, true);
  assert.equal((await get(`${url}/x`, basic('dee', 'dee pw'))).status, 200, 'a reload reads the htpasswd file again');
  assert.equal((await get(`${url}/x`, basic('ann', 'ann pw'))).status, 401, 'a removed user, remembered or not, is out');
});

test('basic-auth: weir validate gives file:line:column for an unsupported hash and a missing htpasswd', () => {
  const users = join(tmpDir(), 'users.htpasswd');
  writeFileSync(users, 'amy:$apr1$abc$def\n');
  const md5 = validate(`    filter "f" {\n        type "basic-auth"\n        htpasswd "${users}"\n    }`);
  assert.equal(md5.status, 1);
  assert.match(md5.stderr, new RegExp(`${md5.file}:5:9: error WEIR_ERR_PLUGIN_CONFIG: .*htpasswd entry 1: user "amy": \\$apr1\\$ \\(Apache MD5\\) hashes are not accepted`));
  const none = validate(`    filter "f" { type "basic-auth"; realm "api"; }`);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /weir\.kdl:3:\d+: error WEIR_ERR_CONFIG_MISSING/);
});

// ---- jwt ----

const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly key: KeyObject;
}

/** A JWS compact token over `claims`, signed with node:crypto (HS* with `secret`). */
function mint(claims: Record<string, unknown>, k: SigningKey | { alg: string; secret: string; kid?: string }): string {
  const header = { alg: k.alg, typ: 'JWT', ...('kid' in k && k.kid ? { kid: k.kid } : {}) };
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  let sig: Buffer;
  if ('secret' in k) {
    sig = createHmac(`sha${k.alg.slice(2)}`, k.secret).update(input).digest();
  } else {
    const a = k.alg;
    const hash = a === 'EdDSA' ? null : `sha${a.slice(2)}`;
    sig = a.startsWith('PS')
      ? sign(hash, Buffer.from(input), { key: k.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
      : a.startsWith('ES')
        ? sign(hash, Buffer.from(input), { key: k.key, dsaEncoding: 'ieee-p1363' })
        : sign(hash, Buffer.from(input), k.key);
  }
  return `${input}.${b64u(sig)}`;
}

function publicJwk(k: SigningKey): Record<string, unknown> {
  return { ...k.key.export({ format: 'jwk' }), d: undefined, p: undefined, q: undefined, dp: undefined, dq: undefined, qi: undefined, kid: k.kid, alg: k.alg, use: 'sig' };
}

test('jwt: every algorithm through the proxy; claims to headers (client copies removed), sub as auth.subject; expired, wrong audience and issuer, missing claim; unknown kid → JWKS refresh from a loopback server (rate-limited); key rotation; token from cookie and query', async () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const rsaNext = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  // RFC 8037 A.1's Ed25519 key.
  const ed = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }, format: 'jwk' });
  const keys: SigningKey[] = [
    { kid: 'r1', alg: 'RS256', key: rsa }, { kid: 'r1-384', alg: 'RS384', key: rsa }, { kid: 'r1-512', alg: 'RS512', key: rsa },
    { kid: 'ps', alg: 'PS256', key: rsa }, { kid: 'e256', alg: 'ES256', key: p256 }, { kid: 'e384', alg: 'ES384', key: p384 },
    { kid: 'ed', alg: 'EdDSA', key: ed },
  ];
  const next: SigningKey = { kid: 'r2', alg: 'RS256', key: rsaNext };
  let published = keys.map(publicJwk);
  let fetches = 0;
  const idp = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=300' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  const secret = 'a-shared-secret-of-at-least-32-bytes!';
  process.env['WEIR_TEST_JWT_SECRET'] = secret;
  const access: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const line of chunk.toString().split('\n')) if (line) access.push(JSON.parse(line) as Record<string, unknown>); cb(); } });
  try {
    const { url } = await weirOn(`
    filter "auth" {
        type "jwt"
        algorithms "HS256" "HS384" "HS512" "RS256" "RS384" "RS512" "PS256" "ES256" "ES384" "EdDSA"
        jwks-url "http://127.0.0.1:${(idp.address() as AddressInfo).port}/.well-known/jwks.json"
        secret "\${WEIR_TEST_JWT_SECRET}"
        issuer "https://idp.test/"
        audience "api" "api2"
        required-claims "sub"
        clock-skew-secs 30
        claims-to-headers { claim "sub" header="x-user"; claim "roles" header="x-roles"; }
        token-from { header "authorization" prefix="Bearer "; cookie "session"; query "access_token"; }
    }`, `route "r" { matches { path-prefix "/"; }; upstream "o"; filters "auth"; }`, { accessLog: pino({ level: 'info' }, sink) });
    const now = Math.floor(Date.now() / 1000);
    const good = { iss: 'https://idp.test/', aud: ['other', 'api'], sub: 'user-1', roles: ['admin', 'dev'], iat: now, nbf: now - 5, exp: now + 600 };
    const bearer = (t: string) => ({ authorization: `Bearer ${t}`, 'x-user': 'forged', 'x-roles': 'forged' });

    for (const k of [...keys, ...['HS256', 'HS384', 'HS512'].map((alg) => ({ alg, secret }))]) {
      const r = await get(`${url}/ok`, bearer(mint({ ...good, sub: `sub-${k.alg}` }, k)));
      assert.equal(r.status, 200, `${k.alg}: ${r.text}`);
      assert.equal(r.seen!.headers['x-user'], `sub-${k.alg}`, `${k.alg}: the claim, not the client's copy`);
      assert.equal(r.seen!.headers['x-roles'], '["admin","dev"]');
    }
    assert.equal(fetches, 1, 'one JWKS fetch for all of them (cached for its max-age)');
    assert.ok(access.some((l) => l['user'] === 'sub-EdDSA'), 'the access log names the subject');

    const refused = async (token: string, code: string, message: RegExp) => {
      const r = await get(`${url}/no`, bearer(token));
      assert.equal(r.status, 401, `${code}: ${r.text}`);
      assert.equal(errorCode(r.text), code);
      assert.match(String(r.headers['www-authenticate']), /^Bearer error="invalid_token", error_description=/);
      assert.match(r.text, message);
      assert.equal(r.seen, undefined, 'no upstream call');
    };
    await refused(mint({ ...good, exp: now - 31 }, keys[0]!), 'WEIR_ERR_AUTH_EXPIRED', /expired/);
    assert.equal((await get(`${url}/skew`, bearer(mint({ ...good, exp: now - 10 }, keys[0]!)))).status, 200, 'inside clock-skew-secs');
    await refused(mint({ ...good, nbf: now + 120 }, keys[4]!), 'WEIR_ERR_AUTH_NOT_YET_VALID', /nbf/);
    await refused(mint({ ...good, aud: 'someone-else' }, keys[6]!), 'WEIR_ERR_AUTH_CLAIMS', /wrong audience/);
    await refused(mint({ ...good, iss: 'https://evil.test/' }, keys[1]!), 'WEIR_ERR_AUTH_CLAIMS', /wrong issuer/);
    await refused(mint({ ...good, sub: undefined }, keys[2]!), 'WEIR_ERR_AUTH_CLAIMS', /missing claim sub/);
    await refused(mint(good, { alg: 'HS256', secret: 'another-secret-of-at-least-32-bytes' }), 'WEIR_ERR_AUTH_INVALID', /bad signature/);
    await refused(mint(good, { ...keys[0]!, key: rsaNext }), 'WEIR_ERR_AUTH_INVALID', /bad signature/);
    const missing = await get(`${url}/none`);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    assert.equal(errorCode(missing.text), 'WEIR_ERR_AUTH_MISSING');

    assert.equal((await get(`${url}/cookie`, { cookie: `theme=dark; session=${mint(good, keys[5]!)}` })).status, 200, 'token from the cookie');
    assert.equal((await get(`${url}/query?access_token=${mint(good, keys[3]!)}`)).status, 200, 'token from the query');

    // Key rotation at the identity provider: r2 replaces r1. A token with kid r2 makes the
    // plugin fetch the JWKS again at once (an unknown kid), once the last fetch is 5 s old.
    await new Promise((r) => setTimeout(r, 5200));
    published = [publicJwk(next), ...keys.slice(1).map(publicJwk)];
    const rotated = await get(`${url}/rotated`, bearer(mint(good, next)));
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(fetches, 2, 'the unknown kid fetched the JWKS again');
    await refused(mint(good, keys[0]!), 'WEIR_ERR_AUTH_UNKNOWN_KEY', /kid r1/);
    await refused(mint(good, { ...next, kid: 'nope' }), 'WEIR_ERR_AUTH_UNKNOWN_KEY', /kid nope/);
    assert.equal(fetches, 2, 'unknown kids within 5 s of a fetch do not fetch again');
  } finally {
    idp.close();
  }
});

test('jwt: jwks-file and weir validate: keys from the file through the proxy, a changed file reloads; a bad JWKS and a short secret at file:line:column', async () => {
  const k1: SigningKey = { kid: 'f1', alg: 'ES256', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
  const k2: SigningKey = { kid: 'f2', alg: 'ES256', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
  const file = join(tmpDir(), 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [publicJwk(k1)] }));
  const { url } = await weirOn(`filter "auth" { type "jwt"; algorithms "ES256"; jwks-file "${file}"; }`, `route "r" { matches { path-prefix "/"; }; upstream "o"; filters "auth"; }`, { watch: true });
  const exp = Math.floor(Date.now() / 1000) + 600;
  const auth = (k: SigningKey) => ({ authorization: `Bearer ${mint({ sub: k.kid, exp }, k)}` });
  assert.equal((await get(`${url}/`, auth(k1))).status, 200);
  assert.equal(errorCode((await get(`${url}/`, auth(k2))).text), 'WEIR_ERR_AUTH_UNKNOWN_KEY');
  writeFileSync(file, JSON.stringify({ keys: [publicJwk(k2)] }));
  await eventually('the new key accepted after the file changed', async () => (await get(`${url}/`, auth(k2))).status === 200);
  assert.equal((await get(`${url}/`, auth(k1))).status, 401, 'the removed key is out');

  const jwks = join(tmpDir(), 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k', n: 'AQAB', e: 'AQAB' }, { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] }));
  const bad = validate(`    filter "f" {\n        type "jwt"\n        algorithms "ES256"\n        jwks-file "${jwks}"\n    }`);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, new RegExp(`${bad.file}:6:9: error WEIR_ERR_PLUGIN_CONFIG: .*jwks-file: key 2`));
  const short = validate(`    filter "f" {\n        type "jwt"\n        algorithms "HS256"\n        secret "tooshort"\n    }`);
  assert.equal(short.status, 1);
  assert.match(short.stderr, new RegExp(`${short.file}:6:9: error WEIR_ERR_PLUGIN_CONFIG: .*at least 32 bytes`));
  const alg = validate(`    filter "f" { type "jwt"; algorithms "none"; secret "0123456789abcdef0123456789abcdef"; }`);
  assert.equal(alg.status, 1);
  assert.match(alg.stderr, /weir\.kdl:3:\d+: error WEIR_ERR_CONFIG_VALUE/);
});

test('jwt: with a jwks-url, on-tick fetches the JWKS again ahead of its max-age, with no request', async () => {
  const key: SigningKey = { kid: 't1', alg: 'ES256', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
  let fetches = 0;
  const idp = http.createServer((_req, res) => {
    fetches++;
    // 30 s is the shortest max-age the plugin keeps; its timer ticks every 10 s and refreshes 15 s ahead.
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=30' }).end(JSON.stringify({ keys: [publicJwk(key)] }));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  try {
    const { url } = await weirOn(`filter "auth" { type "jwt"; algorithms "ES256"; jwks-url "http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks"; }`, `route "r" { matches { path-prefix "/"; }; upstream "o"; filters "auth"; }`);
    assert.equal((await get(`${url}/`, { authorization: `Bearer ${mint({ sub: 'a', exp: Math.floor(Date.now() / 1000) + 600 }, key)}` })).status, 200);
    const first = fetches;
    assert.ok(first >= 1);
    await eventually('a timer fetch', async () => fetches > first, 40_000);
  } finally {
    idp.close();
  }
});

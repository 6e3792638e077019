/**
 * Properties of path normalisation (fast-check): normalising is idempotent and never leaves
 * `.`/`..` segments (or `//` when slashes are merged), under every policy; and over real
 * sockets, a route's allow/deny decision agrees with the path the origin receives.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Client } from 'undici';
import { normalizePath, ESCAPED_SLASHES, type PathPolicy } from '../../host/src/edge/path.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const PIECES = ['', '.', '..', 'a', 'admin', 'adm', 'in', '%2e', '%2E', '.%2e', '%61', '%41dmin', '%2f', '%2F', '%5c', '\\', '%25', '%252e', '%zz', '%', ';', 'b;x', '..;', '.;p', '~', '%7E', '%c3%a9', '.well-known', '...'];

/** Paths made of tricky pieces joined by slashes. */
const pathArb = fc.array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 8 }).chain((segs) =>
  fc.array(fc.constantFrom('/', '//', '/', '/'), { minLength: segs.length, maxLength: segs.length }).map((seps) => seps.map((s, i) => s + segs[i]).join('') || '/'),
);

const policyArb: fc.Arbitrary<PathPolicy> = fc.record({ mergeSlashes: fc.boolean(), escapedSlashes: fc.constantFrom(...ESCAPED_SLASHES) });

test('normalising is idempotent and leaves no dot segments (and no // when merging)', () => {
  fc.assert(
    fc.property(pathArb, policyArb, (path, policy) => {
      const out = normalizePath(path, policy);
      const p = typeof out === 'string' ? out : out.kind === 'redirect' ? out.location : undefined;
      if (p === undefined) return;
      assert.equal(normalizePath(p, policy), p, `not idempotent: ${path} → ${p}`);
      assert.equal(p.charCodeAt(0), 47);
      const segs = p.split('/').slice(1);
      assert.ok(!segs.includes('.') && !segs.includes('..'), `dot segment left: ${path} → ${p}`);
      if (policy.mergeSlashes) assert.ok(!p.includes('//'), `// left: ${path} → ${p}`);
      assert.ok(!/%(2e|2E|61|7e|7E)/.test(p), `unreserved escape left: ${path} → ${p}`);
      if (policy.escapedSlashes !== 'keep') assert.ok(!/%2F|%5C|\\/i.test(p), `escaped slash left: ${path} → ${p}`);
    }),
    { numRuns: 5000 },
  );
});

let origin: Origin;
let weir: Weir;
let client: Client;

before(async () => {
  origin = await startOrigin();
  weir = (await startWeirWith(`schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; path-normalization { escaped-slashes "decode"; } } }
routes {
    route "deny-admin" { priority 10; matches { path-prefix "/admin"; }; builtin-handler "not-found"; }
    route "all" { matches { path-prefix "/"; }; upstream "origin"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}" } }
system { graceful-shutdown-timeout-secs 1 }
`)).weir;
  client = new Client(weir.url());
});
after(async () => {
  await client.close();
  await weir.close();
  await origin.close();
});

test('over real sockets: denied exactly when the normalised path is under /admin; the origin gets that path', async () => {
  const policy: PathPolicy = { mergeSlashes: true, escapedSlashes: 'decode' };
  await fc.assert(
    fc.asyncProperty(pathArb, async (path) => {
      const before = origin.seen.length;
      const r = await client.request({ method: 'GET', path, headers: { host: 'weir.test' } });
      await r.body.dump();
      const want = normalizePath(path, policy);
      const reached = origin.seen.length > before;
      if (typeof want !== 'string') {
        assert.equal(r.statusCode, 400, path);
        assert.ok(!reached, path);
        return;
      }
      const denied = want.startsWith('/admin');
      assert.equal(r.statusCode, denied ? 404 : 200, `${path} → ${want}`);
      assert.equal(reached, !denied, path);
      if (reached) {
        const got = origin.seen.at(-1)!.url;
        assert.equal(got, want, path);
        assert.ok(!got.startsWith('/admin'), path);
      }
    }),
    { numRuns: 300 },
  );
});

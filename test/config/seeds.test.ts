import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { loadConfig, loadConfigText } from '../../host/src/config/load.ts';
import { fixture, expectDiag } from './helpers.ts';

const seeds = readdirSync(fixture('seeds')).filter((f) => f.endsWith('.kdl') && f !== 'sentinel-roadmap-09-filters.kdl');

for (const name of seeds) {
  test(`seed ${name} validates`, async () => {
    const r = await loadConfig(fixture('seeds', name), { skipFileChecks: true });
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.diagnostics, null, 2));
  });
}

test('seed 09 as written: `filters ["block-countries"]` is rejected at its line and column', async () => {
  const r = await loadConfig(fixture('seeds', 'sentinel-roadmap-09-filters.kdl'), { skipFileChecks: true });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.diagnostics.length, 1);
  const d = expectDiag(r.diagnostics, 'WEIR_ERR_CONFIG_SYNTAX', 31, 17);
  assert.match(d.message, /no list syntax/);
  assert.match(d.hint ?? '', /filters "a" "b"/);
});

test('seed 09 written `filters "block-countries"` passes and references resolve', async () => {
  const text = readFileSync(fixture('seeds', 'sentinel-roadmap-09-filters.kdl'), 'utf8').replace('filters ["block-countries"]', 'filters "block-countries"');
  const r = await loadConfigText(text, fixture('seeds', 'seed-09.kdl'), { skipFileChecks: true });
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(r.config.routes[0]!.filters, ['block-countries']);
  assert.equal(r.config.filters.get('geo-tagging')!.type, 'geo');
  // A route with no upstream is allowed but worth a warning.
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.severity, 'warning');
});

test('seed values are typed and normalised', async () => {
  const r6 = await loadConfig(fixture('seeds', 'sentinel-roadmap-06-upstream.kdl'), { skipFileChecks: true });
  assert.ok(r6.ok);
  const up = r6.config.upstreams.get('backend')!;
  assert.deepEqual(up.connectionPool, { maxConnections: 100, maxIdle: 20, idleTimeoutMs: 60_000, queueTimeoutMs: 10_000, maxLifetimeMs: 3_600_000 });
  assert.deepEqual(up.timeouts, { connectMs: 10_000, requestMs: 60_000, readMs: 30_000, writeMs: 30_000 });

  const r1 = await loadConfig(fixture('seeds', 'sentinel-roadmap-01-listener.kdl'), { skipFileChecks: true });
  assert.ok(r1.ok);
  const l = r1.config.listeners[0]!;
  assert.equal(l.port, 443);
  assert.equal(l.tls!.clientAuth, true);
  assert.deepEqual(l.tls!.sni[0]!.hostnames, ['example.com', 'www.example.com']);

  const r10 = await loadConfig(fixture('seeds', 'sentinel-roadmap-10-upstreams.kdl'), { skipFileChecks: true });
  assert.ok(r10.ok);
  const api = r10.config.upstreams.get('api')!;
  assert.equal(api.loadBalancing, 'peak_ewma');
  assert.deepEqual(api.targets.map((t) => [t.host, t.port, t.weight]), [['backend-1', 8080, 100], ['backend-2', 8080, 100]]);

  const r5 = await loadConfig(fixture('seeds', 'sentinel-roadmap-05-upstream.kdl'), { skipFileChecks: true });
  assert.ok(r5.ok);
  assert.equal(r5.config.upstreams.get('k8s-backend')!.discovery!.args[0], 'kubernetes');

  const r2 = await loadConfig(fixture('seeds', 'sentinel-roadmap-02-cache.kdl'), { skipFileChecks: true });
  assert.ok(r2.ok);
  assert.equal(r2.config.extra.get('cache')!.children.length, 7);
});

test('the admin-api seed expands ${ADMIN_API_TOKEN}, and reports it when unset', async () => {
  const file = fixture('seeds', 'sentinel-0.3.0-draft-01-admin-api.kdl');
  const r = await loadConfig(file, { env: { ADMIN_API_TOKEN: 's3cret' } });
  assert.ok(r.ok);
  const auth = r.config.extra.get('admin-api')!.children.find((c) => c.name === 'auth')!;
  assert.equal(auth.children.find((c) => c.name === 'token')!.args[0], 's3cret');

  const missing = await loadConfig(file, { env: {} });
  assert.equal(missing.ok, false);
  if (!missing.ok) expectDiag(missing.diagnostics, 'WEIR_ERR_CONFIG_MISSING', 6, 15);

  const skipped = await loadConfig(file, { env: {}, skipFileChecks: true });
  assert.ok(skipped.ok);
  const token = skipped.config.extra.get('admin-api')!.children[2]!.children[1]!;
  assert.equal(token.args[0], '${ADMIN_API_TOKEN}');
});

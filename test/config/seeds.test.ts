import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { loadConfig, loadConfigText } from '../../host/src/config/load.ts';
import { fixture, expectDiag } from './helpers.ts';
import { adminSettings } from '../../host/src/admin/settings.ts';

/** Seeds that name features Weir refuses: file → each refusal's [line, column, what its message says]. */
const REFUSED: Record<string, Array<[number, number, RegExp]>> = {
  'sentinel-roadmap-06-upstream.kdl': [[5, 9, /`max-idle` is refused: .*`idle-timeout` instead/]],
  'sentinel-roadmap-09-filters-fixed.kdl': [
    [10, 9, /`cache-ttl-secs` is refused: lookups are cached per address/],
    [24, 23, /`database-type` `ip2location` is refused: Weir reads MaxMind-format databases only/],
  ],
};

const seeds = readdirSync(fixture('seeds')).filter((f) => f.endsWith('.kdl') && f !== 'sentinel-roadmap-09-filters.kdl' && !(f in REFUSED));

for (const name of seeds) {
  test(`seed ${name} validates`, async () => {
    const r = await loadConfig(fixture('seeds', name), { skipFileChecks: true });
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.diagnostics, null, 2));
  });
}

for (const [name, refusals] of Object.entries(REFUSED)) {
  test(`seed ${name} is refused with WEIR_ERR_CONFIG_UNSUPPORTED at ${refusals.map(([l, c]) => `${l}:${c}`).join(', ')}`, async () => {
    const r = await loadConfig(fixture('seeds', name), { skipFileChecks: true });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.diagnostics.filter((d) => d.severity !== 'warning').map((d) => d.code), refusals.map(() => 'WEIR_ERR_CONFIG_UNSUPPORTED'));
    for (const [line, column, message] of refusals) assert.match(expectDiag(r.diagnostics, 'WEIR_ERR_CONFIG_UNSUPPORTED', line, column).message, message);
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
  const text = readFileSync(fixture('seeds', 'sentinel-roadmap-09-filters.kdl'), 'utf8')
    .replace('filters ["block-countries"]', 'filters "block-countries"')
    .replace(/^\s*cache-ttl-secs 7200\n/m, '')
    .replace('database-type "ip2location"', 'database-type "mmdb"');
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
  const text = readFileSync(fixture('seeds', 'sentinel-roadmap-06-upstream.kdl'), 'utf8').replace(/^\s*max-idle 20\n/m, '');
  const r6 = await loadConfigText(text, fixture('seeds', 'seed-06.kdl'), { skipFileChecks: true });
  assert.ok(r6.ok);
  const up = r6.config.upstreams.get('backend')!;
  assert.deepEqual(up.connectionPool, { maxConnections: 100, idleTimeoutMs: 60_000, queueTimeoutMs: 10_000, maxLifetimeMs: 3_600_000, maxRequests: 0, maxPendingRequests: 0 });
  assert.deepEqual(up.timeouts, { connectMs: 10_000, requestMs: 60_000, readMs: 30_000, writeMs: 30_000 });

  const r1 = await loadConfig(fixture('seeds', 'sentinel-roadmap-01-listener.kdl'), { skipFileChecks: true });
  assert.ok(r1.ok);
  const l = r1.config.listeners[0]!;
  assert.equal(l.port, 443);
  assert.equal(l.tls!.clientAuth, true);
  assert.deepEqual(l.tls!.sni[0]!.hostnames, ['example.com', 'www.example.com']);

  const t10 = readFileSync(fixture('seeds', 'sentinel-roadmap-10-upstreams.kdl'), 'utf8').replace('"peak_ewma"', '"weighted"');
  const r10 = await loadConfigText(t10, fixture('seeds', 'seed-10.kdl'), { skipFileChecks: true });
  assert.ok(r10.ok);
  const api = r10.config.upstreams.get('api')!;
  assert.equal(api.loadBalancing, 'round_robin', '`weighted` is loaded as round_robin');
  assert.deepEqual(api.targets.map((t) => [t.host, t.port, t.weight]), [['backend-1', 8080, 100], ['backend-2', 8080, 100]]);
});

test('the admin-api seed loads with ${ADMIN_API_TOKEN} set, and names the unset variable without it', async () => {
  const r = await loadConfig(fixture('seeds', 'sentinel-0.3.0-draft-01-admin-api.kdl'), { env: { ADMIN_API_TOKEN: 's3cret' } });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.diagnostics));
  const admin = adminSettings(r.config.adminApi)!;
  assert.equal(admin.address, '127.0.0.1:9901');
  assert.deepEqual([admin.auth.type, admin.auth.token], ['bearer', 's3cret']);
  const unset = await loadConfig(fixture('seeds', 'sentinel-0.3.0-draft-01-admin-api.kdl'), { env: {} });
  assert.equal(unset.ok, false);
  if (!unset.ok) assert.match(unset.diagnostics.map((d) => d.message).join('\n'), /ADMIN_API_TOKEN/);
});

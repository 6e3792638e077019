import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { loadConfig, loadConfigText, formatDiagnostics } from '../../host/src/config/load.ts';
import { DEFAULT_CONFIG_KDL, DEFAULTS } from '../../host/src/config/defaults.ts';
import { fixture, ok, expectDiag } from './helpers.ts';

test('a directory loads every .kdl file, in name order', async () => {
  const r = await loadConfig(fixture('dir'));
  assert.ok(r.ok, r.ok ? '' : formatDiagnostics(r.diagnostics));
  assert.deepEqual(r.config.files, [fixture('dir', '10-upstreams.kdl'), fixture('dir', '20-routes.kdl')]);
  assert.equal(r.config.routes[0]!.upstream, 'api');
});

test('include is relative to the including file; included paths to their own file', async () => {
  const r = await loadConfig(fixture('include', 'main.kdl'));
  assert.ok(r.ok, r.ok ? '' : formatDiagnostics(r.diagnostics));
  assert.deepEqual(r.config.files, [fixture('include', 'main.kdl'), fixture('include', 'parts', 'upstreams.kdl')]);
  assert.equal(r.config.upstreams.get('from-include')!.tls!.caFile, fixture('files', 'ca.crt'));
});

test('include cycles and missing includes are reported at the include', async () => {
  const cyc = await loadConfig(fixture('include', 'cycle-a.kdl'));
  assert.equal(cyc.ok, false);
  if (!cyc.ok) {
    const d = expectDiag(cyc.diagnostics, 'WEIR_ERR_CONFIG_INCLUDE', 1, 1);
    assert.equal(d.loc!.file, fixture('include', 'cycle-b.kdl'));
    assert.match(d.message, /cycle/);
  }
  const miss = await loadConfig(fixture('include', 'missing.kdl'));
  assert.equal(miss.ok, false);
  if (!miss.ok) expectDiag(miss.diagnostics, 'WEIR_ERR_CONFIG_INCLUDE', 2, 1);
});

test('an include of a device, a FIFO or an oversized file is refused at the include, not read (found by the KDL fuzzer)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-include-'));
  const fifo = join(dir, 'pipe.kdl');
  execFileSync('mkfifo', [fifo]);
  const big = join(dir, 'big.kdl');
  writeFileSync(big, '');
  truncateSync(big, 17 * 1024 * 1024);
  for (const [path, said] of [['/dev/zero', /is not a regular file/], [fifo, /is not a regular file/], [big, /at most 16777216/]] as const) {
    const r = await loadConfigText(`schema-version "1.0"\ninclude "${path}"\n`, join(dir, 'weir.kdl'));
    assert.equal(r.ok, false, path);
    if (r.ok) continue;
    const d = r.diagnostics.find((x) => x.code === 'WEIR_ERR_CONFIG_INCLUDE');
    assert.ok(d, formatDiagnostics(r.diagnostics));
    assert.match(d.message, said);
    assert.deepEqual([d.loc!.line, d.loc!.column], [2, 1]);
  }
  // A directory of configs skips nothing silently either: a FIFO named *.kdl there is refused too.
  const r = await loadConfig(dir);
  assert.equal(r.ok, false);
  if (!r.ok) assert.ok(r.diagnostics.some((x) => x.code === 'WEIR_ERR_CONFIG_FILE' && /pipe\.kdl` is not a regular file/.test(x.message)), formatDiagnostics(r.diagnostics));
});

test('an empty config file is refused; an empty include or an empty file of a config directory is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-empty-'));
  writeFileSync(join(dir, 'weir.kdl'), ' \n');
  const r = await loadConfig(join(dir, 'weir.kdl'));
  assert.equal(r.ok, false);
  if (!r.ok) assert.ok(r.diagnostics.some((d) => d.code === 'WEIR_ERR_CONFIG_FILE' && /is empty/.test(d.message)), formatDiagnostics(r.diagnostics));
  writeFileSync(join(dir, 'part.kdl'), '');
  const inc = await loadConfigText('schema-version "1.0"\ninclude "part.kdl"\n', join(dir, 'main.kdl'));
  assert.ok(inc.ok, inc.ok ? '' : formatDiagnostics(inc.diagnostics));
  const d = mkdtempSync(join(tmpdir(), 'weir-empty-dir-'));
  writeFileSync(join(d, '00-empty.kdl'), '');
  writeFileSync(join(d, '10-main.kdl'), 'schema-version "1.0"\n');
  const all = await loadConfig(d);
  assert.ok(all.ok, all.ok ? '' : formatDiagnostics(all.diagnostics));
});

test('errors inside an included file carry that file\'s name', async () => {
  const r = await loadConfig(fixture('include', 'bad-child.kdl'));
  assert.equal(r.ok, false);
  if (r.ok) return;
  const d = expectDiag(r.diagnostics, 'WEIR_ERR_CONFIG_TYPE', 2, 20);
  assert.equal(d.loc!.file, fixture('include', 'parts', 'broken.kdl'));
});

test('a missing config file is a WEIR_ERR_CONFIG_FILE diagnostic', async () => {
  const r = await loadConfig(fixture('does-not-exist.kdl'));
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.diagnostics[0]!.code, 'WEIR_ERR_CONFIG_FILE');
});

test('the snapshot is deeply frozen, maps included', async () => {
  const c = await ok('upstream "u" { target "127.0.0.1:1"; }\nroute "r" { upstream "u"; matches { path "/"; }; }\n');
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.routes));
  assert.ok(Object.isFrozen(c.routes[0]!.matches[0]!.paths));
  assert.ok(Object.isFrozen(c.upstreams.get('u')!.targets[0]));
  assert.throws(() => (c.upstreams as Map<string, unknown>).set('x', {}), TypeError);
  assert.throws(() => (c.upstreams as Map<string, unknown>).delete('u'), TypeError);
  assert.throws(() => {
    (c.limits as { maxBodyBytes: number }).maxBodyBytes = 1;
  }, TypeError);
});

test('routes are sorted by priority, highest first, ties in written order', async () => {
  const c = await ok(`routes {
    route "a" { builtin-handler "status"; }
    route "b" { priority 5; builtin-handler "status"; }
    route "c" { builtin-handler "status"; }
    route "d" { priority 5; builtin-handler "status"; }
    route "e" { priority -1; builtin-handler "status"; }
}
`);
  assert.deepEqual(c.routes.map((r) => r.name), ['b', 'd', 'a', 'c', 'e']);
});

test('defaults apply when a block is empty or absent', async () => {
  const c = await ok('upstream "u" { target "h:1"; retry {}; }'.replace(' retry {};', ''));
  assert.deepEqual(c.limits, DEFAULTS.limits);
  assert.equal(c.listeners.length, 1);
  assert.equal(c.listeners[0]!.address, DEFAULTS.listener.address);
  assert.equal(c.upstreams.get('u')!.loadBalancing, 'round_robin');
  assert.deepEqual(c.upstreams.get('u')!.connectionPool, DEFAULTS.connectionPool);
  const withRetry = await ok('route "r" { builtin-handler "status"; policies { retry {}; }; }');
  assert.equal(withRetry.routes[0]!.policies.retry.maxAttempts, 2);
  assert.deepEqual(withRetry.routes[0]!.policies.retry.retryOn, ['connect-failure']);
  const noRetry = await ok('route "r" { builtin-handler "status"; }');
  assert.equal(noRetry.routes[0]!.policies.retry.maxAttempts, 1);
  assert.equal(c.plugins.size, 0);
});

test('the embedded default config loads', async () => {
  const r = await loadConfigText(DEFAULT_CONFIG_KDL, '<default>');
  assert.ok(r.ok, r.ok ? '' : formatDiagnostics(r.diagnostics));
  assert.deepEqual(r.config.routes.map((x) => x.builtinHandler), ['health', 'ready', 'metrics']);
  assert.equal(r.warnings.length, 0);
});

test('formatDiagnostics prints file:line:col, severity, code, message and hint', () => {
  const text = formatDiagnostics([
    { code: 'WEIR_ERR_CONFIG_UNKNOWN_KEY', message: 'unknown key `x`', loc: { file: 'weir.kdl', line: 12, column: 5 }, hint: 'did you mean `y`?' },
    { code: 'WEIR_ERR_CONFIG_MISSING', message: 'm', loc: undefined, hint: undefined, severity: 'warning' },
  ]);
  assert.equal(text, 'weir.kdl:12:5: error WEIR_ERR_CONFIG_UNKNOWN_KEY: unknown key `x` (did you mean `y`?)\nwarning WEIR_ERR_CONFIG_MISSING: m');
});

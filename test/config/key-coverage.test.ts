// Enforces "no key without an effect": test/config/key-coverage.ts must name, for every key
// of the schema, tests that exist; adding a key without a test fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allKeyPaths, unsupportedKeyPaths } from '../../host/src/config/schema.ts';
import { KEY_COVERAGE } from './key-coverage.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('every schema key has a row in test/config/key-coverage.ts', () => {
  const missing = allKeyPaths().filter((k) => !Object.hasOwn(KEY_COVERAGE, k) || KEY_COVERAGE[k]!.length === 0);
  assert.deepEqual(missing, [], 'add a row (and a behaviour test) for each of these keys');
});

test('no row names a key the schema does not have', () => {
  const keys = new Set(allKeyPaths());
  assert.deepEqual(Object.keys(KEY_COVERAGE).filter((k) => !keys.has(k)), []);
});

test('every row names an existing test file that contains the named test', () => {
  const bad: string[] = [];
  const texts = new Map<string, string>();
  for (const [key, refs] of Object.entries(KEY_COVERAGE)) {
    for (const r of refs) {
      const path = ROOT + r.file;
      if (!r.file.endsWith('.test.ts') || !existsSync(path)) {
        bad.push(`${key}: no test file ${r.file}`);
        continue;
      }
      let text = texts.get(path);
      if (text === undefined) texts.set(path, (text = readFileSync(path, 'utf8')));
      if (!text.includes(r.test)) bad.push(`${key}: ${r.file} has no test named like ${JSON.stringify(r.test)}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('refused keys point at a test that shows them refused', () => {
  // A refused key's row must name a test that mentions the refusal code, so "refused" is tested too.
  const bad: string[] = [];
  for (const k of unsupportedKeyPaths().filter((p) => !p.includes('=') || p.endsWith('='))) {
    const refs = KEY_COVERAGE[k] ?? [];
    if (!refs.some((r) => readFileSync(ROOT + r.file, 'utf8').includes('WEIR_ERR_CONFIG_UNSUPPORTED'))) bad.push(k);
  }
  assert.deepEqual(bad, []);
});

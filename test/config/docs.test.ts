import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOCS_PATH, generateDocs } from '../../host/src/config/gen-docs.ts';
import { allKeyPaths } from '../../host/src/config/schema.ts';
import { SENTINEL_DOCS_PATH, generateSentinelDocs } from '../../host/src/config/gen-sentinel.ts';

test('docs/configuration.md is up to date (regenerate: node host/src/config/gen-docs.ts)', () => {
  assert.equal(readFileSync(DOCS_PATH, 'utf8'), generateDocs());
});

test('docs/configuration.md mentions every key', () => {
  const doc = readFileSync(DOCS_PATH, 'utf8');
  for (const path of allKeyPaths()) {
    const key = path.replace(/=$/, '').split(/[.\]]/).at(-1)!;
    assert.ok(doc.includes(`${key}`), `docs lack ${path}`);
  }
});

test('docs/sentinel.md is up to date (regenerate: npm run gen)', () => {
  assert.equal(readFileSync(SENTINEL_DOCS_PATH, 'utf8'), generateSentinelDocs());
});

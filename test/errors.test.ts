import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS, WeirError } from '../host/src/errors.ts';
import { renderErrorsDoc } from '../host/src/errors-doc.ts';

test('docs/errors.md lists exactly the codes of the error table (regenerate: node host/src/errors-doc.ts > docs/errors.md)', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const inDoc = new Set([...doc.matchAll(/`(WEIR_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]));
  assert.deepEqual([...inDoc].sort(), Object.keys(ERRORS).sort());
  assert.equal(doc, renderErrorsDoc());
});

test('every code has a valid status and source', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.match(code, /^WEIR_ERR_[A-Z0-9_]+$/);
    assert.ok(spec.status === 0 || (spec.status >= 400 && spec.status <= 599), code);
    assert.ok(['downstream', 'upstream', 'plugin', 'config', 'internal'].includes(spec.source), code);
  }
});

test('WeirError instanceof works across module copies (Symbol.for brand)', async () => {
  const copy = (await import(`../host/src/errors.ts?copy=${Date.now()}`)) as typeof import('../host/src/errors.ts');
  const e = new copy.WeirError('WEIR_ERR_NO_ROUTE');
  assert.ok(e instanceof WeirError);
  assert.equal(e.status, 404);
  assert.ok(!(new Error('x') instanceof WeirError));
});

/**
 * plugin-abi/generated/ must be exactly what the generator makes from wit/weir.wit.
 * If this fails, regenerate: node_modules/.bin/node plugin-abi/src/gen/main.ts
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { OUT_DIR, WIT_PATH, generate } from '../../plugin-abi/src/gen/main.ts';

test('generated files are up to date with wit/weir.wit', () => {
  const files = generate(readFileSync(WIT_PATH, 'utf8'));
  assert.deepStrictEqual(readdirSync(OUT_DIR).sort(), Object.keys(files).sort(), 'plugin-abi/generated/ has missing or extra files; run node_modules/.bin/node plugin-abi/src/gen/main.ts');
  for (const [name, text] of Object.entries(files)) {
    assert.ok(readFileSync(OUT_DIR + name, 'utf8') === text, `plugin-abi/generated/${name} is stale; run node_modules/.bin/node plugin-abi/src/gen/main.ts`);
  }
});

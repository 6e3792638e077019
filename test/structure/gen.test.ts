/**
 * One `npm run gen` makes every generated file; the committed files must be what it makes,
 * and the pipeline's PHASES must be the WIT's `hook` enum, in the same order.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GENERATORS, ROOT, runGenerators } from '../../build/gen.ts';
import { PHASES } from '../../host/src/pipeline/phases.ts';
import { parseWit } from '../../plugin-abi/src/gen/wit.ts';

test('npm run gen runs the generators of the ABI, both SDKs and the generated docs (configuration, errors, metrics), and every committed output is current', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['gen'], 'node build/gen.ts');
  const paths = GENERATORS.flatMap((g) => Object.keys(g.run(readFileSync(`${ROOT}wit/weir.wit`, 'utf8'))).map((p) => p.slice(ROOT.length)));
  for (const p of ['plugin-abi/generated/codec.ts', 'plugin-abi/generated/layout.json', 'sdk-assemblyscript/assembly/generated/abi.ts', 'sdk-rust-guest/src/abi.rs', 'docs/configuration.md', 'docs/errors.md', 'docs/metrics.md']) {
    assert.ok(paths.includes(p), `npm run gen does not make ${p}`);
  }
  assert.deepEqual(runGenerators(false), [], 'stale generated files: run npm run gen');
});

test('PHASES (host/src/pipeline/phases.ts) and the WIT hook enum are the same list in the same order (the enum ends with on-tick, the timer)', () => {
  const wit = parseWit(readFileSync(`${ROOT}wit/weir.wit`, 'utf8'));
  const hook = wit.types.get('hook');
  assert.ok(hook !== undefined && hook.kind === 'enum', 'wit/weir.wit has no enum hook');
  // on-tick is a hook but no request phase: it runs on a timer, outside any exchange.
  assert.deepEqual([...PHASES.map((p) => p.name), 'on-tick'], hook.cases.map((c) => c.name));
  // Every hook is also a world export of the same name.
  const world = wit.worlds.find((w) => w.name === 'plugin')!;
  for (const p of PHASES) assert.ok(world.exports.some((f) => f.name === p.name), `world plugin exports no ${p.name}`);
});

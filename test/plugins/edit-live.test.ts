// Edit → live: Weir runs with a plugin built from an AssemblyScript project; the author
// edits the source and runs `weir plugin build`; the running proxy swaps the new code in.
// Reports the time from build start to the first response served by the new code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('edit an AssemblyScript plugin, weir plugin build, and the running proxy serves the new code', async (t) => {
  const dir = join(tmpDir(), 'add-header');
  cpSync(new URL('../../examples/add-header/as', import.meta.url), dir, { recursive: true, filter: (src) => !src.includes('/build') });
  const { outFile } = await buildPlugin(dir, { log: () => {} });
  const origin = await startOrigin();
  const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "add-header" { path "${outFile}"; config { header "x-served-by" "weir"; } } }
filters { filter "add-header" { type "wasm"; plugin "add-header"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "o"; filters "add-header"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`);
  cleanups.push(() => origin.close(), () => weir.close());
  const before = await request(url);
  await before.body.dump();
  assert.equal(before.headers['x-served-by'], 'weir');
  assert.equal(before.headers['x-edited'], undefined);

  // The edit: one more header in the hook.
  const src = join(dir, 'assembly/index.ts');
  const code = readFileSync(src, 'utf8');
  const edited = code.replace('return Decision.continue();', 'response.setHeader("x-edited", "yes");\n    return Decision.continue();');
  assert.notEqual(edited, code);
  writeFileSync(src, edited);

  const started = performance.now();
  await buildPlugin(dir, { log: () => {} });
  const built = performance.now() - started;
  let live = -1;
  while (performance.now() - started < 10_000) {
    const res = await request(url);
    await res.body.dump();
    if (res.headers['x-edited'] === 'yes') {
      live = performance.now() - started;
      assert.equal(res.headers['x-served-by'], 'weir', 'the new version got the same config');
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(live > 0, 'the edited code never went live');
  t.diagnostic(`edit → live: build ${Math.round(built)} ms, first response from the new code ${Math.round(live)} ms after the build started`);
});

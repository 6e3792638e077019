// on-tick through the real proxy: a plugin built by each SDK counts its ticks in the store
// and answers requests with the count; the count grows while the proxy runs, inline and
// worker-isolated; after a hot swap only the new version ticks; a tick that traps is logged
// and counted, and the proxy keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
import { skipReason } from '../sdk-rust/rust-echo.ts';
import { isWeirError } from '../../host/src/errors.ts';
import { LocalStore } from '../../host/src/store/local.ts';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const SDK_RUST = fileURLToPath(new URL('../../sdk-rust-guest/', import.meta.url));
const SOURCES = { as: 'assembly/index.ts', rust: 'src/lib.rs' } as const;
type Lang = keyof typeof SOURCES;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A copy of the ticker fixture of `lang` in a temp dir (the Rust one names the SDK by absolute path). */
function project(lang: Lang): string {
  const dir = join(tmpDir('weir-tick-'), 'ticker');
  cpSync(join(FIXTURES, lang, 'ticker'), dir, { recursive: true, filter: (src) => !src.includes('/build') && !src.includes('/target') });
  if (lang === 'rust') {
    const toml = join(dir, 'Cargo.toml');
    writeFileSync(toml, readFileSync(toml, 'utf8').replace(/path = "[^"]*"/, `path = ${JSON.stringify(SDK_RUST)}`));
  }
  return dir;
}

/** Rewrites the project so its ticks count under `ticks-b`, and rebuilds it in place. */
async function rebuildAsB(lang: Lang, dir: string): Promise<void> {
  const src = join(dir, SOURCES[lang]);
  const code = readFileSync(src, 'utf8');
  const edited = code.replace(/(const TICK_KEY[^=]*= )"ticks-a"/, '$1"ticks-b"');
  assert.notEqual(edited, code);
  writeFileSync(src, edited);
  await buildPlugin(dir, { log: () => {} });
}

async function counts(url: string): Promise<{ a: number; b: number }> {
  const res = await request(`${url}/t`);
  await res.body.dump();
  assert.equal(res.statusCode, 200);
  return { a: Number(res.headers['x-ticks-a']), b: Number(res.headers['x-ticks-b']) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const start = performance.now();
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (performance.now() - start > ms) assert.fail(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await sleep(25);
  }
}

const rustSkip = await skipReason();

for (const lang of ['as', 'rust'] as const) {
  for (const isolation of ['inline', 'worker'] as const) {
    test(`on-tick runs every tick-ms and counts in the store; after a hot swap only the new version ticks (${lang}, ${isolation})`, { skip: lang === 'rust' ? rustSkip : false }, async (t) => {
      const dir = project(lang);
      const { outFile } = await buildPlugin(dir, { log: () => {} });
      const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "ticker" { path "${outFile}"; isolation "${isolation}"; tick-ms 40; } }
filters { filter "ticker" { type "wasm"; plugin "ticker"; } }
routes { route "t" { matches { path-prefix "/t"; }; upstream "o"; filters "ticker"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }`);
      try {

      const first = await until('ticks-a after start', () => counts(url), (c) => c.a >= 3);
      assert.equal(first.b, 0);
      // Grows over time (a trend, not a rate: the machine is shared).
      const later = await until('ticks-a growing', () => counts(url), (c) => c.a >= first.a + 3);
      t.diagnostic(`ticks-a ${first.a} → ${later.a}`);

      await rebuildAsB(lang, dir);
      await until('ticks-b after the swap', () => counts(url), (c) => c.b >= 2);
      const swapped = await counts(url);
      await sleep(400); // ten periods
      const end = await counts(url);
      assert.equal(end.a, swapped.a, 'the old version still ticks after the swap');
      assert.ok(end.b > swapped.b, `the new version stopped ticking (${swapped.b} → ${end.b})`);
      t.diagnostic(`after the swap: ticks-a stays ${end.a}, ticks-b ${swapped.b} → ${end.b} in 400 ms`);
      } finally {
        await weir.close();
      }
    });
  }
}

for (const isolation of ['inline', 'worker'] as const) {
  test(`a tick refreshes the store through http-callout (the JSPI path; the JWKS pattern), ${isolation}`, async () => {
    let version = 1;
    const origin = await startOrigin((_req, res) => res.end(`doc-v${version}`));
    const dir = join(tmpDir('weir-tick-'), 'refresher');
    cpSync(join(FIXTURES, 'as', 'refresher'), dir, { recursive: true });
    const { outFile } = await buildPlugin(dir, { log: () => {} });
    const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "refresher" { path "${outFile}"; isolation "${isolation}"; tick-ms 40; config { url "${origin.url}/jwks"; } } }
filters { filter "refresher" { type "wasm"; plugin "refresher"; } }
routes { route "t" { matches { path-prefix "/"; }; upstream "o"; filters "refresher"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }`);
    try {
      const doc = async (): Promise<string> => {
        const res = await request(url);
        await res.body.dump();
        return String(res.headers['x-doc']);
      };
      await until('the first fetch', doc, (d) => d === 'doc-v1');
      version = 2;
      await until('the refreshed document', doc, (d) => d === 'doc-v2');
      assert.ok(origin.seen.length >= 2 && origin.seen.every((r) => r.url === '/jwks'), `the origin saw ${origin.seen.length} fetches`);
    } finally {
      await weir.close();
      await origin.close();
    }
  });
}

test('ticks stop when a reload leaves the plugin unused, and at shutdown (the store, outliving the proxy, stops counting)', async () => {
  const store = new LocalStore();
  const ticks = (): number => Number(store.counterAdd('ticker\u0000ticks-a', 0, 315_360_000_000));
  const dir = project('as');
  const { outFile } = await buildPlugin(dir, { log: () => {} });
  const listeners = 'listeners { listener "main" { address "127.0.0.1:0"; } }\nupstreams { upstream "o" { target "127.0.0.1:9"; } }';
  const withTicker = `${listeners}
plugins { plugin "ticker" { path "${outFile}"; tick-ms 20; } }
filters { filter "ticker" { type "wasm"; plugin "ticker"; } }
routes { route "t" { matches { path-prefix "/"; }; upstream "o"; filters "ticker"; } }`;
  // Still defined, no longer used by any filter: it stops ticking too.
  const unused = `${listeners}
plugins { plugin "ticker" { path "${outFile}"; tick-ms 20; } }
routes { route "t" { matches { path-prefix "/"; }; upstream "o"; } }`;
  const { weir, file } = await startWeirWith(withTicker, { store });
  try {
    await until('ticks', async () => ticks(), (n) => n >= 3);
    writeFileSync(file, unused);
    const r = await weir.reload();
    assert.ok(r.ok, JSON.stringify(r));
    const dropped = ticks();
    await sleep(200); // ten periods
    assert.equal(ticks(), dropped, 'a plugin no filter uses any more still ticks');
    // Back in, then shutdown.
    writeFileSync(file, withTicker);
    assert.ok((await weir.reload()).ok);
    await until('ticks after the plugin is back', async () => ticks(), (n) => n >= dropped + 3);
  } finally {
    await weir.close();
  }
  const closed = ticks();
  await sleep(200);
  assert.equal(ticks(), closed, 'the plugin still ticks after shutdown');
  store.close();
});

test('a tick that traps is logged and counted (weir_plugin_errors_total hook on-tick) and the proxy keeps serving', async () => {
  const dir = project('as');
  const { outFile } = await buildPlugin(dir, { log: () => {} });
  const origin = await startOrigin();
  const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "ticker" { path "${outFile}"; tick-ms 40; config { trap; } } }
filters { filter "ticker" { type "wasm"; plugin "ticker"; failure-mode "open"; } }
routes {
  route "t" { matches { path-prefix "/t"; }; upstream "o"; filters "ticker"; }
  route "plain" { matches { path-prefix "/"; }; upstream "o"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`);
  cleanups.push(() => origin.close(), () => weir.close());
  const text = await until('on-tick traps counted', () => weir.metrics.registry.metrics(), (m) => /weir_plugin_errors_total\{plugin="ticker",hook="on-tick",kind="trap"\} [2-9]/.test(m));
  assert.match(text, /weir_plugin_calls_total\{plugin="ticker",hook="on-tick"\} \d+/);
  const res = await request(`${url}/plain`);
  await res.body.dump();
  assert.equal(res.statusCode, 200, 'the proxy serves other routes');
});

test('tick-ms on a plugin whose describe does not list on-tick is refused at load (WEIR_ERR_PLUGIN_CONFIG)', async () => {
  const dir = project('as');
  const src = join(dir, SOURCES.as);
  writeFileSync(src, readFileSync(src, 'utf8').replace('this.hooks = [Hook.OnRequestHeaders, Hook.OnTick];', 'this.hooks = [Hook.OnRequestHeaders];'));
  const { outFile } = await buildPlugin(dir, { log: () => {} });
  const err = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "ticker" { path "${outFile}"; tick-ms 40; } }
filters { filter "ticker" { type "wasm"; plugin "ticker"; } }
routes { route "t" { matches { path-prefix "/"; }; upstream "o"; filters "ticker"; } }
upstreams { upstream "o" { target "127.0.0.1:9"; } }`).then(() => undefined, (e: unknown) => e);
  assert.ok(isWeirError(err), `expected a WeirError, got ${String(err)}`);
  assert.equal(err.code, 'WEIR_ERR_PLUGIN_CONFIG');
  assert.match(err.message, /tick-ms.*on-tick/);
});

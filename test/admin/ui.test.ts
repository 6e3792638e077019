// The admin UI in a real browser: Debian's chromium driven by playwright-core. Asserts on
// what the page renders from the live event stream, clicks Drain and checks the API saw it,
// and saves a screenshot to test-results/admin-ui.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startOrigin } from '../helpers/origin.ts';
import { TOKEN, eventually, startAdmin } from './helpers.ts';

const CHROMIUM = process.env['WEIR_CHROMIUM'] ?? '/usr/bin/chromium';
const RESULTS = new URL('../../test-results/', import.meta.url).pathname;

test('admin UI: live route numbers, upstream targets, config; the Drain button drains through the API; screenshot saved', { skip: !existsSync(CHROMIUM) && `no chromium at ${CHROMIUM}` }, async (t) => {
  const a1 = await startOrigin();
  const a2 = await startOrigin();
  const a = await startAdmin([a1.port, a2.port]);
  let browser: Browser | undefined;
  // Traffic while the page watches, so the route row has numbers (stopped before anything closes).
  let stop = false;
  const load = (async () => {
    while (!stop) await (await fetch(`${a.proxy}/x`)).text();
  })();
  t.after(async () => {
    stop = true;
    await load;
    await browser?.close();
    await a.close();
    await a1.close();
    await a2.close();
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${a.base}/ui/#token=${TOKEN}`);
  // The token moved out of the address bar into session storage.
  assert.equal(new URL(page.url()).hash, '');
  await page.locator('#conn.live').waitFor({ timeout: 30_000 });
  const row = page.locator('#routes tr[data-route="default"]');
  await row.waitFor({ timeout: 30_000 });
  await eventually(async () => Number(await row.locator('td.total').textContent()) > 0 && Number(await row.locator('td.rps').textContent()) > 0, 'a request rate on the default route', 30_000);
  const target = `127.0.0.1:${a1.port}`;
  const targetRow = page.locator(`.upstream[data-upstream="origin"] tr[data-target="${target}"]`);
  await targetRow.waitFor();
  assert.match((await targetRow.locator('td.state').textContent()) ?? '', /healthy/);
  await page.locator('#config pre.kdl span.c', { hasText: '// the origin pool' }).waitFor();
  assert.ok(await page.locator('#config pre.kdl span.s').count() > 3, 'strings are highlighted');

  await targetRow.locator('button.drain').click();
  await eventually(async () => a.weir.core.isDraining('origin', target), 'the drain to reach the proxy', 15_000);
  await page.locator(`.upstream tr[data-target="${target}"] td.state.draining`).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator(`.upstream tr[data-target="${target}"] button.drain`).textContent(), 'Resume');
  const api = await a.call('GET', '/api/v1/upstreams');
  assert.equal(api.json.upstreams[0].targets.find((x: { address: string }) => x.address === target).draining, true);
  const seenBefore = a1.seen.length;
  for (let i = 0; i < 5; i++) await (await fetch(`${a.proxy}/x`)).text();
  assert.equal(a1.seen.length, seenBefore, 'the drained target takes no new requests');

  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: `${RESULTS}admin-ui.png`, fullPage: true });
  assert.ok(existsSync(`${RESULTS}admin-ui.png`));
  assert.deepEqual(errors, []);
});

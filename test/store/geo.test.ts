import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openGeoDb } from '../../host/src/geo/geo.ts';

test('country lookups from the bundled database', async () => {
  const geo = await openGeoDb();
  assert.equal(geo.country('8.8.8.8'), 'US');
  assert.equal(geo.country('::ffff:8.8.8.8'), 'US');
  assert.equal(geo.country('81.2.69.160'), 'GB');
  assert.equal(geo.country('127.0.0.1'), undefined);
  assert.equal(geo.country('not-an-ip'), undefined);
  assert.equal(await openGeoDb(), geo, 'readers are shared per file');
});

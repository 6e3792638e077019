// The OpenAPI document and the router cannot drift: every route the router serves is in the
// document with its method, and every documented operation is a route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUTES, matchRoute } from '../../host/src/admin/api.ts';
import { OPENAPI } from '../../host/src/admin/openapi.ts';
import { startOrigin } from '../helpers/origin.ts';
import { startAdmin } from './helpers.ts';

const documented = (): string[] => Object.entries(OPENAPI.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
const routed = (): string[] => ROUTES.map((r) => `${r.method} ${r.path}`).sort();

test('every admin route is in the OpenAPI document and every documented operation is a route', () => {
  assert.deepEqual(routed(), documented());
  for (const [path, ops] of Object.entries(OPENAPI.paths)) {
    for (const [method, op] of Object.entries(ops as Record<string, { parameters?: Array<{ name: string }> }>)) {
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      assert.deepEqual((op.parameters ?? []).map((p) => p.name), params, `${method} ${path}: path parameters documented`);
      const concrete = path.replace(/\{\w+\}/g, 'x');
      const found = matchRoute(method.toUpperCase(), concrete);
      assert.ok(found && 'route' in found, `${method} ${path} reaches a handler`);
    }
  }
});

test('the sync check fails when a route is missing from the document (self-check)', () => {
  const extra = [...ROUTES.map((r) => `${r.method} ${r.path}`), 'GET /api/v1/secret'].sort();
  assert.notDeepEqual(extra, documented());
});

test('GET /api/v1/openapi.json serves the document', async (t) => {
  const o = await startOrigin();
  const a = await startAdmin([o.port]);
  t.after(async () => {
    await a.close();
    await o.close();
  });
  const r = await a.call('GET', '/api/v1/openapi.json');
  assert.equal(r.status, 200);
  assert.equal(r.json.openapi, '3.1.0');
  assert.deepEqual(Object.keys(r.json.paths).sort(), Object.keys(OPENAPI.paths).sort());
});

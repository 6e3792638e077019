/**
 * The host's checks on what a plugin returns (plugin-abi/src/runtime/convert.ts), for the
 * cases the plugin-output fuzzer (test/fuzz) found: a path or query with characters outside
 * visible ASCII passed the checks, and the upstream client then refused the request, which
 * Weir reported as the upstream closing the connection (502 WEIR_ERR_UPSTREAM_RESET).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../../host/src/pipeline/phases.ts';
import { applyMutations } from '../../plugin-abi/src/runtime/convert.ts';

function context(): RequestContext {
  return { request: { method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers: {}, httpVersion: '1.1' }, response: undefined, properties: new Map() } as unknown as RequestContext;
}

test('set-path and set-query refuse characters outside visible ASCII; percent-encoded forms pass', () => {
  for (const m of [
    { tag: 'set-path', val: '/caf\u00e9' }, { tag: 'set-path', val: '/\u20ac' }, { tag: 'set-path', val: '/a b' }, { tag: 'set-path', val: '/\u{1f600}' },
    { tag: 'set-query', val: 'q=\u20ac' }, { tag: 'set-query', val: 'q=\u00e9' }, { tag: 'set-query', val: 'a b' }, { tag: 'set-query', val: '\u2028' },
  ] as const) {
    const ctx = context();
    assert.throws(() => applyMutations('p', ctx, 'request', [m]), (e: { code?: string }) => e.code === 'WEIR_ERR_PLUGIN_INVALID_MUTATION', `${m.tag} ${JSON.stringify(m.val)}`);
    assert.equal(ctx.request.path, '/');
    assert.equal(ctx.request.query, '');
  }
  const ctx = context();
  applyMutations('p', ctx, 'request', [{ tag: 'set-path', val: '/caf%C3%A9/~x' }, { tag: 'set-query', val: '?q=%E2%82%AC&b=1' }]);
  assert.equal(ctx.request.path, '/caf%C3%A9/~x');
  assert.equal(ctx.request.query, 'q=%E2%82%AC&b=1');
});

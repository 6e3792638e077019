import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Phase } from '../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../host/src/pipeline/phases.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('url-rewrite (prefix and regex) and headers filters, response phases in reverse order', async () => {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { server: 'origin/1.0', 'x-order': 'origin' });
    res.end(req.url);
  });
  const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "v1" { priority 10; matches { path-prefix "/api/v1/"; }; upstream "o"; filters "strip" "hdr-a" "hdr-b"; }
    route "users" { priority 9; matches { path-regex "^/u/"; }; upstream "o"; filters "users"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
filters {
    filter "strip" { type "url-rewrite"; replace-prefix-match "/internal/"; }
    filter "users" { type "url-rewrite"; regex-rewrite "^/u/([0-9]+)$" "/users/$1"; }
    filter "hdr-a" {
        type "headers"
        request { set "x-a" "1"; add "x-multi" "a"; remove "x-remove-me"; }
        response { set "x-order" "a"; }
    }
    filter "hdr-b" {
        type "headers"
        request { add "x-multi" "b"; }
        response { set "x-order" "b"; remove "server"; }
    }
}`);
  cleanups.push(() => origin.close(), () => weir.close());
  const res = await request(`${url}/api/v1/items?x=1`, { headers: { 'x-remove-me': 'bye' } });
  assert.equal(await res.body.text(), '/internal/items?x=1');
  const seen = origin.seen.at(-1)!;
  assert.equal(seen.headers['x-a'], '1');
  assert.equal(seen.headers['x-multi'], 'a, b');
  assert.equal(seen.headers['x-remove-me'], undefined);
  // response filters run last-to-first: hdr-b then hdr-a, so hdr-a's value wins
  assert.equal(res.headers['x-order'], 'a');
  assert.equal(res.headers['server'], undefined);
  const u = await request(`${url}/u/42`);
  assert.equal(await u.body.text(), '/users/42');
});

test('a TypeScript Phase registered by extendFilters runs on every hook; failure modes apply', async () => {
  const origin = await startOrigin();
  cleanups.push(() => origin.close());
  const calls: string[] = [];
  const { weir, url } = await startWeirWith(
    `
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "r" { matches { path-prefix "/"; }; upstream "o"; filters "probe" "broken-open"; }
    route "closed" { priority 5; matches { path-prefix "/closed"; }; upstream "o"; filters "broken-closed"; }
    route "deny" { priority 6; matches { path-prefix "/deny"; }; upstream "o"; filters "probe"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
filters {
    filter "probe" { type "headers"; }
    filter "broken-open" { type "url-rewrite"; failure-mode "open"; }
    filter "broken-closed" { type "url-rewrite"; failure-mode "closed"; }
}`,
    {
      extendFilters: (registry) => {
        // The config schema only knows its own types: the test swaps the factories behind two of them.
        registry.register('headers', (cfg): Phase => ({
          name: cfg.name,
          kind: 'test:probe',
          failureMode: cfg.failureMode,
          requestBody: { mode: 'buffered', limit: 1024 },
          responseBody: NO_BODY,
          onRequestHeaders(ctx) {
            calls.push('req-headers');
            if (ctx.request.path === '/deny') return { status: 403, headers: { 'content-type': 'text/plain' }, body: 'denied' };
            ctx.request.headers['x-probe'] = ctx.routeName;
          },
          async onRequestBody(_ctx, chunk) {
            calls.push(`req-body:${chunk.data.length}:${chunk.end}`);
            return Buffer.from(Buffer.from(chunk.data).toString().toUpperCase());
          },
          selectUpstream(_ctx, targets) {
            calls.push(`select:${targets.length}:${targets[0]!.healthy}`);
            return 0;
          },
          onResponseHeaders(ctx) {
            calls.push(`res-headers:${ctx.response!.status}`);
            ctx.response!.headers['x-probe-saw'] = String(ctx.response!.status);
          },
          onLog(ctx) {
            calls.push(`log:${ctx.response?.status}:${ctx.error?.code ?? '-'}`);
          },
        }));
        registry.register('url-rewrite', (cfg): Phase => ({
          name: cfg.name,
          kind: 'test:broken',
          failureMode: cfg.failureMode,
          requestBody: NO_BODY,
          responseBody: NO_BODY,
          onRequestHeaders() {
            throw new Error('boom');
          },
        }));
      },
    },
  );
  cleanups.push(() => weir.close());
  const res = await request(`${url}/x`, { method: 'POST', body: 'hello' });
  assert.equal(res.statusCode, 200, 'failure-mode open skips the broken filter');
  const echoed = (await res.body.json()) as { body: string; headers: Record<string, string> };
  assert.equal(echoed.body, 'HELLO', 'buffered body hook replaced the body');
  assert.equal(echoed.headers['x-probe'], 'r');
  assert.equal(echoed.headers['content-length'], '5');
  assert.equal(res.headers['x-probe-saw'], '200');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls, ['req-headers', 'req-body:5:true', 'select:1:true', 'res-headers:200', 'log:200:-']);

  const closed = await request(`${url}/closed`);
  assert.equal(closed.statusCode, 500);
  assert.equal(((await closed.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_FILTER_FAILED');

  calls.length = 0;
  const denied = await request(`${url}/deny`);
  assert.equal(denied.statusCode, 403);
  assert.equal(await denied.body.text(), 'denied');
  assert.equal(denied.headers['x-probe-saw'], '403', 'local replies pass through response filters');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls, ['req-headers', 'res-headers:403', 'log:403:-']);
});

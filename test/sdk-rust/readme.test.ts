/** The whole plugin in sdk-rust-guest/README.md builds and behaves as described. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import {
  bindCoreInstance, callConfigure, callDescribe, callOnLog, hostImports,
} from '../../plugin-abi/generated/codec.ts';

import { GuestMemory } from '../../plugin-abi/src/abi/guest-memory.ts';
import { wasm } from '../../plugin-abi/src/abi/wasm.ts';
import { loadComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { compileRust } from '../../host/src/plugin-tool/rust.ts';
import { componentize } from '../fixtures/plugins/build.ts';
import { TestHost, skipReason } from './rust-echo.ts';
import { onRequestHeaders, withHost, type RequestHead } from '../plugin-abi/with-head.ts';

const SDK = fileURLToPath(new URL('../../sdk-rust-guest/', import.meta.url));

test('README example plugin', { skip: await skipReason() }, async () => {
  const readme = readFileSync(join(SDK, 'README.md'), 'utf8');
  const block = (lang: string): string => {
    const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme);
    assert.ok(m, `README has a ${lang} block`);
    return m[1]!;
  };
  const dir = mkdtempSync(join(tmpdir(), 'weir-readme-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'Cargo.toml'), `${block('toml').replace(/path = "[^"]*"/, `path = ${JSON.stringify(SDK)}`)}\n[workspace]\n`);
  writeFileSync(join(dir, 'src/lib.rs'), block('rust'));
  const loaded = await loadComponent(await componentize(await compileRust(dir)));
  const fresh = async () => {
    const host = new TestHost();
    const mem = new GuestMemory();
    return { host, inst: withHost(bindCoreInstance(mem, (await wasm.instantiate(loaded.core, hostImports(host, mem))).exports), host) };
  };

  let { inst, host } = await fresh();
  assert.deepEqual(callDescribe(inst).hooks, ['on-request-headers', 'on-log']);
  const limit = (val: bigint) => [{ name: 'limit', parent: undefined, args: [{ tag: 'integer' as const, val }], props: [] }];
  assert.deepEqual(callConfigure(inst, limit(0n)), { tag: 'err', val: { message: 'limit must be positive', node: 0 } });

  ({ inst, host } = await fresh());
  assert.deepEqual(callConfigure(inst, limit(2n)), { tag: 'ok', val: undefined });
  const head = (headers: RequestHead['headers']): RequestHead => ({
    method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers, clientAddress: '192.0.2.1', clientPort: 1,
    routeName: 'r', properties: [], httpVersion: '1.1',
  });
  const keyed = head([{ name: 'x-api-key', value: 'k1' }]);
  assert.deepEqual(onRequestHeaders(inst, 1n, head([])), { tag: 'respond', val: { status: 401, headers: [], body: new TextEncoder().encode('missing API key') } });
  assert.deepEqual(onRequestHeaders(inst, 2n, keyed), {
    tag: 'mutate', val: [{ tag: 'remove-header', val: 'x-api-key' }, { tag: 'set-property', val: { key: 'quota.key', value: 'k1' } }],
  });
  callOnLog(inst, 2n, { status: 204, errorCode: undefined, upstreamAddress: undefined, bytesReceived: 0n, bytesSent: 0n, durationMs: 1, upstreamDurationMs: undefined, attempts: 1 });
  assert.equal(onRequestHeaders(inst, 3n, keyed).tag, 'mutate');
  const third = onRequestHeaders(inst, 4n, keyed);
  assert.equal(third.tag === 'respond' && third.val.status, 429);
  assert.deepEqual(host.of('log'), [['debug', 'k1 -> 204']]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { ConfigNode } from '../../host/src/config/types.ts';
import { SharedStore } from '../../host/src/store/shared.ts';
import { FallbackStore } from '../../host/src/store/redis.ts';
import { PluginRuntime } from '../../plugin-abi/src/runtime/runtime.ts';
import { quiet } from '../helpers/weir.ts';

const loc = { file: 'weir.kdl', line: 1, column: 1 };
function block(keys: Record<string, string | number | boolean>): ConfigNode {
  return { name: 'filter', args: [], props: {}, loc, children: Object.entries(keys).map(([name, v]) => ({ name, args: [v], props: {}, children: [], loc })) } as ConfigNode;
}

test('storeFor: local → the runtime store; redis/memcached → one fallback-wrapped store per connection settings', async () => {
  const shared = new SharedStore();
  const rt = new PluginRuntime({ logger: quiet, registry: new Registry(), store: shared });
  try {
    assert.equal(rt.storeFor(block({})), shared);
    assert.equal(rt.storeFor(block({ backend: 'local' })), shared);
    // Port 1: nothing listens; building a store does not need it up.
    const r1 = rt.storeFor(block({ backend: 'redis', 'redis-url': 'redis://127.0.0.1:1', 'redis-fallback': true, 'redis-timeout-ms': 20 }));
    const r2 = rt.storeFor(block({ backend: 'redis', 'redis-url': 'redis://127.0.0.1:1', 'redis-fallback': true, 'redis-timeout-ms': 20 }));
    const r3 = rt.storeFor(block({ backend: 'redis', 'redis-url': 'redis://127.0.0.1:1', 'redis-prefix': 'other:', 'redis-timeout-ms': 20 }));
    const m = rt.storeFor(block({ backend: 'memcached', 'memcached-url': 'memcache://127.0.0.1:1', 'memcached-fallback': true }));
    assert.equal(r1, r2);
    assert.notEqual(r1, r3);
    assert.ok(r1 instanceof FallbackStore && r1.remote && r1.kind === 'redis');
    assert.equal(m.kind, 'memcached');
    assert.equal(m.remote, true);
    // With fallback on, a dead Redis still answers; without, the call fails.
    assert.equal(await r1.counterAdd('k', 2, 1000), 2);
    await assert.rejects(Promise.resolve(r3.counterAdd('k', 1, 1000)));
  } finally {
    rt.close();
  }
});

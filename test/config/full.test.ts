import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadConfig, loadConfigText, formatDiagnostics } from '../../host/src/config/load.ts';
import { parseKdl } from '../../host/src/config/kdl.ts';
import { ROOT, aliasKeyPaths, allKeyPaths, unsupportedKeyPaths, type KeySpec } from '../../host/src/config/schema.ts';
import type { ConfigNode, WeirConfig } from '../../host/src/config/types.ts';
import { fixture } from './helpers.ts';
import { adminSettings } from '../../host/src/admin/settings.ts';

/** Key paths a file uses, named the way allKeyPaths names them. */
function usedPaths(nodes: readonly ConfigNode[], specs: readonly KeySpec[], prefix: string, out: Set<string>): void {
  for (const n of nodes) {
    const spec = specs.find((s) => s.name === n.name);
    const p = prefix + n.name;
    out.add(p);
    if (!spec || spec.shorthandFor) continue;
    for (const prop of Object.keys(n.props)) out.add(`${p}.${prop}=`);
    let children = spec.children ?? [];
    // A variant is chosen by a child (`type "jwt"`) or by the node's own argument (`discovery "dns"`).
    const type = spec.variants?.fromArg ? n.args[0] : n.children.find((c) => c.name === spec.variants?.key)?.args[0];
    if (spec.variants && typeof type === 'string') {
      const extra = spec.variants.cases[type] ?? [];
      usedPaths(n.children.filter((c) => extra.some((s) => s.name === c.name)), extra, `${p}[${type}].`, out);
      children = children.filter((s) => !extra.includes(s));
    }
    usedPaths(n.children.filter((c) => children.some((s) => s.name === c.name)), children, p + '.', out);
  }
}

async function loadFull(): Promise<WeirConfig> {
  const r = await loadConfig(fixture('full.kdl'), { env: { WEIR_TEST_TOKEN: 'tok' } });
  if (!r.ok) assert.fail(formatDiagnostics(r.diagnostics));
  assert.deepEqual(r.warnings, []);
  return r.config;
}

test('full.kdl uses every key of the schema', () => {
  const used = new Set<string>();
  // full-admin-mtls.kdl: the mTLS admin keys, which bearer auth in full.kdl refuses beside it.
  // full-upstreams.kdl: balancing keys tied to their algorithm, and discovery in place of targets.
  for (const f of ['full.kdl', 'full-include.kdl', 'full-admin-mtls.kdl', 'full-upstreams.kdl']) {
    const r = parseKdl(readFileSync(fixture(f), 'utf8'), f);
    assert.ok(r.ok);
    if (r.ok) usedPaths(r.nodes, ROOT, '', used);
  }
  // Refused keys cannot load, and `server` is `system` by another name: test/config/key-coverage.ts covers them.
  const refused = new Set([...unsupportedKeyPaths(), ...ROOT.filter((s) => s.aliasOf).map((s) => s.name)]);
  // Sentinel's spellings are tested in sentinel.test.ts; this file is written in Weir's.
  const sentinel = new Set(aliasKeyPaths());
  const missing = allKeyPaths().filter((k) => !used.has(k) && !refused.has(k) && !sentinel.has(k));
  assert.deepEqual(missing, [], 'add these keys to test/fixtures/config/full.kdl');
  assert.deepEqual([...used].filter((k) => refused.has(k)), [], 'full.kdl must not use refused keys or aliases');
});

test('full-upstreams.kdl loads: each balancing key with its algorithm, each discovery source', async () => {
  const r = await loadConfigText(`listeners { listener "m" { address "127.0.0.1:0"; } }\nroutes { route "r" { matches { path-prefix "/"; }; upstream "hashed"; } }\n${readFileSync(fixture('full-upstreams.kdl'), 'utf8')}`, fixture('full-upstreams.kdl'), { skipFileChecks: true });
  if (!r.ok) assert.fail(formatDiagnostics(r.diagnostics));
  const up = r.config.upstreams;
  assert.deepEqual([...up.keys()], ['hashed', 'zoned', 'canary', 'by-dns', 'by-srv', 'by-consul', 'by-kubernetes', 'by-file']);
  assert.deepEqual(['hashed', 'zoned', 'canary'].map((n) => up.get(n)!.loadBalancing), ['maglev', 'locality_aware', 'subset']);
});

test('full.kdl: system, listeners, files', async () => {
  const c = await loadFull();
  assert.equal(c.schemaVersion, '1.0');
  assert.deepEqual(c.system, { workerThreads: 4, maxConnections: 20000, gracefulShutdownTimeoutMs: 15000, pidFile: '/tmp/weir-full.pid' });
  assert.deepEqual(c.files, [fixture('full.kdl'), fixture('full-include.kdl')]);
  assert.deepEqual(c.listeners.map((l) => l.name), ['internal', 'public', 'plain']);
  const pub = c.listeners.find((l) => l.name === 'public')!;
  assert.deepEqual([pub.host, pub.port, pub.protocol, pub.requestTimeoutMs, pub.keepAliveTimeoutMs], ['0.0.0.0', 8443, 'https', 30_000, 75_000]);
  assert.equal(pub.allowConnect, false);
  const { loc: _loc, ...tls } = pub.tls!;
  assert.deepEqual(tls, {
    certFile: fixture('files', 'server.crt'),
    keyFile: fixture('files', 'server.key'),
    caFile: fixture('files', 'ca.crt'),
    clientAuth: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
    sni: [{ hostnames: ['example.com', 'www.example.com'], certFile: fixture('files', 'example.crt'), keyFile: fixture('files', 'example.key') }],
  });
  const plain = c.listeners.find((l) => l.name === 'plain')!;
  assert.deepEqual([plain.host, plain.port, plain.protocol, plain.tls], ['::1', 0, 'h2c', undefined]);
  assert.deepEqual(plain.edge, { pathNormalization: { mergeSlashes: false, escapedSlashes: 'keep' }, trustedProxies: ['10.0.0.0/8', '::1/128'], proxyProtocol: 'any', trustIncomingRequestId: false });
  assert.deepEqual(pub.edge, { pathNormalization: { mergeSlashes: true, escapedSlashes: 'reject' }, trustedProxies: [], proxyProtocol: 'off', trustIncomingRequestId: true, defaultRoute: 'api' });
  assert.deepEqual([pub.maxConcurrentStreams, pub.maxRequestsPerConnection, plain.maxConcurrentStreams], [64, 500, undefined]);
});

test('full.kdl: routes', async () => {
  const c = await loadFull();
  assert.deepEqual(c.routes.map((r) => r.name), ['health', 'api', 'static', 'files', 'counted']);
  const api = c.routes[1]!;
  assert.equal(api.priority, 100);
  assert.deepEqual(api.matches[0], {
    hosts: ['api.example.com', '*.api.example.com'],
    paths: ['/exact'],
    pathPrefixes: ['/api/', '/v2/'],
    pathRegexes: ['^/items/[0-9]+$'],
    methods: ['GET', 'POST'],
    headers: [
      { name: 'x-env', value: 'prod', regex: undefined },
      { name: 'x-tenant', value: undefined, regex: '^t-' },
      { name: 'x-region', value: 'eu', regex: undefined },
    ],
    query: [{ name: 'debug', value: '1' }, { name: 'trace', value: undefined }, { name: 'lang', value: 'en' }],
  });
  assert.deepEqual(api.matches[1]!.pathPrefixes, ['/other/']);
  assert.equal(api.upstream, 'backend');
  // policies rate-limit runs before the route's filters; its header changes and rewrite-path after them.
  assert.deepEqual(api.filters, ['policies:api:rate-limit', 'rewrite', 'hdrs', 'auth', 'limit', 'geo', 'policies:api:headers', 'policies:api:rewrite-path']);
  assert.deepEqual(c.filters.get('policies:api:headers')!.settings.children.map((b) => [b.name, b.children.map((o) => o.name)]), [['request', ['set', 'add', 'remove']], ['response', ['set', 'add', 'remove']]]);
  assert.equal(api.builtinHandler, undefined);
  assert.deepEqual(api.circuitBreaker, { failureThreshold: 10, successThreshold: 3, timeoutMs: 15_000, halfOpenMaxRequests: 2 });
  assert.deepEqual(api.policies, {
    timeoutMs: 2500,
    failureMode: 'open',
    maxBodySize: 1024 * 1024,
    allowWebsocket: true,
    bufferRequests: true,
    requestDecompression: { maxBytes: 2 * 1024 * 1024, maxRatio: 50 },
    retry: { maxAttempts: 3, backoffMs: 10, maxBackoffMs: 200, retryOn: ['connect-failure', '503'], budgetPercent: 25, minRetryConcurrency: 5 },
  });
  assert.equal(c.routes[0]!.builtinHandler, 'health');
  assert.equal(c.routes[2]!.policies.allowWebsocket, true);
});

test('full.kdl: upstreams', async () => {
  const c = await loadFull();
  assert.deepEqual([...c.upstreams.keys()], ['static', 'backend', 'queue']);
  const b = c.upstreams.get('backend')!;
  assert.deepEqual(b.targets, [
    { address: '10.0.0.1:8080', host: '10.0.0.1', port: 8080, weight: 3, zone: undefined },
    { address: '[fd00::2]:8080', host: 'fd00::2', port: 8080, weight: 1, zone: undefined },
  ]);
  assert.equal(b.loadBalancing, 'p2c');
  assert.equal(b.protocol, 'h2');
  assert.deepEqual(b.connectionPool, { maxConnections: 64, idleTimeoutMs: 30_000, queueTimeoutMs: 2500, maxLifetimeMs: 600_000, maxRequests: 1000, maxPendingRequests: 0 });
  assert.equal(c.upstreams.get('queue')!.connectionPool.maxPendingRequests, 50);
  assert.deepEqual(b.circuitBreaker, { failureThreshold: 5, successThreshold: 2, timeoutMs: 30_000, halfOpenMaxRequests: 1 });
  assert.deepEqual(b.outlierDetection, {
    consecutive5xx: 7, consecutiveGatewayErrors: 3, successRate: { minHosts: 3, minRequests: 50, stdevFactor: 1.5 },
    intervalMs: 5000, baseEjectionMs: 20_000, maxEjectionPercent: 34, panicThreshold: 25,
  });
  assert.equal(b.slowStartMs, 12_000);
  assert.deepEqual(b.timeouts, { connectMs: 2000, requestMs: 30_000, readMs: 10_000, writeMs: 10_500 });
  assert.deepEqual(b.healthCheck, { type: 'http', path: '/healthz', method: 'HEAD', host: 'backend.internal', bodyMatch: 'ok', jitterMs: 500, service: 'weir.example.Api', intervalMs: 5000, timeoutMs: 1000, healthyThreshold: 3, unhealthyThreshold: 4, expectedStatus: [200, 204] });
  assert.deepEqual(b.tls, { sni: 'backend.internal', caFile: fixture('files', 'upstream-ca.crt'), clientCert: fixture('files', 'client.crt'), clientKey: fixture('files', 'client.key'), verify: false });
});

test('full.kdl: filters and plugins', async () => {
  const c = await loadFull();
  assert.deepEqual([...c.filters.keys()], ['strip', 'rewrite', 'hdrs', 'auth', 'limit', 'limit-mc', 'geo', 'cors', 'waf', 'ips', 'jwt', 'keys', 'basic', 'policies:api:rate-limit', 'policies:api:headers', 'policies:api:rewrite-path', 'policies:counted:rate-limit']);
  assert.equal(c.filters.get('hdrs')!.failureMode, 'open');
  assert.equal(c.filters.get('rewrite')!.failureMode, 'closed');
  assert.equal(c.filters.get('auth')!.plugin, 'auth');
  assert.equal(c.filters.get('limit')!.plugin, undefined);
  const geo = c.filters.get('geo')!.settings;
  // Paths inside settings are already absolute for the filter factory.
  assert.equal(geo.children.find((x) => x.name === 'database-path')!.args[0], fixture('files', 'country.mmdb'));
  const p = c.plugins.get('auth')!;
  assert.deepEqual(
    { path: p.path, isolation: p.isolation, fuel: p.fuel, memoryLimitBytes: p.memoryLimitBytes, timeoutMs: p.timeoutMs, poolSize: p.poolSize },
    { path: fixture('files', 'auth.wasm'), isolation: 'worker', fuel: 5_000_000, memoryLimitBytes: 16 * 1024 * 1024, timeoutMs: 50, poolSize: 2 },
  );
  assert.deepEqual(p.config.map((n) => n.name), ['issuer', 'audiences', 'nested']);
  assert.deepEqual(p.config[1]!.args, ['a', 'b']);
  const noop = c.plugins.get('noop')!;
  assert.equal(noop.memoryLimitBytes, 64 * 1024 * 1024);
  assert.equal(noop.isolation, 'inline');
});

test('full.kdl: limits, observability', async () => {
  const c = await loadFull();
  assert.deepEqual(c.limits, {
    maxHeaderBytes: 32 * 1024,
    maxHeaderCount: 64,
    maxBodyBytes: 10 * 1024 * 1024,
    maxRequestLineBytes: 4096,
    headerTimeoutMs: 5000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 15_000,
    maxRequestsPerConnection: 1000,
    maxConnections: 5000,
    websocketIdleTimeoutMs: 120_000,
    websocketMaxMessageBytes: 2 * 1024 * 1024,
    maxUpstreamRequestsPerClient: 32,
    maxInFlightRequests: 10000,
    maxConnectionsPerClient: 256,
    responseBufferBytes: 256 * 1024,
    requestBodyBufferBytes: 32 * 1024,
    minRequestBodyRate: 2048,
    http2: { maxConcurrentStreams: 250, initialWindowSize: 1_048_576, connectionWindowSize: 4 * 1024 * 1024, maxHeaderListSize: 64 * 1024, maxSessionMemoryMb: 20 },
  });
  assert.deepEqual(c.observability, {
    metrics: { enabled: true, address: '127.0.0.1:9090', path: '/prom' },
    logging: { level: 'debug', format: 'pretty', accessLog: '/tmp/weir-full-access.log', auditLog: true },
    tracing: { endpoint: 'http://127.0.0.1:4318', serviceName: 'weir-full', sampleRatio: 0.25, hookSpanThresholdMs: 2, exportDelayMs: 1000 },
  });
});

test('full.kdl and full-admin-mtls.kdl: admin-api', async () => {
  const c = await loadFull();
  assert.equal(c.routes.find((r) => r.name === 'api')!.enabled, true);
  assert.deepEqual(adminSettings(c.adminApi), {
    address: '0.0.0.0:9901', host: '0.0.0.0', port: 9901, allowRemote: true, persist: true, drainTimeoutMs: 15_000,
    tls: { certFile: fixture('files', 'server.crt'), keyFile: fixture('files', 'server.key'), caFile: undefined },
    auth: { type: 'bearer', token: 'tok', readOnlyToken: 'read-only', readOnlySubjects: [] },
  });
  const m = await loadConfig(fixture('full-admin-mtls.kdl'));
  if (!m.ok) assert.fail(formatDiagnostics(m.diagnostics));
  const s = adminSettings(m.config.adminApi)!;
  assert.deepEqual([s.auth.type, s.auth.readOnlySubjects, s.tls?.caFile], ['mtls', ['dashboard', 'grafana'], fixture('files', 'ca.crt')]);
});

// Service discovery over real sockets (docs/discovery.md): a DNS server on loopback (UDP,
// dns-packet) answers A/AAAA and SRV queries from a table the tests change; origins listen
// on 127.0.0.1–127.0.0.4 at one port; a watched targets file. Requests run throughout every
// change and none may fail; a failing source keeps the last good set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';
import { request } from 'undici';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { eventually } from '../admin/helpers.ts';
import { bad } from '../config/helpers.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Origins on 127.0.0.N, all on one port, answering with their own address. */
async function origins(hosts: readonly string[]): Promise<number> {
  let port = 0;
  for (const host of hosts) {
    const s = http.createServer((req, res) => {
      // A slow answer now and then keeps requests in flight across each change.
      const hold = req.url === '/slow' ? 150 : 0;
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${host}:${port}`), hold);
    });
    s.listen(port, host);
    await once(s, 'listening');
    port = (s.address() as AddressInfo).port;
    cleanups.push(() => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }));
  }
  return port;
}

interface Dns {
  port: number;
  /** name → A addresses. */
  a: Map<string, string[]>;
  srv: Map<string, Array<{ priority: number; weight: number; port: number; target: string }>>;
  /** Answer SERVFAIL to everything. */
  failing: boolean;
  queries: number;
}

async function dnsServer(): Promise<Dns> {
  const d: Dns = { port: 0, a: new Map(), srv: new Map(), failing: false, queries: 0 };
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    if (!question) return;
    d.queries++;
    const answers: dnsPacket.Answer[] = [];
    if (!d.failing && question.type === 'A') for (const ip of d.a.get(question.name) ?? []) answers.push({ type: 'A', name: question.name, ttl: 1, data: ip });
    if (!d.failing && question.type === 'SRV') {
      for (const r of d.srv.get(question.name) ?? []) answers.push({ type: 'SRV', name: question.name, ttl: 1, data: { priority: r.priority, weight: r.weight, port: r.port, target: r.target } });
    }
    const known = d.a.has(question.name) || d.srv.has(question.name);
    const rcode = d.failing ? 'SERVFAIL' : known ? 'NOERROR' : 'NXDOMAIN';
    const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcodeFlag(rcode), questions: q.questions, answers });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  d.port = sock.address().port;
  cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
  return d;
}

function rcodeFlag(rcode: string): number {
  return rcode === 'SERVFAIL' ? 2 : rcode === 'NXDOMAIN' ? 3 : 0;
}

function config(discovery: string): string {
  return `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "default" { matches { path-prefix "/" }; upstream "api"; } }
upstreams {
    upstream "api" {
        ${discovery}
    }
}
system { graceful-shutdown-timeout-secs 5 }
`;
}

/** Requests in a loop (a quarter of them slow) until stopped; counts answers per origin and failures. */
function load(url: string): { seen: Map<string, number>; failures: string[]; total: () => number; stop: () => Promise<void>; reset: () => void } {
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let running = true;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (running) {
      const path = n++ % 4 === 0 ? '/slow' : '/';
      try {
        const r = await request(url + path);
        const body = await r.body.text();
        if (r.statusCode !== 200) failures.push(`${r.statusCode} ${body}`);
        else seen.set(body, (seen.get(body) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: 4 }, () => worker());
  cleanups.push(async () => {
    running = false;
    await Promise.all(workers);
  });
  return {
    seen,
    failures,
    total: () => [...seen.values()].reduce((a, b) => a + b, 0),
    reset: () => seen.clear(),
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

async function metric(weir: { metrics: { registry: { metrics(): Promise<string> } } }, line: RegExp): Promise<number> {
  const m = (await weir.metrics.registry.metrics()).match(line);
  return m ? Number(m[1]) : 0;
}

test('discovery dns: every A record is a target, re-resolved on TTL; changes under load fail no request; a failing server keeps the last set', async () => {
  const port = await origins(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  const dns = await dnsServer();
  dns.a.set('api.weir.test', ['127.0.0.1', '127.0.0.2']);
  const { weir, url } = await startWeirWith(config(`discovery "dns" { hostname "api.weir.test"; port ${port}; refresh-interval 1; nameservers "127.0.0.1:${dns.port}"; }`));
  cleanups.push(() => weir.close());
  const l = load(url);
  await eventually(() => l.seen.has(`127.0.0.1:${port}`) && l.seen.has(`127.0.0.2:${port}`), 'both A records serving');
  // Add .3, remove .1: the TTL (1 s) brings the change.
  dns.a.set('api.weir.test', ['127.0.0.2', '127.0.0.3']);
  await eventually(() => l.seen.has(`127.0.0.3:${port}`), 'the added address serving');
  // Requests that started before the change finish on the old targets (up to /slow's 150 ms).
  await new Promise((r) => setTimeout(r, 500));
  l.reset();
  await eventually(() => l.total() > 100, 'traffic after the change');
  assert.equal(l.seen.has(`127.0.0.1:${port}`), false, `the removed address still served: ${[...l.seen.keys()].join(', ')}`);
  const updates = await metric(weir, /weir_discovery_updates_total\{upstream="api",kind="dns"\} (\d+)/);
  assert.ok(updates >= 2, `updates ${updates}`);
  assert.equal(await metric(weir, /weir_discovery_targets\{upstream="api"\} (\d+)/), 2);
  // The DNS server fails: errors are counted and the last good set keeps serving.
  dns.failing = true;
  await eventually(async () => (await metric(weir, /weir_discovery_errors_total\{upstream="api",kind="dns"\} (\d+)/)) >= 2, 'discovery errors counted', 15_000);
  l.reset();
  await eventually(() => l.total() > 100, 'traffic while DNS fails');
  assert.deepEqual([...l.seen.keys()].sort(), [`127.0.0.2:${port}`, `127.0.0.3:${port}`]);
  dns.failing = false;
  await l.stop();
  assert.deepEqual(l.failures, [], 'no request failed during the changes');
  assert.ok(l.total() > 0);
});

test('discovery dns-srv: the lowest priority serves, split by SRV weight; each record\'s host resolved through A', async () => {
  const port = await origins(['127.0.0.4']);
  const other = await origins(['127.0.0.4']);
  const dns = await dnsServer();
  dns.a.set('a.weir.test', ['127.0.0.4']);
  dns.a.set('b.weir.test', ['127.0.0.4']);
  dns.srv.set('_http._tcp.api.weir.test', [
    { priority: 10, weight: 3, port, target: 'a.weir.test' },
    { priority: 10, weight: 1, port: other, target: 'b.weir.test' },
    { priority: 20, weight: 100, port: 1, target: 'a.weir.test' },
  ]);
  const { weir, url } = await startWeirWith(config(`discovery "dns-srv" { service "_http._tcp.api.weir.test"; refresh-interval 1; nameservers "127.0.0.1:${dns.port}"; }`));
  cleanups.push(() => weir.close());
  const counts = new Map<string, number>();
  for (let i = 0; i < 400; i++) {
    const r = await request(url);
    assert.equal(r.statusCode, 200);
    const b = await r.body.text();
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  const heavy = counts.get(`127.0.0.4:${port}`) ?? 0;
  const light = counts.get(`127.0.0.4:${other}`) ?? 0;
  assert.equal(heavy + light, 400, `only priority 10 serves: ${JSON.stringify([...counts])}`);
  // Weighted round robin: 3:1 exactly over whole rounds.
  assert.ok(heavy > light * 2 && heavy < light * 4, `weights 3:1, got ${heavy}:${light}`);
  const state = await weir.state();
  assert.deepEqual(state.upstreams[0]!.targets.map((t) => [t.address, t.weight]).sort(), [[`127.0.0.4:${other}`, 1], [`127.0.0.4:${port}`, 3]].sort());
});

test('discovery file: a watched JSON then KDL file of targets; a broken file keeps the last good set', async () => {
  const port = await origins(['127.0.0.1', '127.0.0.2']);
  const dir = tmpDir();
  const file = join(dir, 'targets.json');
  const write = (text: string): void => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  write(JSON.stringify([{ address: `127.0.0.1:${port}`, weight: 1 }]));
  const { weir, url } = await startWeirWith(config(`discovery "file" { path "${file}"; }`));
  cleanups.push(() => weir.close());
  const l = load(url);
  await eventually(() => l.seen.has(`127.0.0.1:${port}`), 'the file\'s target serving');
  write(`target "127.0.0.2:${port}" weight=2\n`);
  await eventually(() => l.seen.has(`127.0.0.2:${port}`), 'the rewritten file\'s target serving');
  await new Promise((r) => setTimeout(r, 500));
  l.reset();
  await eventually(() => l.total() > 50, 'traffic after the change');
  assert.deepEqual([...l.seen.keys()], [`127.0.0.2:${port}`]);
  write('{ not json');
  await eventually(async () => (await metric(weir, /weir_discovery_errors_total\{upstream="api",kind="file"\} (\d+)/)) >= 1, 'the broken file counted');
  l.reset();
  await eventually(() => l.total() > 50, 'traffic with the broken file');
  assert.deepEqual([...l.seen.keys()], [`127.0.0.2:${port}`]);
  await l.stop();
  assert.deepEqual(l.failures, []);
});

test('discovery config: each kind\'s required keys, URL and nameserver forms; targets beside discovery are refused', async () => {
  const k = await bad(config('discovery "kubernetes" { namespace "shop"; }'));
  assert.ok(k.some((x) => x.code === 'WEIR_ERR_CONFIG_MISSING' && /service/.test(x.message)), JSON.stringify(k));
  const consulUrl = await bad(config('discovery "consul" { address "127.0.0.1:8500"; service "api"; }'));
  assert.ok(consulUrl.some((x) => x.code === 'WEIR_ERR_CONFIG_VALUE' && /http/.test(x.message)), JSON.stringify(consulUrl));
  const missing = await bad(config('discovery "dns" { refresh-interval 5; }'));
  assert.ok(missing.some((x) => x.code === 'WEIR_ERR_CONFIG_MISSING' && /hostname/.test(x.message)), JSON.stringify(missing));
  assert.ok(missing.some((x) => x.code === 'WEIR_ERR_CONFIG_MISSING' && /port/.test(x.message)), JSON.stringify(missing));
  const both = await bad(config('target "127.0.0.1:1"\n discovery "dns" { hostname "x"; port 80; }'));
  assert.ok(both.some((x) => x.code === 'WEIR_ERR_CONFIG_CONSTRAINT'), JSON.stringify(both));
  const ns = await bad(config('discovery "dns" { hostname "x"; port 80; nameservers "dns.example"; }'));
  assert.ok(ns.some((x) => x.code === 'WEIR_ERR_CONFIG_VALUE' && /nameserver/.test(x.message)), JSON.stringify(ns));
  const foreign = await bad(config('discovery "dns" { hostname "x"; port 80; path "/t.json"; }'));
  assert.ok(foreign.some((x) => /path/.test(x.message)), JSON.stringify(foreign));
});

interface ConsulInstance { host: string; port: number; tags: string[]; passing: boolean; weight?: number }

/** Consul's `/v1/health/service/:name` with blocking queries (index, wait), dc, tag and passing. */
async function consulServer(): Promise<{ port: number; instances: ConsulInstance[]; set: (list: ConsulInstance[]) => void; failing: boolean; queries: Array<{ index: string | null; wait: string | null; dc: string | null }> }> {
  const state = {
    port: 0,
    instances: [] as ConsulInstance[],
    index: 1,
    failing: false,
    queries: [] as Array<{ index: string | null; wait: string | null; dc: string | null }>,
    waiting: [] as Array<() => void>,
    set(list: ConsulInstance[]) {
      state.instances = list;
      state.index++;
      for (const w of state.waiting.splice(0)) w();
    },
  };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    if (!u.pathname.startsWith('/v1/health/service/')) return void res.writeHead(404).end();
    const q = { index: u.searchParams.get('index'), wait: u.searchParams.get('wait'), dc: u.searchParams.get('dc') };
    state.queries.push(q);
    if (q.dc !== 'dc1') return void res.writeHead(500).end('No path to datacenter');
    const answer = (): void => {
      if (state.failing) return void res.writeHead(500).end('rpc error');
      const tag = u.searchParams.get('tag');
      const passing = u.searchParams.get('passing') !== null;
      const list = state.instances.filter((i) => (tag === null || i.tags.includes(tag)) && (!passing || i.passing));
      res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(state.index) });
      res.end(JSON.stringify(list.map((i) => ({ Node: { Address: i.host }, Service: { Address: '', Port: i.port, Tags: i.tags, Weights: { Passing: i.weight ?? 1, Warning: 1 } } }))));
    };
    const index = Number(q.index ?? 0);
    if (index > 0 && index === state.index && !state.failing) {
      const waitMs = Number((q.wait ?? '300s').replace('s', '')) * 1000;
      const timer = setTimeout(() => {
        state.waiting = state.waiting.filter((w) => w !== wake);
        answer();
      }, waitMs);
      const wake = (): void => {
        clearTimeout(timer);
        answer();
      };
      state.waiting.push(wake);
      return;
    }
    answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as AddressInfo).port;
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return state;
}

test('discovery consul: blocking queries return on change; tag, datacenter and passing filter instances; a failing Consul keeps the last set', async () => {
  const port = await origins(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  const consul = await consulServer();
  consul.set([
    { host: '127.0.0.1', port, tags: ['v1'], passing: true },
    { host: '127.0.0.2', port, tags: ['v2'], passing: true },
    { host: '127.0.0.3', port, tags: ['v1'], passing: false },
  ]);
  // A 60 s wait: a change seen within seconds came from the blocking query returning on it.
  const { weir, url } = await startWeirWith(config(`discovery "consul" { address "http://127.0.0.1:${consul.port}"; service "web"; datacenter "dc1"; tag "v1"; refresh-interval 60; }`));
  cleanups.push(() => weir.close());
  const l = load(url);
  await eventually(() => l.total() > 50, 'traffic');
  assert.deepEqual([...l.seen.keys()], [`127.0.0.1:${port}`], 'only the passing v1 instance');
  assert.ok(consul.queries.some((q) => q.index !== null && q.wait === '60s'), `a blocking query was sent: ${JSON.stringify(consul.queries)}`);
  const changedAt = Date.now();
  consul.set([
    { host: '127.0.0.1', port, tags: ['v1'], passing: true },
    { host: '127.0.0.3', port, tags: ['v1'], passing: true, weight: 2 },
  ]);
  await eventually(() => l.seen.has(`127.0.0.3:${port}`), 'the instance that now passes serving', 10_000);
  assert.ok(Date.now() - changedAt < 10_000);
  const state = await weir.state();
  assert.deepEqual(state.upstreams[0]!.targets.map((t) => [t.address, t.weight]).sort(), [[`127.0.0.1:${port}`, 1], [`127.0.0.3:${port}`, 2]]);
  // Consul fails: the last set keeps serving.
  consul.failing = true;
  consul.set(consul.instances);
  await eventually(async () => (await metric(weir, /weir_discovery_errors_total\{upstream="api",kind="consul"\} (\d+)/)) >= 1, 'the failure counted');
  await new Promise((r) => setTimeout(r, 500));
  l.reset();
  await eventually(() => l.total() > 100, 'traffic while Consul fails');
  assert.deepEqual([...l.seen.keys()].sort(), [`127.0.0.1:${port}`, `127.0.0.3:${port}`]);
  consul.failing = false;
  await l.stop();
  assert.deepEqual(l.failures, [], 'no request failed during the changes');
  assert.ok((await metric(weir, /weir_discovery_updates_total\{upstream="api",kind="consul"\} (\d+)/)) >= 2);
});

interface K8sEndpoint { ip: string; ready: boolean }

/**
 * The Kubernetes API's EndpointSlice list and watch for one Service. `event` sends a watch
 * event to the open watches; `drop` ends them mid-stream; `expire` makes every resourceVersion
 * older than now answer 410 Gone (a watch error event on open watches, 410 on new ones).
 */
async function kubeServer(opts: { token: string; tls?: { cert: string; key: string } }) {
  const k = {
    port: 0,
    version: 100,
    /** Versions below this are gone. */
    oldest: 0,
    slices: new Map<string, { port: number; endpoints: K8sEndpoint[] }>(),
    watches: new Set<http.ServerResponse>(),
    lists: 0,
    /** Answer 500 to everything. */
    failing: false,
    watchesOpened: 0,
    unauthorized: 0,
    paths: [] as string[],
    slice(name: string) {
      const s = k.slices.get(name)!;
      return { metadata: { name, resourceVersion: String(k.version) }, ports: [{ name: 'http', port: s.port }, { name: 'metrics', port: 9 }], endpoints: s.endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready } })) };
    },
    event(type: 'ADDED' | 'MODIFIED' | 'DELETED', name: string, s?: { port: number; endpoints: K8sEndpoint[] }) {
      k.version++;
      const object = type === 'DELETED' ? { metadata: { name, resourceVersion: String(k.version) } } : (k.slices.set(name, s!), k.slice(name));
      if (type === 'DELETED') k.slices.delete(name);
      for (const w of k.watches) w.write(JSON.stringify({ type, object }) + '\n');
    },
    drop() {
      for (const w of k.watches) w.socket?.destroy();
      k.watches.clear();
    },
    expire() {
      k.oldest = k.version + 1;
      for (const w of k.watches) w.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } }) + '\n');
      k.watches.clear();
    },
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const u = new URL(req.url!, 'http://x');
    k.paths.push(u.pathname);
    if (k.failing) return void res.writeHead(500).end('{"kind":"Status","code":500}');
    if (req.headers.authorization !== `Bearer ${opts.token}`) {
      k.unauthorized++;
      return void res.writeHead(401).end('{"kind":"Status","code":401}');
    }
    if (u.pathname !== '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices' || u.searchParams.get('labelSelector') !== 'kubernetes.io/service-name=web') return void res.writeHead(404).end();
    if (u.searchParams.get('watch') === '1') {
      const from = Number(u.searchParams.get('resourceVersion'));
      if (from < k.oldest) return void res.writeHead(410).end('{"kind":"Status","code":410}');
      k.watchesOpened++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      k.watches.add(res);
      res.on('close', () => k.watches.delete(res));
      return;
    }
    k.lists++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'EndpointSliceList', metadata: { resourceVersion: String(k.version) }, items: [...k.slices.keys()].map((n) => k.slice(n)) }));
  };
  const https = await import('node:https');
  const { readFileSync } = await import('node:fs');
  const server = opts.tls ? https.createServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  k.port = (server.address() as AddressInfo).port;
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return k;
}

test('discovery kubernetes: EndpointSlices by list and watch (kubeconfig); ready endpoints at the named port; a dropped watch resumes, 410 Gone lists again, a failing API keeps the last set', async () => {
  const port = await origins(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  const k = await kubeServer({ token: 'kc-token' });
  k.slices.set('web-a', { port, endpoints: [{ ip: '127.0.0.1', ready: true }, { ip: '127.0.0.3', ready: false }] });
  const dir = tmpDir();
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
current-context: test
contexts:
- name: test
  context: { cluster: local, user: tester, namespace: shop }
clusters:
- name: local
  cluster: { server: "http://127.0.0.1:${k.port}" }
users:
- name: tester
  user: { token: kc-token }
`);
  const { weir, url } = await startWeirWith(config(`discovery "kubernetes" { service "web"; port-name "http"; kubeconfig "${kubeconfig}"; refresh-interval 60; }`));
  cleanups.push(() => weir.close());
  const l = load(url);
  await eventually(() => l.total() > 50, 'traffic');
  assert.deepEqual([...l.seen.keys()], [`127.0.0.1:${port}`], 'only the ready endpoint, at the http port');
  await eventually(() => k.watches.size > 0, 'a watch open');
  // A second slice is added through the watch; the not-ready endpoint becomes ready.
  k.event('ADDED', 'web-b', { port, endpoints: [{ ip: '127.0.0.2', ready: true }] });
  k.event('MODIFIED', 'web-a', { port, endpoints: [{ ip: '127.0.0.1', ready: true }, { ip: '127.0.0.3', ready: true }] });
  await eventually(() => l.seen.has(`127.0.0.2:${port}`) && l.seen.has(`127.0.0.3:${port}`), 'watch events applied');
  // The watch drops: Weir watches again from the last version, without listing.
  const lists = k.lists;
  k.drop();
  await eventually(() => k.watches.size > 0, 'the watch resumed');
  assert.equal(k.lists, lists, 'a dropped watch resumes without a list');
  k.event('DELETED', 'web-b');
  await eventually(async () => !(await weir.state()).upstreams[0]!.targets.some((t) => t.address === `127.0.0.2:${port}`), 'the deleted slice removed');
  // 410 Gone: changes made while the watch was away are found by listing again.
  k.expire();
  k.version += 5;
  k.slices.set('web-a', { port, endpoints: [{ ip: '127.0.0.3', ready: true }] });
  await eventually(() => k.lists > lists, 'listed again after 410');
  await eventually(async () => (await weir.state()).upstreams[0]!.targets.map((t) => t.address).join() === `127.0.0.3:${port}`, 'the relisted set applied');
  // The API fails (500 to every list and watch): the last set keeps serving.
  const errorsBefore = await metric(weir, /weir_discovery_errors_total\{upstream="api",kind="kubernetes"\} (\d+)/);
  k.failing = true;
  k.drop();
  await eventually(async () => (await metric(weir, /weir_discovery_errors_total\{upstream="api",kind="kubernetes"\} (\d+)/)) > errorsBefore, 'the failure counted', 15_000);
  await new Promise((r) => setTimeout(r, 500));
  l.reset();
  await eventually(() => l.total() > 50, 'traffic while the API fails');
  assert.deepEqual([...l.seen.keys()], [`127.0.0.3:${port}`]);
  await l.stop();
  assert.deepEqual(l.failures, [], 'no request failed during the changes');
});

test('discovery kubernetes: in-cluster service account (KUBERNETES_SERVICE_HOST, token and CA files) over TLS', async () => {
  const { createPki } = await import('../helpers/tls.ts');
  const pki = createPki();
  const cert = pki.server('apiserver', ['127.0.0.1']);
  const port = await origins(['127.0.0.4']);
  const k = await kubeServer({ token: 'sa-token', tls: cert });
  k.slices.set('web-x', { port, endpoints: [{ ip: '127.0.0.4', ready: true }] });
  const sa = tmpDir();
  writeFileSync(join(sa, 'token'), 'sa-token\n');
  writeFileSync(join(sa, 'ca.crt'), pki.caPem);
  // The pod's own namespace; `namespace "shop"` asks another.
  writeFileSync(join(sa, 'namespace'), 'default\n');
  const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'], dir: process.env['WEIR_SERVICE_ACCOUNT_DIR'] };
  process.env['KUBERNETES_SERVICE_HOST'] = '127.0.0.1';
  process.env['KUBERNETES_SERVICE_PORT'] = String(k.port);
  process.env['WEIR_SERVICE_ACCOUNT_DIR'] = sa;
  cleanups.push(() => {
    for (const [name, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port], ['WEIR_SERVICE_ACCOUNT_DIR', saved.dir]] as const) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
  });
  const { weir, url } = await startWeirWith(config('discovery "kubernetes" { service "web"; namespace "shop"; }'));
  cleanups.push(() => weir.close());
  const r = await request(url);
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), `127.0.0.4:${port}`);
  assert.equal(k.unauthorized, 0);
  assert.ok(k.lists >= 1);
});

test('discovery with two proxy threads: the supervisor discovers once and every thread switches in one reload', async () => {
  const { startCluster } = await import('../../host/src/cluster/supervisor.ts');
  const { freePort } = await import('../helpers/servers.ts');
  const { quiet } = await import('../helpers/weir.ts');
  const port = await origins(['127.0.0.1', '127.0.0.2']);
  const dir = tmpDir();
  const targets = join(dir, 'targets.json');
  writeFileSync(targets, JSON.stringify([`127.0.0.1:${port}`]));
  const listen = await freePort();
  const file = join(dir, 'weir.kdl');
  writeFileSync(file, `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${listen}"; } }
routes {
    route "status" { priority 10; matches { path "/_/status" }; builtin-handler "status"; }
    route "default" { matches { path-prefix "/" }; upstream "api"; }
}
upstreams { upstream "api" { discovery "file" { path "${targets}"; } } }
system { worker-threads 2; graceful-shutdown-timeout-secs 5; }
`);
  const cluster = await startCluster({ configPath: file, logger: quiet, watch: false });
  cleanups.push(() => cluster.close());
  // A fresh connection each time, so both threads (SO_REUSEPORT) answer.
  const get = (path: string): Promise<string> => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: listen, path, agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`${res.statusCode} ${b}`))));
    }).on('error', reject);
  });
  const sample = async (): Promise<{ threads: Set<number>; bodies: Set<string> }> => {
    const threads = new Set<number>();
    const bodies = new Set<string>();
    for (let i = 0; i < 200; i++) {
      threads.add((JSON.parse(await get('/_/status')) as { thread: number }).thread);
      bodies.add(await get('/'));
    }
    return { threads, bodies };
  };
  const before = await sample();
  assert.deepEqual([...before.threads].sort(), [0, 1]);
  assert.deepEqual([...before.bodies], [`127.0.0.1:${port}`]);
  writeFileSync(`${targets}.tmp`, JSON.stringify([`127.0.0.2:${port}`]));
  renameSync(`${targets}.tmp`, targets);
  await eventually(async () => (await get('/')) === `127.0.0.2:${port}`, 'the new target serving');
  await new Promise((r) => setTimeout(r, 300));
  const after = await sample();
  assert.deepEqual([...after.threads].sort(), [0, 1]);
  assert.deepEqual([...after.bodies], [`127.0.0.2:${port}`], 'every thread serves the new set');
  assert.match(await cluster.metricsText(), /weir_discovery_updates_total\{upstream="api",kind="file"\} 2/);
});

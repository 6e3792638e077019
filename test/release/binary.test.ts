// The single binary (dist/weir) from an empty folder: no node_modules, no repository beside
// it. Builds it unless it is newer than its inputs (≈5 s), then runs the commands users run
// and sends requests through real sockets to an inline and a worker-isolated plugin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { BINARY, binaryUpToDate, buildBinary, ROOT } from '../../build/binary.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { tmpDir } from '../helpers/weir.ts';
import { writeProbe } from '../helpers/probe.ts';

let dir: string;
let bin: string;
let origin: Origin;
/** TMPDIR of every child, so the test sees what the binary extracts and that it cleans up. */
let tmp: string;
const children = new Set<ChildProcess>();

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

function firstPartyPlugins(): string[] {
  const root = join(ROOT, 'plugins');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((name) => {
    const b = join(root, name, 'build');
    return existsSync(b) ? readdirSync(b).filter((f) => f.endsWith('.wasm')).map((f) => `${name}/${f}`) : [];
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function config(port: number, system = ''): string {
  return `schema-version "1.0"
${system}
listeners { listener "main" { address "127.0.0.1:${port}"; } }
plugins {
    plugin "inline" { path "probe.wasm"; config { mode "header"; value "inline"; } }
    plugin "isolated" { path "probe.wasm"; isolation "worker"; pool-size 1; config { mode "header"; value "worker"; } }
    plugin "deny" { path "probe.wasm"; isolation "worker"; pool-size 1; config { mode "deny"; } }
}
filters {
    filter "inline" { type "wasm"; plugin "inline"; failure-mode "closed"; }
    filter "isolated" { type "wasm"; plugin "isolated"; failure-mode "closed"; }
    filter "deny" { type "wasm"; plugin "deny"; failure-mode "closed"; }
}
routes {
    route "health" { priority 100; matches { path "/_/health"; }; builtin-handler "health"; }
    route "ready" { priority 100; matches { path "/_/ready"; }; builtin-handler "ready"; }
    route "worker" { priority 10; matches { path-prefix "/worker"; }; upstream "origin"; filters "isolated"; }
    route "deny" { priority 10; matches { path-prefix "/deny"; }; upstream "origin"; filters "deny"; }
    route "inline" { priority 0; matches { path-prefix "/"; }; upstream "origin"; filters "inline"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${origin.port}"; } }
`;
}

/** Output of each child so far (always drained: a full pipe would stall its logger). */
const output = new WeakMap<ChildProcess, { stdout: string; stderr: string }>();

function weir(args: string[]): ChildProcess {
  const child = spawn(bin, args, { cwd: dir, env: { PATH: '/usr/bin:/bin', TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  output.set(child, out);
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Resolves when the child's stdout contains `text`. */
async function waitFor(child: ChildProcess, text: string, deadlineMs = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!output.get(child)!.stdout.includes(text)) {
    if (child.exitCode !== null) throw new Error(`weir exited with ${child.exitCode}: ${output.get(child)!.stderr}`);
    if (performance.now() - t0 > deadlineMs) throw new Error(`no ${JSON.stringify(text)} on stdout within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function weirSync(args: string[]) {
  return spawnSync(bin, args, { cwd: dir, env: { PATH: '/usr/bin:/bin', TMPDIR: tmp }, encoding: 'utf8', timeout: 30_000 });
}

/** Polls until the proxy answers 200 on `path`; resolves with the time from `since`. */
async function until200(url: string, since: number, child: ChildProcess, deadlineMs = 20_000): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`weir exited with ${child.exitCode}`);
    try {
      const res = await request(url);
      await res.body.dump();
      if (res.statusCode === 200) return performance.now() - since;
    } catch {
      // not listening yet
    }
    if (performance.now() - since > deadlineMs) throw new Error(`no 200 from ${url} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return done;
}

before(async () => {
  if (!binaryUpToDate()) await buildBinary();
  dir = tmpDir('weir-release-');
  tmp = join(dir, '.tmp');
  mkdirSync(tmp);
  bin = join(dir, 'weir');
  copyFileSync(BINARY, bin);
  await writeProbe(dir);
  origin = await startOrigin();
});

after(async () => {
  for (const c of children) await stop(c);
  await origin?.close();
  // The copy of the binary is ≈120 MiB: do not leave one per run.
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('weir version and --version from an empty folder', () => {
  assert.deepEqual(readdirSync(dir).filter((f) => f !== '.tmp').sort(), ['probe.wasm', 'weir']);
  const v = weirSync(['version']);
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);
  assert.equal(weirSync(['--version']).stdout.trim(), pkg.version);
});

test('weir validate: ok, and file:line:column errors with exit 1', async () => {
  writeFileSync(join(dir, 'weir.kdl'), config(await freePort()));
  const ok = weirSync(['validate', 'weir.kdl']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /weir\.kdl: ok \(1 listeners, 5 routes, 1 upstreams, 3 filters, 3 plugins\)/);
  writeFileSync(join(dir, 'bad.kdl'), 'listeners {\n    listener "x" { adress "127.0.0.1:1"; }\n}\n');
  const bad = weirSync(['validate', 'bad.kdl']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /bad\.kdl:2:\d+/);
});

test('weir plugin test: a component against request cases, no network', () => {
  writeFileSync(join(dir, 'cases.json'), JSON.stringify({
    cases: [
      { name: 'sets x-probe', config: 'mode "header"\nvalue "from-cases"', request: { path: '/a' }, expect: { local: false, upstreamRequest: { headers: { 'x-probe': 'from-cases' } } } },
      { name: 'denies', config: 'mode "deny"', request: { path: '/b' }, expect: { local: true, response: { status: 403 } } },
    ],
  }));
  const ok = weirSync(['plugin', 'test', 'probe.wasm', 'cases.json']);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  writeFileSync(join(dir, 'wrong.json'), JSON.stringify({ cases: [{ name: 'wrong on purpose', config: 'mode "deny"', expect: { local: false } }] }));
  const bad = weirSync(['plugin', 'test', 'probe.wasm', 'wrong.json']);
  assert.equal(bad.status, 1, 'a failing case exits 1');
  assert.match(bad.stdout + bad.stderr, /wrong on purpose/);
});

test('weir run: inline and worker-isolated plugins over real sockets, clean exit on SIGTERM', async () => {
  const port = await freePort();
  writeFileSync(join(dir, 'weir.kdl'), config(port));
  const child = weir(['run', '-c', 'weir.kdl']);
  const base = `http://127.0.0.1:${port}`;
  await until200(`${base}/_/ready`, performance.now(), child);

  // What the binary extracted: the workers and wasm-tools' modules, in a private folder.
  const [extracted] = readdirSync(tmp);
  assert.ok(extracted, 'an extraction folder under TMPDIR');
  const files = readdirSync(join(tmp, extracted));
  for (const f of ['plugin-worker.cjs', 'piscina-worker.cjs', 'wasm-tools.core.wasm']) assert.ok(files.includes(f), `${f} extracted (${files.join(', ')})`);
  for (const p of firstPartyPlugins()) {
    const [name, file] = p.split('/') as [string, string];
    const out = join(tmp, extracted, 'plugins', name, file);
    assert.ok(existsSync(out), `first-party plugin ${p} extracted`);
    assert.equal(statSync(out).size, statSync(join(ROOT, 'plugins', name, 'build', file)).size);
  }

  const inline = await request(`${base}/hello`);
  assert.equal(inline.statusCode, 200, await inline.body.text());
  assert.equal(origin.seen.at(-1)!.headers['x-probe'], 'inline');

  const worker = await request(`${base}/worker/a`);
  assert.equal(worker.statusCode, 200, await worker.body.text());
  assert.equal(origin.seen.at(-1)!.headers['x-probe'], 'worker');

  const n = origin.seen.length;
  const denied = await request(`${base}/deny/me`);
  assert.equal(denied.statusCode, 403);
  assert.deepEqual(await denied.body.json(), { denied: '/deny/me' });
  assert.equal(origin.seen.length, n, 'a local reply from the worker never reaches the origin');

  assert.equal(await stop(child), 0, output.get(child)!.stderr);
  assert.deepEqual(readdirSync(tmp), [], 'the extraction folder is removed at exit');
  assert.doesNotMatch(output.get(child)!.stderr, /Error|ExperimentalWarning/);
});

test('weir run with two proxy threads: each runs the inline and worker plugins', async () => {
  const port = await freePort();
  writeFileSync(join(dir, 'threads.kdl'), config(port, 'system { worker-threads 2; }'));
  const child = weir(['run', '-c', 'threads.kdl']);
  // Thread 0 answers before the others are up; signals are handled once all are.
  await waitFor(child, '"weir started"');
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 6; i++) {
    const path = i % 2 ? `/worker/${i}` : `/inline/${i}`;
    const res = await request(`${base}${path}`, { reset: true });
    assert.equal(res.statusCode, 200, await res.body.text());
    assert.equal(origin.seen.at(-1)!.headers['x-probe'], i % 2 ? 'worker' : 'inline');
  }
  assert.equal(await stop(child), 0, output.get(child)!.stderr);
  assert.deepEqual(readdirSync(tmp), []);
});

test('weir run without -c: the embedded demo config and demo backend', async () => {
  const port = await freePort();
  const child = weir(['run', '-p', String(port)]);
  await until200(`http://127.0.0.1:${port}/_/health`, performance.now(), child);
  const res = await request(`http://127.0.0.1:${port}/hello`);
  assert.equal(res.statusCode, 200);
  const body = (await res.body.json()) as { backend: string; url: string };
  assert.equal(body.backend, 'weir-demo');
  assert.equal(body.url, '/hello');
  assert.equal(await stop(child), 0);
});

const has = (name: string): boolean => existsSync(join(ROOT, 'plugins', name, 'build', `${name}.wasm`));

test('first-party plugins from the binary: rate-limit, lb, and geo on the embedded database', async (t) => {
  if (!has('rate-limit') && !has('lb') && !has('geo')) return t.skip('no plugins/*/build/*.wasm at build time');
  const second = await startOrigin((_req, res) => res.writeHead(200, { 'x-origin': 'second' }).end('second'));
  t.after(() => second.close());
  const port = await freePort();
  const blocks = { filters: [] as string[], routes: [] as string[], plugins: [] as string[] };
  if (has('rate-limit')) {
    blocks.filters.push('filter "rl" { type "rate-limit"; max-rps 1; burst 1; key "path"; }');
    blocks.routes.push('route "rl" { priority 10; matches { path-prefix "/rl"; }; upstream "origin"; filters "rl"; }');
  }
  if (has('lb')) blocks.routes.push('route "lb" { priority 10; matches { path-prefix "/lb"; }; upstream "pair"; }');
  if (has('geo')) {
    // A user plugin built from the geo component: with no geo-database it reads the default
    // database, which in the binary is an embedded asset (inline and worker threads).
    copyFileSync(join(ROOT, 'plugins', 'geo', 'build', 'geo.wasm'), join(dir, 'geo.wasm'));
    const cfg = 'config { action "block"; countries "US"; }';
    blocks.plugins.push(`plugin "geo-inline" { path "geo.wasm"; ${cfg} }`, `plugin "geo-worker" { path "geo.wasm"; isolation "worker"; pool-size 1; ${cfg} }`);
    blocks.filters.push('filter "geo-inline" { type "wasm"; plugin "geo-inline"; }', 'filter "geo-worker" { type "wasm"; plugin "geo-worker"; }');
    blocks.routes.push(
      'route "geo-inline" { priority 10; matches { path-prefix "/geo-inline"; }; upstream "origin"; filters "geo-inline"; }',
      'route "geo-worker" { priority 10; matches { path-prefix "/geo-worker"; }; upstream "origin"; filters "geo-worker"; }',
    );
  }
  writeFileSync(join(dir, 'first-party.kdl'), `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; trusted-proxies "127.0.0.1/32"; } }
${blocks.plugins.length ? `plugins {\n${blocks.plugins.join('\n')}\n}` : ''}
${blocks.filters.length ? `filters {\n${blocks.filters.join('\n')}\n}` : ''}
routes {
    route "ready" { priority 100; matches { path "/_/ready"; }; builtin-handler "ready"; }
${blocks.routes.join('\n')}
}
upstreams {
    upstream "origin" { target "127.0.0.1:${origin.port}"; }
    upstream "pair" { load-balancing "p2c"; target "127.0.0.1:${origin.port}"; target "127.0.0.1:${second.port}"; }
}
`);
  const v = weirSync(['validate', 'first-party.kdl']);
  assert.equal(v.status, 0, v.stderr);
  const child = weir(['run', '-c', 'first-party.kdl']);
  const base = `http://127.0.0.1:${port}`;
  await until200(`${base}/_/ready`, performance.now(), child);
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}${path}`, { headers });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };

  if (has('rate-limit')) {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get('/rl')).status);
    assert.equal(statuses[0], 200);
    assert.ok(statuses.includes(429), `over the limit: ${statuses.join(',')}`);
  }
  if (has('lb')) {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await get('/lb');
      assert.equal(r.status, 200);
      seen.add(r.headers['x-origin'] === 'second' ? 'second' : 'first');
    }
    assert.deepEqual([...seen].sort(), ['first', 'second'], 'p2c spreads requests over both targets');
  }
  if (has('geo')) {
    for (const route of ['/geo-inline', '/geo-worker']) {
      assert.equal((await get(route, { 'x-forwarded-for': '8.8.8.8' })).status, 403, `${route}: US is blocked`);
      const ok = await get(route, { 'x-forwarded-for': '1.1.1.1' });
      assert.equal(ok.status, 200, ok.body);
      assert.equal(origin.seen.at(-1)!.headers['x-geoip-country'], 'AU', `${route}: country from the embedded database`);
    }
  }
  assert.equal(await stop(child), 0, output.get(child)!.stderr);
});

test('size and cold start (spawn → first 200 through a plugin, median of 5)', async (t) => {
  const size = statSync(bin).size;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    writeFileSync(join(dir, 'weir.kdl'), config(port));
    const t0 = performance.now();
    const child = weir(['run', '-c', 'weir.kdl']);
    times.push(await until200(`http://127.0.0.1:${port}/worker/cold`, t0, child));
    await stop(child);
  }
  times.sort((a, b) => a - b);
  const median = times[2]!;
  const line = `dist/weir: ${(size / 2 ** 20).toFixed(1)} MiB; cold start (worker + inline plugin config) median ${median.toFixed(0)} ms [${times.map((x) => x.toFixed(0)).join(', ')}]`;
  t.diagnostic(line);
  process.stderr.write(`${line}\n`);
  assert.ok(median < 10_000);
});

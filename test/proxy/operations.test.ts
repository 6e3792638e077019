import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { basicConfig, startWeirWith, tmpDir } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const withHeader = (originPort: number, value: string): string =>
  basicConfig(originPort, {
    filters: `filter "tag" { type "headers"; response { set "x-config" "${value}"; } }`,
  }).replace('upstream "origin"\n', 'upstream "origin"\n        filters "tag"\n');

test('reload under a bounded load loop: zero failed requests, new config takes effect', async () => {
  const origin = await startOrigin();
  const { weir, file, url } = await startWeirWith(withHeader(origin.port, 'v1'));
  cleanups.push(() => origin.close(), () => weir.close());
  const agent = new Agent({ connections: 8 });
  cleanups.push(() => agent.close());
  let failures = 0;
  let ok = 0;
  const seen = new Set<string>();
  const deadline = Date.now() + 2500;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      try {
        const res = await request(`${url}/load`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
        else failures++;
        seen.add(String(res.headers['x-config']));
      } catch {
        failures++;
      }
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, worker));
  for (let i = 2; i <= 6; i++) {
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(file, withHeader(origin.port, `v${i}`));
    const r = await weir.reload();
    assert.ok(r.ok, r.error);
  }
  await load;
  assert.equal(failures, 0, `${failures} failed requests during reloads (${ok} ok)`);
  assert.ok(ok > 100, `load loop ran (${ok} requests)`);
  assert.ok(seen.has('v1') && seen.has('v6'), `responses came from old and new configs: ${[...seen].join(',')}`);
});

test('a bad config on reload keeps the old one serving and reports file:line:column', async () => {
  const origin = await startOrigin();
  const { weir, file, url } = await startWeirWith(withHeader(origin.port, 'good'));
  cleanups.push(() => origin.close(), () => weir.close());
  writeFileSync(file, `${withHeader(origin.port, 'bad')}\nroutes { route "x" { matches { path-prefx "/"; } } }\n`);
  const r = await weir.reload();
  assert.equal(r.ok, false);
  assert.match(r.error!, /weir\.kdl:\d+:\d+: error WEIR_ERR_CONFIG_UNKNOWN_KEY/);
  assert.match(r.error!, /did you mean `path-prefix`/);
  const res = await request(`${url}/still`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-config'], 'good');
  await res.body.dump();
  const m = await weir.metrics.registry.getSingleMetricAsString('weir_config_reloads_total');
  assert.match(m, /result="error"\} 1/);
});

test('a config file change is picked up by the watcher', async () => {
  const origin = await startOrigin();
  const { weir, file, url } = await startWeirWith(withHeader(origin.port, 'before'), { watch: true });
  cleanups.push(() => origin.close(), () => weir.close());
  writeFileSync(file, withHeader(origin.port, 'after'));
  let value = '';
  for (let i = 0; i < 50 && value !== 'after'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const res = await request(`${url}/w`);
    value = String(res.headers['x-config']);
    await res.body.dump();
  }
  assert.equal(value, 'after');
});

test('SIGHUP reloads and SIGTERM drains in-flight requests before exiting', async () => {
  let release: (() => void) | undefined;
  const origin = await startOrigin((_req, res) => {
    // hold the response until the test lets it go
    release = () => res.end('finished');
  });
  cleanups.push(() => origin.close());
  const dir = tmpDir();
  const file = join(dir, 'weir.kdl');
  writeFileSync(file, withHeader(origin.port, 'one').replace('graceful-shutdown-timeout-secs 5', 'graceful-shutdown-timeout-secs 10'));
  const child = spawn(process.execPath, [new URL('../../host/bin/weir.ts', import.meta.url).pathname, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => {
    for (let i = 0; i < 100; i++) {
      const m = re.exec(out);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${re} in:\n${out}`);
  };
  const port = Number((await waitFor(/"address":"127\.0\.0\.1:(\d+)"/))[1]);
  // SIGHUP: reload the edited file
  writeFileSync(file, withHeader(origin.port, 'two'));
  child.kill('SIGHUP');
  await waitFor(/configuration reloaded/);
  // a request in flight when SIGTERM arrives must complete
  const inflight = request(`http://127.0.0.1:${port}/slow`);
  for (let i = 0; i < 100 && !release; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(release, 'request reached the origin');
  child.kill('SIGTERM');
  await waitFor(/shutting down/);
  // new connections are refused while draining
  await assert.rejects(request(`http://127.0.0.1:${port}/new`, { dispatcher: new Agent() }));
  release!();
  const res = await inflight;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-config'], 'two');
  assert.equal(await res.body.text(), 'finished');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0);
});

/**
 * Log sinks cannot take the proxy down: an unwritable access-log path is refused by validate
 * and run; a target that fails while the proxy runs (directory deleted, disk full, stdout on
 * a full device) is reported on stderr and counted in weir_log_sink_errors_total, and
 * requests keep being served. A file sink follows its path across rotation and recovery.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { startOrigin } from '../helpers/origin.ts';
import { runWeir, type WeirProcess } from '../helpers/process.ts';
import { freePort } from '../helpers/servers.ts';
import { tmpDir } from '../helpers/weir.ts';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const config = (port: number, originPort: number, accessLog: string): string => `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes {
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    route "default" { matches { path-prefix "/"; }; upstream "origin"; }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}"; } }
observability { logging { access-log ${accessLog}; } }
system { graceful-shutdown-timeout-secs 2 }
`;

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

async function sinkErrors(port: number, sink: string): Promise<number> {
  const m = new RegExp(`weir_log_sink_errors_total\\{sink="${sink}"\\} (\\d+)`).exec((await get(port, '/_/metrics')).body);
  return m ? Number(m[1]) : 0;
}

/** Polls `f` until it holds (bounded), for effects of the 1 s path check. */
async function eventually(what: string, f: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(accessLog: string, opts: { stdout?: number; uid?: number } = {}): Promise<{ p: WeirProcess; port: number; file: string }> {
  const origin = await startOrigin((_req, res) => res.end('ok'));
  cleanups.push(() => origin.close());
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, config(port, origin.port, accessLog));
  // Readable by the user the proxy may run as.
  chmodSync(dirname(file), 0o755);
  chmodSync(file, 0o644);
  const p = runWeir(['run', '-c', file], opts);
  cleanups.push(() => p.kill());
  await eventually('weir listens', async () => get(port, '/up').then((r) => r.status === 200, () => false), 15_000);
  return { p, port, file };
}

/** Requests keep being answered 200: a handful, each on a fresh connection. */
async function stillServing(port: number): Promise<void> {
  for (let i = 0; i < 5; i++) assert.equal((await get(port, `/still/${i}`)).status, 200);
}

test('an access-log path in a missing directory: validate and run refuse it with its location; nothing listens', async () => {
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, config(port, 9, '"/nonexistent/dir/file"'));
  const v = spawnSync(process.execPath, [WEIR, 'validate', file], { encoding: 'utf8' });
  assert.equal(v.status, 1);
  assert.match(v.stderr, /weir\.kdl:8:38: error WEIR_ERR_LOG_SINK: access-log `\/nonexistent\/dir\/file` cannot be written: directory \/nonexistent\/dir does not exist/);
  const p = runWeir(['run', '-c', file]);
  cleanups.push(() => p.kill());
  assert.equal(await p.exited(15_000), 1);
  assert.match(p.output(), /WEIR_ERR_LOG_SINK.*\/nonexistent\/dir\/file/);
  assert.doesNotMatch(p.output(), /listening|^\s+at /m);
});

test('the access-log directory is deleted while serving: reported, counted, serving continues; recreated: logging resumes', async () => {
  const dir = tmpDir('weir-logs-');
  const log = join(dir, 'access.log');
  const { p, port } = await start(`"${log}"`);
  await get(port, '/first');
  await eventually('the access line is written', () => existsSync(log) && readFileSync(log, 'utf8').includes('/first'));
  // Rotation by rename: the sink follows the path to a new file.
  renameSync(log, `${log}.1`);
  await eventually('a new file after rotation', async () => {
    await get(port, '/after-rotation');
    return existsSync(log) && readFileSync(log, 'utf8').includes('/after-rotation');
  });
  // Until the sink notices (≤ 1 s), lines go on into the renamed file: none is lost.
  assert.match(readFileSync(`${log}.1`, 'utf8'), /\/first/);
  assert.equal(await sinkErrors(port, 'access'), 0);

  rmSync(dir, { recursive: true });
  await stillServing(port);
  await p.waitFor(/weir: WEIR_ERR_LOG_SINK: access log .*access\.log: .*ENOENT.*serving continues/);
  await eventually('the failure is counted', async () => (await sinkErrors(port, 'access')) >= 1);
  await stillServing(port);
  assert.equal(p.child.exitCode, null);

  mkdirSync(dir);
  await eventually('logging resumes in the recreated directory', async () => {
    await get(port, '/back');
    return existsSync(log) && readFileSync(log, 'utf8').includes('/back');
  });
  await p.waitFor(/access log .*access\.log reopened/);
});

test('rotation into a directory the proxy may not write (EACCES): reported, counted, serving continues; writable again: reopened', async () => {
  // As root, permissions do not apply: the proxy then runs as nobody (65534).
  const uid = process.getuid?.() === 0 ? 65534 : undefined;
  const dir = tmpDir('weir-logs-');
  if (uid !== undefined) chownSync(dir, uid, uid);
  const log = join(dir, 'access.log');
  const { p, port } = await start(`"${log}"`, { uid });
  await get(port, '/first');
  await eventually('the access line is written', () => existsSync(log) && readFileSync(log, 'utf8').includes('/first'));
  renameSync(log, `${log}.1`);
  chmodSync(dir, 0o555);
  try {
    await stillServing(port);
    await p.waitFor(/weir: WEIR_ERR_LOG_SINK: access log .*access\.log: EACCES.*serving continues/);
    await eventually('the failure is counted', async () => (await sinkErrors(port, 'access')) >= 1);
    await stillServing(port);
  } finally {
    chmodSync(dir, 0o755);
  }
  await p.waitFor(/access log .*access\.log reopened/);
  await eventually('logging resumes', async () => {
    await get(port, '/back');
    return existsSync(log) && readFileSync(log, 'utf8').includes('/back');
  });
});

test('an access log on a full disk (/dev/full): every failed write is counted, serving continues', async () => {
  const { p, port } = await start('"/dev/full"');
  await stillServing(port);
  await p.waitFor(/weir: WEIR_ERR_LOG_SINK: access log \/dev\/full: .*ENOSPC/);
  const first = await sinkErrors(port, 'access');
  assert.ok(first >= 1, `counted ${first}`);
  await stillServing(port);
  await eventually('more failed writes are counted', async () => (await sinkErrors(port, 'access')) > first);
  // Reported once per run of failures, not once per line.
  assert.equal(p.output().match(/WEIR_ERR_LOG_SINK/g)!.length, 1);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited(), 0);
});

test('the main log on a full device (stdout to /dev/full): counted under sink="main", serving continues', async () => {
  const full = openSync('/dev/full', 'w');
  const { p, port } = await start('#false', { stdout: full });
  closeSync(full);
  await stillServing(port);
  await p.waitFor(/weir: WEIR_ERR_LOG_SINK: log: .*ENOSPC/);
  assert.ok((await sinkErrors(port, 'main')) >= 1);
  await stillServing(port);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited(), 0);
});

test('a reload moves the access log to a new file; a reload onto an unwritable path is refused and the old file keeps logging', async () => {
  const dir = tmpDir('weir-logs-');
  const [one, two] = [join(dir, 'one.log'), join(dir, 'two.log')];
  const { p, port, file } = await start(`"${one}"`);
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace(one, two));
  p.child.kill('SIGHUP');
  await p.waitFor(/configuration reloaded/);
  await get(port, '/to-two');
  await eventually('the new file gets the lines', () => existsSync(two) && readFileSync(two, 'utf8').includes('/to-two'));
  assert.doesNotMatch(readFileSync(one, 'utf8'), /to-two/);

  writeFileSync(file, text.replace(one, '/nonexistent/dir/three.log'));
  p.child.kill('SIGHUP');
  await p.waitFor(/configuration reload failed/);
  assert.match(p.output(), /WEIR_ERR_LOG_SINK: access-log `\/nonexistent\/dir\/three\.log` cannot be written/);
  await get(port, '/still-two');
  await eventually('the old file keeps logging', () => readFileSync(two, 'utf8').includes('/still-two'));
});

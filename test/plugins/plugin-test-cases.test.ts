// `weir plugin test` case files (docs/plugin-testing.md): strict (an unknown key or a wrong
// type is an error naming its JSON path, before anything runs), expectations on the upstream
// chosen by set-upstream, header presence and regex, guest log lines, and the guest's log
// shown under a failing case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginTester, loadCaseFile, runPluginTests, type CaseFile } from '../../plugin-abi/src/harness/cases.ts';
import { tmpDir } from '../helpers/weir.ts';
import { buildOnce, example } from '../examples/build.ts';

const ATTEMPTS = fileURLToPath(new URL('../fixtures/as/attempts/', import.meta.url));

function write(file: CaseFile | Record<string, unknown>): string {
  const path = join(tmpDir(), 'cases.json');
  writeFileSync(path, JSON.stringify(file));
  return path;
}

test('a case file with an unknown key or a wrong type is refused whole, each problem named by its JSON path', async () => {
  const path = write({
    cases: [
      { name: 'typo', request: { path: '/' }, expect: { respnse: { status: 200 } } },
      { name: 'types', expect: { target: 'one', response: { status: 2.5, headerMatches: { a: 1 } } } },
      { expect: {} },
    ],
    confg: 'x',
  });
  await assert.rejects(loadCaseFile(path), (err: Error) => {
    for (const want of [
      'cases[0].expect.respnse: unknown key',
      'cases[1].expect.target: expected integer or null, got string',
      'cases[1].expect.response.status: expected integer, got number',
      'cases[1].expect.response.headerMatches.a: expected string, got number',
      'cases[2]: missing key name',
      'confg: unknown key (known here: config, clock, cases)',
    ]) assert.ok(err.message.includes(want), `missing ${JSON.stringify(want)} in:\n${err.message}`);
    return true;
  });
  const out: string[] = [];
  await assert.rejects(runPluginTests('/nonexistent.wasm', path, (s) => out.push(s)), /not a valid case file/);
  assert.deepEqual(out, [], 'no case ran');
});

test('expect.upstream, presentHeaders and headerMatches pass when true and fail with a reason when not (canary example, AssemblyScript)', async () => {
  const tester = new PluginTester(await example('canary', 'as'));
  try {
    const request = { path: '/app', headers: { 'x-canary': '1', 'x-trace': 'abc-123' } };
    const results = await tester.run({
      config: 'upstream "canary"',
      cases: [
        { name: 'right', request, expect: { upstream: 'canary', upstreamRequest: { presentHeaders: ['x-trace'], headerMatches: { 'x-trace': '^abc-[0-9]+$' } } } },
        { name: 'wrong upstream', request, expect: { upstream: 'stable' } },
        { name: 'absent header', request, expect: { upstreamRequest: { presentHeaders: ['x-missing'] } } },
        { name: 'no match', request, expect: { upstreamRequest: { headerMatches: { 'x-trace': '^[0-9]+$', 'x-missing': '.' } } } },
      ],
    });
    assert.deepEqual(results.map((r) => [r.name, r.ok, r.problems]), [
      ['right', true, []],
      ['wrong upstream', false, ['upstream: expected stable, got canary']],
      ['absent header', false, ['upstream request header x-missing should be present, it is absent']],
      ['no match', false, ['upstream request header x-trace: expected a match of /^[0-9]+$/, got "abc-123"', 'upstream request header x-missing: expected a match of /./, got null']],
    ]);
  } finally {
    tester.close();
  }
});

test('expect.logs checks the guest log; a failing case prints the guest log under its problems', async () => {
  const wasm = await buildOnce(ATTEMPTS);
  const path = write({
    cases: [
      { name: 'logs on-log', request: { path: '/local' }, expect: { local: true, logs: ['log attempts=0 updur=-'] } },
      { name: 'wrong expectation', request: { path: '/local' }, expect: { local: false, logs: ['never logged'] } },
    ],
  });
  const out: string[] = [];
  const failed = await runPluginTests(wasm, path, (s) => out.push(s));
  const text = out.join('');
  assert.equal(failed, 1, text);
  assert.match(text, /^ok 1 - logs on-log$/m);
  assert.match(text, /^not ok 2 - wrong expectation$/m);
  assert.match(text, /^ {4}expected the request to go upstream, got a local reply 204$/m);
  assert.match(text, /^ {4}guest log: no line contains "never logged"$/m);
  assert.match(text, /^ {4}guest log:\n {6}info: log attempts=0 updur=- dur=[0-9.e-]+$/m);
  // The passing case's log is not printed.
  assert.equal(text.match(/info: log attempts=0/g)?.length, 1, text);
});

test('a fake clock fixes now-ms and monotonic-ns; store fixtures are the plugin\'s own keys (echo-sdk fixture)', async () => {
  const wasm = await buildOnce(fileURLToPath(new URL('../fixtures/as/echo-sdk/', import.meta.url)));
  const path = write({
    clock: { nowMs: 1_700_000_000_000 },
    cases: [
      // x-stamp is now-ms/monotonic-ns/random-u64.
      { name: 'file clock', request: { path: '/a' }, expect: { upstreamRequest: { headerMatches: { 'x-stamp': '^1700000000000/1700000000000000000/[0-9]+$' } } } },
      { name: 'case clock', clock: { nowMs: 42 }, request: { path: '/a' }, expect: { upstreamRequest: { headerMatches: { 'x-stamp': '^42/42000000/' } } } },
      // /kv?a reads k:a, then compare-and-sets it to x-val.
      { name: 'kv fixture', store: { kv: { 'k:a': 'preset' } }, request: { path: '/kv', query: 'a', headers: { 'x-val': 'next' } }, expect: { upstreamRequest: { headerMatches: { 'x-kv-old': '^preset@[0-9]+$', 'x-kv-version': '^[0-9]+$' } } } },
      { name: 'no fixture', request: { path: '/kv', query: 'b', headers: { 'x-val': 'v' } }, expect: { upstreamRequest: { headers: { 'x-kv-old': 'none' } } } },
    ],
  });
  const out: string[] = [];
  const failed = await runPluginTests(wasm, path, (s) => out.push(s));
  assert.equal(failed, 0, out.join(''));
  // Without a clock the real one runs.
  const real = await new PluginTester(wasm).run({ cases: [{ name: 'real clock', request: { path: '/a' }, expect: { upstreamRequest: { headerMatches: { 'x-stamp': `^${String(Date.now()).slice(0, 8)}` } } } }] });
  assert.deepEqual(real.map((r) => r.problems), [[]]);
});

test('expect.pauseMs checks the pause decision (ms), 0 for none, and fails with a reason when it differs; an unknown key beside it is still an error', async () => {
  const wasm = await buildOnce(fileURLToPath(new URL('../fixtures/as/pauser/', import.meta.url)));
  const path = write({
    cases: [
      { name: 'pauses', request: { headers: { 'x-pause': '250' } }, expect: { pauseMs: 250, upstreamRequest: { headers: { 'x-paused': '250' } } } },
      { name: 'capped', request: { headers: { 'x-pause': '90000' } }, expect: { pauseMs: 60000 } },
      { name: 'no pause', request: {}, expect: { pauseMs: 0 } },
      { name: 'wrong ms', request: { headers: { 'x-pause': '10' } }, expect: { pauseMs: 20 } },
      { name: 'expected a pause', request: {}, expect: { pauseMs: 5 } },
    ],
  });
  const out: string[] = [];
  const failed = await runPluginTests(wasm, path, (s) => out.push(s));
  const text = out.join('');
  assert.equal(failed, 2, text);
  for (const n of [1, 2, 3]) assert.match(text, new RegExp(`^ok ${n} - `, 'm'));
  assert.match(text, /^not ok 4 - wrong ms\n {4}pause: expected 20 ms, got 10 ms$/m);
  assert.match(text, /^not ok 5 - expected a pause\n {4}pause: expected 5 ms, the request was not paused$/m);
  await assert.rejects(loadCaseFile(write({ cases: [{ name: 'typo', expect: { pauseMS: 1 } }, { name: 'type', expect: { pauseMs: 1.5 } }] })), (err: Error) => {
    assert.match(err.message, /cases\[0\]\.expect\.pauseMS: unknown key \(known here: [^)]*pauseMs/);
    assert.match(err.message, /cases\[1\]\.expect\.pauseMs: expected integer, got number/);
    return true;
  });
});

// The Dockerfile cannot be built here (no container engine): these check its structure and
// that what it copies exists, so a broken image recipe fails in CI rather than on a user's box.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../host/src/config/load.ts';
import { ROOT } from '../../build/binary.ts';

interface Instr { op: string; args: string; line: number }

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instr[] {
  const out: Instr[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!buf && (line === '' || line.startsWith('#'))) return;
    if (!buf) start = i + 1;
    buf += line.endsWith('\\') ? `${line.slice(0, -1)} ` : line;
    if (line.endsWith('\\')) return;
    const m = /^(\w+)\s+(.*)$/s.exec(buf)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  return out;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const all = instructions(dockerfile);
const stages: Instr[][] = [];
for (const i of all) {
  if (i.op === 'FROM') stages.push([]);
  stages.at(-1)?.push(i);
}
const final = stages.at(-1)!;

test('multi-stage: a build stage that runs npm ci and build:binary, a minimal runtime stage', () => {
  assert.ok(stages.length >= 2, 'at least two stages');
  assert.match(stages[0]![0]!.args, /^node:24\S* AS build$/i);
  const run = stages[0]!.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  assert.match(run, /npm ci/);
  assert.match(run, /npm run build:binary/);
  assert.match(final[0]!.args, /^(gcr\.io\/distroless\/cc-debian12|debian:bookworm-slim)\b/);
});

test('runtime stage: copies dist/weir from the build stage, runs as non-root, exposes 8080', () => {
  const copies = final.filter((i) => i.op === 'COPY');
  assert.ok(copies.some((c) => /^--from=build\s+\/src\/dist\/weir\s+\/weir$/.test(c.args)), 'COPY --from=build …/dist/weir /weir');
  const users = final.filter((i) => i.op === 'USER');
  assert.ok(users.length > 0, 'a USER in the runtime stage');
  const user = users.at(-1)!.args.split(':')[0]!;
  assert.ok(user !== 'root' && user !== '0', `non-root user, got ${user}`);
  assert.ok(final.some((i) => i.op === 'EXPOSE' && i.args.split(/\s+/).includes('8080')));
  const entry = final.filter((i) => i.op === 'ENTRYPOINT').at(-1)!;
  assert.deepEqual(JSON.parse(entry.args), ['/weir', 'run', '-c', '/etc/weir/weir.kdl']);
});

test('no ADD of remote URLs (or ADD at all), no secrets baked in', () => {
  for (const i of all) {
    assert.notEqual(i.op, 'ADD', `line ${i.line}: use COPY`);
    if (i.op === 'ENV' || i.op === 'ARG') assert.doesNotMatch(i.args, /(password|token|secret)/i, `line ${i.line}`);
  }
  assert.doesNotMatch(dockerfile, /\b(curl|wget)\b/);
});

test('what the runtime stage copies from the context exists, and its default config is valid', async () => {
  for (const c of final.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const src = c.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
    for (const s of src) assert.ok(existsSync(join(ROOT, s)), `${s} exists`);
  }
  const res = await loadConfig(join(ROOT, 'deploy', 'weir.kdl'));
  assert.ok(res.ok, JSON.stringify(!res.ok && res.diagnostics));
  assert.ok(res.config.listeners.some((l) => /^0\.0\.0\.0:8080$|^\[::\]:8080$/.test(String((l as { address: unknown }).address))), 'listens on 8080 on all interfaces');
});

test('.dockerignore keeps node_modules, dist and .git out and everything the build needs in', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const ignored = (path: string): boolean => patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\0').replace(/\*/g, '[^/]*').replace(/\0/g, '(?:.*/)?')}(?:/.*)?$`);
    return re.test(path);
  });
  for (const p of ['node_modules', 'dist', '.git', 'sdk-assemblyscript/node_modules', 'test/fixtures/rust/probe/target']) assert.ok(ignored(p), `${p} ignored`);
  for (const p of ['package.json', 'package-lock.json', 'host/bin/weir.ts', 'plugin-abi/src/runtime/worker.ts', 'build/binary.ts', 'build/sea-config.json', 'deploy/weir.kdl', 'wit/weir.wit', 'plugins/build.ts']) {
    assert.ok(!ignored(p), `${p} must reach the build`);
  }
});

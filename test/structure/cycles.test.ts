// No module cycles: no runtime import cycle between two files, and no cycle at all (type
// imports included) between two folders of host/src: one concept per folder, dependencies
// pointing one way (server → proxy, never back). Inside a folder a type-only import back
// (exchange.ts naming its ProxyCore) is allowed: it is erased and orders nothing at load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const SOURCES = ['host', 'plugin-abi/src'];
const IMPORT = /^\s*(?:import|export)\s(type\s)?[^'"]*?from\s+['"](\.[^'"]+)['"]/gm;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import edges, file → file; `import type` only when `types` is set. */
function graph(types: boolean): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const f of SOURCES.flatMap((d) => files(join(ROOT, d)))) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) if (types || !m[1]) deps.add(normalize(join(dirname(f), m[2]!)));
    g.set(relative(ROOT, f), new Set([...deps].map((d) => relative(ROOT, d))));
  }
  return g;
}

/** One cycle in `g` as a path, or undefined. */
function findCycle(g: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (state.get(d) === undefined) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return undefined;
  };
  for (const n of g.keys()) if (state.get(n) === undefined) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

test('no runtime import cycle between two source files', () => {
  const cycle = findCycle(graph(false));
  assert.equal(cycle, undefined, `import cycle: ${cycle?.join(' → ')}`);
});

test('no import cycle between two folders of host/src', () => {
  const folder = (f: string): string => (f.startsWith('host/src/') ? f.split('/').slice(0, 3).join('/') : dirname(f));
  const g = new Map<string, Set<string>>();
  for (const [f, deps] of graph(true)) {
    const a = folder(f);
    if (!a.startsWith('host/src/')) continue;
    for (const d of deps) {
      const b = folder(d);
      if (b !== a && b.startsWith('host/src/')) (g.get(a) ?? g.set(a, new Set()).get(a)!).add(b);
    }
  }
  const cycle = findCycle(g);
  assert.equal(cycle, undefined, `folder cycle: ${cycle?.join(' → ')}`);
});

test('the cycle finder finds a cycle (self-check)', () => {
  assert.deepEqual(findCycle(new Map([['a', new Set(['b'])], ['b', new Set(['a'])]])), ['a', 'b', 'a']);
});

/**
 * Writes docs/sentinel.md from the schema table: every Sentinel spelling Weir reads (the
 * `aliases`, `moved`, `valueAliases`, `hoistChildren` and `reshape` fields of schema.ts),
 * the Weir key it maps to, and every refused key with its reason. It cannot drift from what
 * the loader does: test/config/docs.test.ts fails when the committed file is out of date.
 */
import { fileURLToPath } from 'node:url';
import { ROOT, type KeySpec } from './schema.ts';
import { CONFIG_SUBDIRS } from './load.ts';

export const SENTINEL_DOCS_PATH = fileURLToPath(new URL('../../../docs/sentinel.md', import.meta.url));

interface Row {
  readonly sentinel: string;
  readonly weir: string;
  readonly status: string;
}

const cell = (t: string): string => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const c = (t: string): string => `\`${t}\``;

function walk(specs: readonly KeySpec[], prefix: string, maps: Row[], refused: Row[]): void {
  for (const s of specs) {
    if (s.shorthandFor) continue;
    const path = prefix + s.name;
    for (const a of s.aliases ?? []) maps.push({ sentinel: c(prefix + a), weir: c(path), status: 'maps (same effect)' });
    for (const [m, to] of Object.entries(s.moved ?? {})) maps.push({ sentinel: c(`${path} › ${m}`), weir: c(`${path} › ${to.split('.').join(' › ')}`), status: 'maps (same effect)' });
    for (const v of [...(s.args ?? []), ...(s.rest ? [s.rest] : [])]) {
      const refusedValues = v.unsupportedValues ?? {};
      for (const [from, to] of Object.entries(v.valueAliases ?? {})) {
        if (String(to) === from) continue;
        const why = typeof to === 'string' ? refusedValues[to] : undefined;
        const row = { sentinel: c(`${path} ${JSON.stringify(from)}`), weir: c(`${path} ${JSON.stringify(to)}`), status: why ? `refused: ${why}` : 'maps (same effect)' };
        (why ? refused : maps).push(row);
      }
    }
    if (s.hoistChildren) maps.push({ sentinel: c(`${path} "…" { … }`), weir: `${c(path)} and its children as keys of ${c(prefix.replace(/ › $/, '') || 'the top level')}`, status: 'maps (same effect)' });
    if (s.reshape) maps.push({ sentinel: c(`${path} ${s.reshape.from}`), weir: c(path), status: `maps: ${s.reshape.doc}` });
    if (s.unsupported) {
      refused.push({ sentinel: c(path), weir: '—', status: `refused: ${s.unsupported}` });
      continue;
    }
    for (const [name, p] of Object.entries(s.props ?? {})) if (p.unsupported) refused.push({ sentinel: c(`${path} ${name}=`), weir: '—', status: `refused: ${p.unsupported}` });
    if (s.children) walk(s.children, path + ' › ', maps, refused);
    if (s.variants) for (const [kind, cs] of Object.entries(s.variants.cases)) walk(cs, `${path} [type "${kind}"] › `, maps, refused);
  }
}

function table(rows: readonly Row[]): string[] {
  return ['| Sentinel | Weir | Status |', '| --- | --- | --- |', ...rows.map((r) => `| ${cell(r.sentinel)} | ${cell(r.weir)} | ${cell(r.status)} |`)];
}

export function generateSentinelDocs(): string {
  const maps: Row[] = [];
  const refused: Row[] = [];
  walk(ROOT, '', maps, refused);
  return [
    '# Sentinel configurations',
    '',
    '<!-- Generated from host/src/config/schema.ts by host/src/config/gen-sentinel.ts (npm run gen). Do not edit by hand. -->',
    '',
    'Weir reads configuration files written for Sentinel (Zentinel) as they are. Before the schema',
    'check, each Sentinel spelling below is rewritten into Weir\'s own (host/src/config/dialect.ts), so',
    'it has exactly the effect of the Weir key it maps to. Keys Sentinel and Weir spell alike',
    '(`listeners`, `routes`, `matches`, `upstream`, `target`, `health-check`…) are not listed.',
    '',
    '- `weir validate --explain FILE` prints, for each Sentinel spelling the file uses, its',
    '  file:line:column and the Weir key it became.',
    '- `weir migrate FILE` prints the file rewritten in Weir\'s spelling, comments and layout kept',
    '  (KDL v1 files come out as KDL v2).',
    `- A config directory loads like Sentinel's: the entry file, then \`${CONFIG_SUBDIRS.join('/`, `')}/\``,
    '  recursively; `include "dir/*.kdl"` takes globs. Errors name the file they are in.',
    '- A key refused below fails `weir validate` and `weir run` with `WEIR_ERR_CONFIG_UNSUPPORTED` at',
    '  its file:line:column, saying what to use instead: the integrity rule (a key is accepted only if',
    '  the running proxy acts on it).',
    '',
    '## Spellings that map',
    '',
    ...table(maps),
    '',
    '## Refused',
    '',
    ...table(refused),
    '',
  ].join('\n');
}

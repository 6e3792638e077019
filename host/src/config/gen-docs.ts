/**
 * Writes docs/configuration.md from the schema table, so the reference cannot drift from
 * what the loader accepts. Run: `node host/src/config/gen-docs.ts`.
 * test/config/docs.test.ts fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FILTER_TYPES, ROOT, type ArgSpec, type KeySpec, type RestSpec, type ValueSpec } from './schema.ts';

export const DOCS_PATH = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

function typeText(v: ValueSpec): string {
  if (v.enum) return v.enum.filter((e) => v.unsupportedValues?.[e] === undefined).map((e) => `"${e}"`).join(' \\| ');
  const range = v.min !== undefined && v.max !== undefined ? ` ${v.min}–${v.max}` : v.min !== undefined ? ` ≥ ${v.min}` : v.max !== undefined ? ` ≤ ${v.max}` : '';
  return `${v.type}${range}`;
}

function signature(s: KeySpec): string {
  const parts: string[] = [];
  for (const a of s.args ?? []) parts.push(argText(a));
  if (s.rest) parts.push(restText(s.rest));
  for (const [name, p] of Object.entries(s.props ?? {})) parts.push(`[${name}=<${typeText(p)}>]`);
  if (s.children || s.anyChildren || s.variants) parts.push('{ … }');
  return parts.join(' ');
}
function argText(a: ArgSpec): string {
  const t = `<${a.name}: ${typeText(a)}>`;
  return a.optional ? `[${t}]` : t;
}
function restText(r: RestSpec): string {
  return `<${r.name}: ${typeText(r)}>…`;
}
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
function code(text: string): string {
  // Inside a table even code spans need `|` escaped; typeText already writes `\|`.
  return text === '' ? '' : `\`${text}\``;
}

function defaultText(s: KeySpec): string {
  const d = s.default!;
  const t = (s.args?.[0] ?? s.rest)?.type;
  if (typeof d !== 'string' || t === 'integer' || t === 'number') return String(d);
  return d.split(' ').map((w) => JSON.stringify(w)).join(' ');
}

function rows(specs: readonly KeySpec[], prefix: string, out: string[]): void {
  for (const s of specs) {
    const path = prefix + s.name;
    const flags = [s.required ? '**required**' : '', s.repeatable ? 'repeatable' : ''].filter(Boolean).join(', ');
    const def = s.default === undefined ? '' : code(defaultText(s));
    const refusedValues = Object.entries(s.args?.[0]?.unsupportedValues ?? {});
    const doc = [
      s.doc,
      flags ? `(${flags})` : '',
      s.unsupported ? `**Refused** (\`WEIR_ERR_CONFIG_UNSUPPORTED\`) until it is built: ${s.unsupported}` : '',
      refusedValues.length ? `**Refused** (\`WEIR_ERR_CONFIG_UNSUPPORTED\`) until they are built: ${refusedValues.map(([v]) => `\`"${v}"\``).join(', ')}.` : '',
      s.aliases?.length ? `Also read as Sentinel's ${s.aliases.map((a) => `\`${a}\``).join(', ')} (see [sentinel.md](sentinel.md)).` : '',
      Object.keys(s.moved ?? {}).length ? `Sentinel's ${Object.entries(s.moved!).map(([a, to]) => `\`${a}\` is read as \`${to.split('.').join(' › ')}\``).join(', ')}.` : '',
    ].filter(Boolean).join(' ');
    out.push(`| ${code(path)} | ${code(signature(s))} | ${def} | ${cell(doc)} |`);
    for (const [name, p] of Object.entries(s.props ?? {})) {
      const pdoc = p.unsupported ? `${p.doc} **Refused** (\`WEIR_ERR_CONFIG_UNSUPPORTED\`) until it is built: ${p.unsupported}` : p.doc;
      out.push(`| ${code(`${path} ${name}=`)} | ${code(`<${typeText(p)}>`)} |  | ${cell(pdoc)} |`);
    }
    if (s.children) rows(s.children, path + ' › ', out);
    // Keys picked by the block's argument (`discovery "dns"`), under that argument.
    if (s.variants?.fromArg) for (const [kind, specs] of Object.entries(s.variants.cases)) rows(specs, `${path} "${kind}" › `, out);
  }
}

function table(specs: readonly KeySpec[], prefix: string): string[] {
  const out = ['| Key | Arguments | Default | Description |', '| --- | --- | --- | --- |'];
  rows(specs, prefix, out);
  return out;
}

export function generateDocs(): string {
  const out: string[] = [];
  out.push(
    '# Configuration',
    '',
    '<!-- Generated from host/src/config/schema.ts by host/src/config/gen-docs.ts. Do not edit by hand. -->',
    '',
    'Weir reads its configuration from [KDL](https://kdl.dev) files. Both KDL v2 (`#true`) and',
    'KDL v1 (`true`) are accepted. `weir validate FILE` checks a file without starting the proxy;',
    'every problem is reported at once, as `file:line:column: error CODE: message`. A reload that',
    'fails validation keeps the running configuration.',
    '',
    '- **Files.** Load a file, or a directory: its `*.kdl` files (an entry file `weir.kdl`, `zentinel.kdl`',
    '  or `sentinel.kdl` first, the others in name order), then every `*.kdl` under its `listeners/`, `routes/`,',
    '  `upstreams/`, `filters/`, `plugins/` and `agents/` folders, recursively (`*.example.kdl` skipped).',
    '  `include "other.kdl"` reads another file, relative to the including one, as if written in its place;',
    '  `include "conf.d/*.kdl"` reads every file the glob matches, in path order (matching none is an error).',
    '- **Sentinel\'s spelling** is read too: see [sentinel.md](sentinel.md) for each key it maps to;',
    '  `weir validate --explain` lists the ones a file uses, `weir migrate FILE` rewrites it in Weir\'s.',
    '  `listeners`, `routes`, `upstreams`, `filters` and `plugins` merge across files; other blocks may',
    '  appear once. `listener`, `route`, `upstream`, `filter` and `plugin` may also be written at the top',
    '  level, as shorthand for the same node inside its plural block. Config and included files must be',
    '  regular files of at most 16 MiB; an empty config file is refused (a reload caught it mid-write).',
    '- **Units.** Keys ending in `-secs`, and the `timeouts`, `idle-timeout`, `max-lifetime`,',
    '  `refresh-interval` and `lock-timeout` keys, take seconds (fractions allowed); keys ending in `-ms`',
    '  take milliseconds. Sizes take a number of bytes or a string: `"16MiB"`, `"10MB"`, `"512KiB"`',
    '  (`KiB`/`MiB`/`GiB` and `k`/`m`/`g` are powers of 1024; `KB`/`MB`/`GB` are powers of 1000).',
    '- **Paths** are relative to the file that names them, and must exist.',
    '- **Environment.** `"${NAME}"` in any string is replaced by the environment variable `NAME`;',
    '  `"${NAME:-fallback}"` gives a fallback. An unset variable without a fallback is an error.',
    '- **Names** of listeners, routes, upstreams, filters and plugins are unique; routes refer to',
    '  upstreams and filters by name, `wasm` filters refer to plugins by name.',
    '- **Refused keys.** Every key below is acted on by the running proxy. Keys marked **Refused**',
    '  name features Weir does not have yet: `weir validate` and `weir run` reject them with',
    '  `WEIR_ERR_CONFIG_UNSUPPORTED` at their file:line:column and say what to use instead. Keys that',
    '  contradict each other (a request timeout shorter than `header-timeout-ms`), or that another',
    '  key makes inert (`redis-url` without `backend "redis"`), are refused with',
    '  `WEIR_ERR_CONFIG_CONSTRAINT`. `weir validate` also loads every plugin and runs its `configure`.',
    '',
    '## Example',
    '',
    '```kdl',
    'schema-version "1.0"',
    '',
    'listeners {',
    '    listener "public" {',
    '        address "0.0.0.0:8080"',
    '        protocol "http"',
    '    }',
    '}',
    '',
    'routes {',
    '    route "api" {',
    '        priority 10',
    '        matches {',
    '            path-prefix "/api/"',
    '            method "GET" "POST"',
    '        }',
    '        upstream "api"',
    '        filters "per-client"',
    '        policies {',
    '            timeout-secs 10',
    '            retry { max-attempts 3; retry-on "connect-failure" "503"; }',
    '        }',
    '    }',
    '    route "health" {',
    '        matches { path "/health"; }',
    '        builtin-handler "health"',
    '    }',
    '}',
    '',
    'upstreams {',
    '    upstream "api" {',
    '        target "10.0.0.1:8080" weight=2',
    '        target "10.0.0.2:8080"',
    '        load-balancing "p2c"',
    '    }',
    '}',
    '',
    'filters {',
    '    filter "per-client" {',
    '        type "rate-limit"',
    '        max-rps 100',
    '        burst 20',
    '    }',
    '}',
    '',
    'limits {',
    '    max-body-bytes "10MiB"',
    '}',
    '```',
    '',
    '## Reference',
    '',
    '`A › b` is key `b` inside block `A`. Arguments: `<name: type>` is a required argument,',
    '`[…]` an optional one, `…` a list of one or more, `key=<type>` a property. Defaults are',
    'written in the key\'s own unit.',
  );
  for (const s of ROOT) {
    if (s.shorthandFor) continue;
    out.push('', `### \`${s.name}\``, '', s.doc, '');
    if (s.name === 'filters') {
      out.push(...table(s.children ?? [], 'filters › '));
      out.push('', 'Further keys of `filter`, by `type`:');
      for (const [type, specs] of Object.entries(FILTER_TYPES)) {
        out.push('', `#### \`type "${type}"\``, '', ...table(specs, 'filters › filter › '));
      }
      continue;
    }
    out.push(...table([s], ''));
  }
  return out.join('\n') + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(DOCS_PATH, generateDocs());
  console.log(`wrote ${DOCS_PATH}`);
}

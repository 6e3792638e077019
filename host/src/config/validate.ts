/**
 * Checks ConfigNode trees against the schema table (schema.ts): unknown keys, argument
 * counts and types, enums, ranges, required keys, repeated keys, regexes, addresses and
 * file paths. Keys, properties and enum values marked `unsupported` in the schema are
 * refused with WEIR_ERR_CONFIG_UNSUPPORTED at their location. Collects every problem; never throws.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ConfigDiagnostic, ConfigNode, ConfigScalar, SourceLocation } from './types.ts';
import type { KeySpec, ValueSpec } from './schema.ts';
import { didYouMean, parseAddress, parseSize } from './values.ts';

export interface ValidateOptions {
  readonly skipFileChecks: boolean;
}

export function validateNodes(nodes: readonly ConfigNode[], specs: readonly KeySpec[], opts: ValidateOptions, where = 'the top level'): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  checkBlock(nodes, specs, where, undefined, opts, out);
  return out;
}

function describe(v: ConfigScalar): string {
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (v === null) return 'null';
  return `${typeof v} ${String(v)}`;
}

const TYPE_NAMES: Record<ValueSpec['type'], string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (`true`/`false` in KDL v1, `#true`/`#false` in v2)',
  size: 'a size (a number of bytes or a string like "16MiB")',
  secs: 'a number of seconds',
  ms: 'a number of milliseconds',
  address: 'an address string ("host:port" or "[v6]:port")',
  path: 'a file path string',
  regex: 'a regular expression string',
  'string-or-boolean': 'a string or a boolean',
  scalar: 'a value',
};

function checkBlock(
  nodes: readonly ConfigNode[],
  specs: readonly KeySpec[],
  where: string,
  parentLoc: SourceLocation | undefined,
  opts: ValidateOptions,
  out: ConfigDiagnostic[],
): void {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const seen = new Map<string, ConfigNode>();
  for (const node of nodes) {
    const spec = byName.get(node.name);
    if (!spec) {
      out.push({
        code: 'WEIR_ERR_CONFIG_UNKNOWN_KEY',
        message: `unknown key \`${node.name}\` in ${where}`,
        loc: node.loc,
        hint: didYouMean(node.name, specs.map((s) => s.name)),
      });
      continue;
    }
    if (spec.unsupported !== undefined) {
      // Not descended into: one diagnostic per refused block is enough.
      out.push({ code: 'WEIR_ERR_CONFIG_UNSUPPORTED', message: `\`${node.name}\` is refused: ${spec.unsupported}`, loc: node.loc, hint: undefined });
      continue;
    }
    // An alias and its block are one key: writing both is a duplicate.
    const key = spec.aliasOf ?? spec.name;
    const first = seen.get(key);
    if (first && !spec.repeatable) {
      out.push({
        code: 'WEIR_ERR_CONFIG_DUPLICATE',
        message: first.name === node.name ? `\`${node.name}\` is set twice in ${where}` : `\`${node.name}\` and \`${first.name}\` are the same block, set twice in ${where}`,
        loc: node.loc,
        hint: first.name === node.name ? `first set at ${first.loc.file}:${first.loc.line}:${first.loc.column}` : `keep one; \`${first.name}\` is at ${first.loc.file}:${first.loc.line}:${first.loc.column}`,
      });
    }
    if (!first) seen.set(key, node);
    checkNode(node, spec, opts, out);
  }
  if (parentLoc) {
    for (const s of specs) {
      if (s.required && !seen.has(s.name)) {
        out.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `${where} needs \`${s.name}\``, loc: parentLoc, hint: undefined });
      }
    }
  }
}

function checkNode(node: ConfigNode, spec: KeySpec, opts: ValidateOptions, out: ConfigDiagnostic[]): void {
  const argSpecs = spec.args ?? [];
  const locOf = (i: number): SourceLocation => node.argLocs?.[i] ?? node.loc;
  for (let i = 0; i < argSpecs.length; i++) {
    const a = argSpecs[i]!;
    if (i >= node.args.length) {
      if (!a.optional) {
        out.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `\`${node.name}\` needs a ${a.name} argument (${TYPE_NAMES[a.type]})`, loc: node.loc, hint: undefined });
      }
      continue;
    }
    checkValue(node.args[i]!, a, `\`${node.name}\``, locOf(i), opts, out);
  }
  const extra = node.args.length - argSpecs.length;
  if (spec.rest) {
    const min = spec.rest.minCount ?? 1;
    if (extra < min) {
      out.push({ code: 'WEIR_ERR_CONFIG_MISSING', message: `\`${node.name}\` needs at least ${min} ${spec.rest.name} argument${min === 1 ? '' : 's'}`, loc: node.loc, hint: undefined });
    }
    for (let i = argSpecs.length; i < node.args.length; i++) checkValue(node.args[i]!, spec.rest, `\`${node.name}\``, locOf(i), opts, out);
  } else if (extra > 0) {
    out.push({
      code: 'WEIR_ERR_CONFIG_TYPE',
      message: `\`${node.name}\` takes ${argSpecs.length === 0 ? 'no arguments' : `${argSpecs.length} argument${argSpecs.length === 1 ? '' : 's'}`}, got ${node.args.length}`,
      loc: locOf(argSpecs.length),
      hint: undefined,
    });
  }
  const propSpecs = spec.props ?? {};
  for (const [name, value] of Object.entries(node.props)) {
    const p = propSpecs[name];
    const loc = node.propLocs?.[name] ?? node.loc;
    if (!p) {
      out.push({
        code: 'WEIR_ERR_CONFIG_UNKNOWN_KEY',
        message: `unknown property \`${name}\` on \`${node.name}\``,
        loc,
        hint: didYouMean(name, Object.keys(propSpecs)),
      });
      continue;
    }
    if (p.unsupported !== undefined) {
      out.push({ code: 'WEIR_ERR_CONFIG_UNSUPPORTED', message: `\`${node.name}\` property \`${name}=\` is refused: ${p.unsupported}`, loc, hint: undefined });
      continue;
    }
    checkValue(value, p, `\`${node.name}\` property \`${name}\``, loc, opts, out);
  }
  if (spec.anyChildren) return;
  let childSpecs: readonly KeySpec[] = spec.children ?? [];
  if (spec.variants) {
    const kind = spec.variants.fromArg ? node.args[0] : [...node.children].reverse().find((c) => c.name === spec.variants!.key)?.args[0];
    // A refused kind (its own diagnostic) is not checked further.
    if (spec.variants.fromArg && typeof kind === 'string' && spec.args?.[0]?.unsupportedValues?.[kind] !== undefined) return;
    const cases = spec.variants.cases;
    if (typeof kind === 'string' && Object.hasOwn(cases, kind)) childSpecs = [...childSpecs, ...cases[kind]!];
    else {
      // Unknown kind (already reported by the enum check): accept any variant's keys to avoid noise.
      const union = new Map<string, KeySpec>();
      for (const list of Object.values(cases)) for (const s of list) union.set(s.name, { ...s, required: false });
      childSpecs = [...childSpecs, ...union.values()];
    }
  }
  if (childSpecs.length === 0) {
    if (node.children.length > 0) {
      out.push({ code: 'WEIR_ERR_CONFIG_TYPE', message: `\`${node.name}\` takes no children block`, loc: node.children[0]!.loc, hint: undefined });
    }
    return;
  }
  const label = typeof node.args[0] === 'string' && spec.args?.length ? ` "${node.args[0]}"` : '';
  checkBlock(node.children, childSpecs, `\`${node.name}${label}\``, node.loc, opts, out);
}

function checkValue(v: ConfigScalar, spec: ValueSpec, what: string, loc: SourceLocation, opts: ValidateOptions, out: ConfigDiagnostic[]): void {
  const typeError = (hint?: string): void => {
    out.push({ code: 'WEIR_ERR_CONFIG_TYPE', message: `${what} expects ${TYPE_NAMES[spec.type]}, got ${describe(v)}`, loc, hint });
  };
  const valueError = (message: string, hint?: string): void => {
    out.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `${what}: ${message}`, loc, hint });
  };
  let num: number | undefined;
  switch (spec.type) {
    case 'scalar':
      return;
    case 'string':
    case 'path':
    case 'regex':
    case 'address':
      if (typeof v !== 'string') {
        typeError(typeof v === 'number' && spec.type !== 'regex' ? `quote it: "${String(v)}"` : undefined);
        return;
      }
      break;
    case 'boolean':
      if (typeof v !== 'boolean') {
        typeError(v === 'true' || v === 'false' ? `drop the quotes: ${v}` : undefined);
        return;
      }
      return;
    case 'string-or-boolean':
      if (typeof v !== 'string' && typeof v !== 'boolean') typeError();
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        typeError(typeof v === 'string' && /^-?\d+$/.test(v) ? `drop the quotes: ${v}` : undefined);
        return;
      }
      num = v;
      break;
    case 'number':
    case 'secs':
    case 'ms':
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        typeError(typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? `drop the quotes: ${v}` : undefined);
        return;
      }
      num = v;
      if ((spec.type === 'secs' || spec.type === 'ms') && v < 0) {
        valueError(`must not be negative, got ${v}`);
        return;
      }
      // Node's servers and timers take whole milliseconds (a fraction is ERR_OUT_OF_RANGE at start).
      if (spec.type === 'ms' && !Number.isInteger(v)) {
        valueError(`must be a whole number of milliseconds, got ${v}`, `write ${Math.round(v)}`);
        return;
      }
      break;
    case 'size':
      num = parseSize(v);
      if (num === undefined) {
        typeError();
        return;
      }
      break;
  }
  if (num !== undefined) {
    if (spec.min !== undefined && num < spec.min) valueError(`must be at least ${spec.min}, got ${num}`);
    if (spec.max !== undefined && num > spec.max) valueError(`must be at most ${spec.max}, got ${num}`);
    return;
  }
  const s = v as string;
  if (spec.enum && !spec.enum.includes(s)) {
    const accepted = spec.enum.filter((e) => spec.unsupportedValues?.[e] === undefined);
    valueError(`\`${s}\` is not one of ${accepted.map((e) => `\`${e}\``).join(', ')}`, didYouMean(s, accepted));
    return;
  }
  const refused = spec.unsupportedValues?.[s];
  if (refused !== undefined) {
    out.push({ code: 'WEIR_ERR_CONFIG_UNSUPPORTED', message: `${what} \`${s}\` is refused: ${refused}`, loc, hint: undefined });
    return;
  }
  if (spec.type === 'regex') {
    try {
      new RegExp(s);
    } catch (err) {
      valueError((err as Error).message);
    }
  } else if (spec.type === 'address') {
    if (!parseAddress(s)) valueError(`\`${s}\` is not an address`, 'write "host:port", e.g. "0.0.0.0:8080", or "[::1]:8080" for IPv6');
  } else if (spec.type === 'path') {
    if (!opts.skipFileChecks && !existsSync(resolve(dirname(loc.file), s))) {
      out.push({ code: 'WEIR_ERR_CONFIG_FILE', message: `${what}: file \`${s}\` does not exist`, loc, hint: isAbsolute(s) ? undefined : `resolved to ${resolve(dirname(loc.file), s)}` });
    }
  }
}

/**
 * Log paths are checked when a config is loaded (validate, start, reload): an `access-log`
 * file that cannot be written is an error at its file:line:column, not a crash once the
 * proxy is listening.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ConfigDiagnostic, ConfigNode } from './types.ts';

/**
 * Why `target` cannot be written, or undefined if it can: the file exists and is writable,
 * or its directory exists and is writable. Relative paths are relative to the working
 * directory, as the running proxy opens them.
 */
export function checkLogTarget(target: string): string | undefined {
  const abs = resolve(target);
  try {
    const st = statSync(abs, { throwIfNoEntry: false });
    if (st) {
      if (st.isDirectory()) return `${abs} is a directory`;
      accessSync(abs, constants.W_OK);
      return undefined;
    }
    const dir = dirname(abs);
    const d = statSync(dir, { throwIfNoEntry: false });
    if (!d) return `directory ${dir} does not exist`;
    if (!d.isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** WEIR_ERR_LOG_SINK diagnostics for every `observability › logging › access-log` and `audit-log` path that cannot be written. */
export function checkLogTargets(nodes: readonly ConfigNode[]): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  for (const o of nodes) {
    if (o.name !== 'observability') continue;
    for (const lg of o.children) {
      if (lg.name !== 'logging') continue;
      for (const a of lg.children) {
        const target = a.args[0];
        if (a.name !== 'access-log' || typeof target !== 'string') continue;
        const why = checkLogTarget(target);
        if (why) out.push({ code: 'WEIR_ERR_LOG_SINK', message: `${a.name} \`${target}\` cannot be written: ${why}`, loc: a.argLocs?.[0] ?? a.loc, hint: 'point it at a writable file, or use `true` for stdout' });
      }
    }
  }
  return out;
}

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { loadConfigText, type LoadOptions } from '../../host/src/config/load.ts';
import type { ConfigDiagnostic, WeirConfig } from '../../host/src/config/types.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
export const fixture = (...parts: string[]): string => join(FIXTURES, ...parts);

/** Loads text that must be valid; returns the snapshot. */
export async function ok(text: string, opts: LoadOptions = { skipFileChecks: true }): Promise<WeirConfig> {
  const r = await loadConfigText(text, fixture('inline.kdl'), opts);
  if (!r.ok) assert.fail(`expected a valid config, got:\n${r.diagnostics.map((d) => `${d.loc?.line}:${d.loc?.column} ${d.code} ${d.message}`).join('\n')}`);
  return r.config;
}

/** Loads text that must be invalid; returns the diagnostics. */
export async function bad(text: string, opts: LoadOptions = { skipFileChecks: true }): Promise<readonly ConfigDiagnostic[]> {
  const r = await loadConfigText(text, fixture('inline.kdl'), opts);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.diagnostics;
}

/** The one diagnostic with `code`, at line:column. */
export function expectDiag(diags: readonly ConfigDiagnostic[], code: string, line: number, column: number): ConfigDiagnostic {
  const found = diags.find((d) => d.code === code && d.loc?.line === line && d.loc?.column === column);
  if (!found) assert.fail(`no ${code} at ${line}:${column}; got:\n${diags.map((d) => `${d.loc?.line}:${d.loc?.column} ${d.code} ${d.message}`).join('\n')}`);
  return found;
}

/**
 * Builds the first-party plugins (plugins/NAME → plugins/NAME/build/NAME.wasm) with the
 * AssemblyScript SDK: npm alone is enough. Skips a plugin whose build is newer than its
 * sources and the SDK. Run by `npm ci` (prepare) and `npm run build:plugins`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../host/src/plugin-tool/build.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const FIRST_PARTY = ['rate-limit', 'geo', 'lb', 'api-key', 'cors', 'waf', 'ip-filter', 'basic-auth', 'jwt'] as const;

/** Newest modification time of a project's sources (build output and node_modules aside). */
export function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'build' || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export async function buildFirstPartyPlugins(opts: { force?: boolean; log?: (s: string) => void } = {}): Promise<void> {
  // plugins/shared holds helpers the plugins import: a change there rebuilds them all.
  const sdk = Math.max(newest(join(ROOT, 'sdk-assemblyscript')), newest(join(ROOT, 'plugins', 'shared')));
  for (const name of FIRST_PARTY) {
    const dir = join(ROOT, 'plugins', name);
    const out = join(dir, 'build', `${name}.wasm`);
    if (!opts.force && existsSync(out) && statSync(out).mtimeMs > Math.max(sdk, newest(dir))) continue;
    await buildPlugin(dir, { log: opts.log ?? (() => {}) });
    opts.log?.(`built ${out}`);
  }
}

if (import.meta.main) {
  await buildFirstPartyPlugins({ force: process.argv.includes('--force'), log: (s) => process.stdout.write(`${s.replace(/\n$/, '')}\n`) });
}

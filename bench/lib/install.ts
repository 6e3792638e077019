// Installs what the peers need when it is missing: Debian packages (as root) and the
// Node peers from bench/package.json. The product's own dependencies are never touched.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './proc.ts';

const TOOLS: Record<string, string> = { nginx: 'nginx', haproxy: 'haproxy', caddy: 'caddy', wrk: 'wrk', taskset: 'util-linux' };

export async function which(cmd: string): Promise<string | undefined> {
  const r = await run('sh', ['-c', `command -v ${cmd}`], { log: false, timeoutMs: 5000 });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Returns the tools still missing after trying to install them. */
export async function ensureTools(wanted: readonly string[], say: (s: string) => void): Promise<string[]> {
  const missing: string[] = [];
  for (const t of wanted) if (!(await which(t))) missing.push(t);
  if (missing.length === 0) return [];
  const pkgs = [...new Set(missing.map((t) => TOOLS[t] ?? t))];
  if (process.getuid?.() !== 0) {
    say(`missing ${missing.join(', ')}; not root, so not installing (run: sudo apt-get install -y ${pkgs.join(' ')})`);
    return missing;
  }
  say(`installing ${pkgs.join(' ')} with apt-get`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  let r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, timeoutMs: 300_000 });
  if (r.code !== 0) {
    // A fresh machine has no package lists yet.
    await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
    r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, timeoutMs: 300_000 });
  }
  // Debian's packages start their services where an init system runs; those would
  // compete for the cores, so the harness reports them (it does not stop what it did not start).
  const still: string[] = [];
  for (const t of missing) if (!(await which(t))) still.push(t);
  if (r.code !== 0) say(`apt-get failed:\n${r.stderr.slice(-800)}`);
  return still;
}

export async function ensureNodePeers(benchDir: string, say: (s: string) => void): Promise<boolean> {
  const need = ['fastify', '@fastify/http-proxy', 'http-proxy'];
  if (need.every((p) => existsSync(join(benchDir, 'node_modules', p, 'package.json')))) return true;
  say('installing the Node peers (npm ci in bench/)');
  const hasLock = existsSync(join(benchDir, 'package-lock.json'));
  const r = await run('npm', [hasLock ? 'ci' : 'install', '--no-audit', '--no-fund'], { cwd: benchDir, timeoutMs: 300_000 });
  if (r.code !== 0) say(`npm failed:\n${r.stderr.slice(-800)}`);
  return r.code === 0;
}

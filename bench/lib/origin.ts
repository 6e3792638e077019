/**
 * The benchmark origin: nginx on the load core, answering a fixed body on two ports (the
 * load-balancing rows spread over both). Shared by run.ts and h2.ts so every row measures
 * against the same origin.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { render } from './contestants.ts';
import { freePort, start, waitFor200, type Started } from './proc.ts';

/** The origin's response body (100 bytes); run.ts checks every proxy answers exactly this. */
export const BODY = 'weir-bench origin response: a fixed one hundred byte body for every proxy in the comparison. ok';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Starts the origin pinned to `core`, under `work` (its temp folders must exist), once it answers 200. */
export async function startNginxOrigin(work: string, core: string): Promise<{ origin: Started; port: number; port2: number }> {
  const port = await freePort();
  const port2 = await freePort();
  const conf = join(work, 'origin.conf');
  writeFileSync(conf, render(readFileSync(join(benchDir, 'configs/peers/nginx-origin.conf'), 'utf8'), { TMP: work, PORT: port, PORT_2: port2, BODY }));
  const origin = start('origin', 'taskset', ['-c', core, 'nginx', '-p', work, '-e', join(work, 'origin-error.log'), '-c', conf]);
  await waitFor200(`http://127.0.0.1:${port}/`, origin, 10_000);
  return { origin, port, port2 };
}

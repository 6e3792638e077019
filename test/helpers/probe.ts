/** Builds the Rust probe plugin (test/fixtures/rust/probe) into components, once per process and version. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileRust } from '../../host/src/plugin-tool/rust.ts';
import { componentize } from '../fixtures/plugins/build.ts';

const DIR = fileURLToPath(new URL('../fixtures/rust/probe', import.meta.url));
const built = new Map<string, Promise<Uint8Array>>();
let queue: Promise<unknown> = Promise.resolve();

/** The probe component built with PROBE_VERSION=`version` (builds are serialised: cargo shares one target dir). */
export function probeComponent(version = '1'): Promise<Uint8Array> {
  let p = built.get(version);
  if (!p) {
    p = queue.then(async () => {
      const prev = process.env['PROBE_VERSION'];
      process.env['PROBE_VERSION'] = version;
      try {
        return await componentize(await compileRust(DIR));
      } finally {
        if (prev === undefined) delete process.env['PROBE_VERSION'];
        else process.env['PROBE_VERSION'] = prev;
      }
    });
    queue = p.catch(() => {});
    built.set(version, p);
  }
  return p;
}

export async function writeProbe(dir: string, version = '1', name = 'probe.wasm'): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, await probeComponent(version));
  return path;
}

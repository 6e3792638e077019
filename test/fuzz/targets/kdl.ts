/**
 * KDL configs mutated from valid seeds (corpus/kdl: the every-key fixture in KDL v2 and v1,
 * small configs) through `loadConfigText`, the loader `weir validate`, `weir run` and reloads
 * use. It must resolve — a config or diagnostics — and never throw; every diagnostic has a
 * code from the error table, a message and, when located, a line and column from 1.
 */
import { join } from 'node:path';
import { loadConfigText } from '../../../host/src/config/index.ts';
import { ERRORS } from '../../../host/src/errors.ts';
import { tmpDir } from '../../helpers/weir.ts';
import { mutated } from '../mutate.ts';
import type { FuzzEnv, FuzzTarget } from '../target.ts';

const KDL_TOKENS = [
  '{', '}', ';', '"', '\n', ' ', '=', '\\', '#true', '#false', '#null', '#inf', '#-inf', '#nan', 'true', 'null', '/-', '//', '/*', '*/',
  'r#"', '"#', '#"', '"""\n', '(u8)', '(type)', '1e999', '-0', '0x', '0xffffffffffffffffffff', '1_000', '9007199254740993', '-1', '0.5',
  'include "weir.kdl"\n', 'include "."\n', 'include "/dev/zero"\n', '${HOME}', '${', '$${X}', '"1MiB"', '"1TiB"', '"99999999999999999999GiB"',
  'schema-version "1.0"\n', 'schema-version "9"\n', 'route "r" { }', 'upstream "u" { target "a:1"; }', 'filter "f" { type "wasm"; }',
  'listener "l" { address "[::1]:0"; }', 'address "0.0.0.0:99999"', 'priority 99999999999', 'path-regex "(a+)+$"', 'path-regex "["',
  '\u0000', '\ufeff', '\u202e', '\u00e9', '\r\n', '\t', 'x'.repeat(300),
];

let dir: string | undefined;

export const kdl: FuzzTarget<Buffer> = {
  name: 'kdl',
  description: 'KDL configs mutated from the every-key fixtures (v2 and v1) and small configs, through the loader validate, run and reloads use',
  ext: 'kdl',
  setup: async (): Promise<FuzzEnv> => {
    const gc = (globalThis as { gc?: () => void }).gc;
    return {
      alive: async () => {},
      memory: () => {
        gc?.();
        return process.memoryUsage().heapUsed;
      },
      close: async () => {},
    };
  },
  arbitrary: mutated('kdl', KDL_TOKENS),
  check: async (_env, input) => {
    dir ??= tmpDir('weir-fuzz-kdl-');
    let r;
    try {
      r = await loadConfigText(input.toString('utf8'), join(dir, 'weir.kdl'), { skipFileChecks: true, env: { HOME: '/root' } });
    } catch (e) {
      throw new Error(`loadConfigText threw instead of a diagnostic: ${(e as Error).stack?.slice(0, 1200)}`);
    }
    if (r.ok) return;
    if (r.diagnostics.length === 0) throw new Error('a failed load with no diagnostic');
    for (const d of r.diagnostics) {
      if (!(d.code in ERRORS)) throw new Error(`diagnostic code ${d.code} is not in the error table`);
      if (typeof d.message !== 'string' || d.message.length === 0) throw new Error(`diagnostic ${d.code} without a message`);
      if (d.loc && (!(d.loc.line >= 1) || !(d.loc.column >= 1))) throw new Error(`diagnostic ${d.code} at line ${d.loc.line} column ${d.loc.column}`);
    }
  },
  encode: (b) => b,
  decode: (b) => b,
};

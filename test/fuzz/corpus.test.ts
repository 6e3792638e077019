/**
 * Every corpus file of every fuzzer (its seeds and the inputs that once failed) through the
 * fuzzer's own check, against a fresh environment: the regression half of `npm run fuzz`.
 */
import { test } from 'node:test';
import { corpus } from './mutate.ts';
import { TARGETS } from './targets/index.ts';

for (const target of TARGETS) {
  test(`fuzz corpus: ${target.name}`, async () => {
    const env = await target.setup();
    try {
      await env.alive();
      for (const { file, bytes } of corpus(target.name)) {
        try {
          await target.check(env, target.decode(bytes));
        } catch (e) {
          throw new Error(`corpus/${target.name}/${file}: ${(e as Error).message}`);
        }
      }
      await env.alive();
    } finally {
      await env.close();
    }
  });
}

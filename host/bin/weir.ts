#!/usr/bin/env node
// Entry point of the `weir` command.
import { main } from '../src/cli/main.ts';

main(process.argv).catch((err: Error & { code?: string }) => {
  process.stderr.write(`weir: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(1);
});

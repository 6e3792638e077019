/**
 * The `weir plugin` command group: `new` scaffolds a project, `build` turns it into a
 * component, `test` runs it against request/response cases with no network.
 */
import { Command, Option } from 'commander';
import { buildPlugin } from './build.ts';
import { PluginToolError } from './componentize.ts';
import { newPlugin } from './new.ts';

export interface PluginCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: PluginCliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** Prints a build or scaffold error for the user (no stack for expected failures) and sets the exit code. */
function fail(io: PluginCliIo, err: unknown): void {
  io.err(`error: ${err instanceof PluginToolError ? err.message : (err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
}

export function pluginCommand(io: PluginCliIo = stdio): Command {
  const plugin = new Command('plugin').description('create and build WebAssembly plugins');

  plugin.command('new')
    .description('scaffold a plugin project in ./NAME')
    .argument('<name>', 'plugin name: lowercase letters, digits and -')
    .addOption(new Option('--lang <lang>', 'language').choices(['as', 'rust']).default('as'))
    .action((name: string, opts: { lang: 'as' | 'rust' }) => {
      try {
        const { dir, files } = newPlugin(name, { lang: opts.lang });
        io.out(`created ${dir}\n${files.map((f) => `  ${f}\n`).join('')}next: cd ${name} && weir plugin build\n`);
      } catch (err) {
        fail(io, err);
      }
    });

  plugin.command('build')
    .description('compile a plugin project (AssemblyScript or Rust) to a checked component')
    .argument('[dir]', 'project directory', '.')
    .option('-o, --out <file>', 'output file (default: the manifest\'s, else DIR/build/NAME.wasm)')
    .action(async (dir: string, opts: { out?: string }) => {
      try {
        await buildPlugin(dir, { out: opts.out, log: (line) => io.out(line.endsWith('\n') ? line : `${line}\n`) });
      } catch (err) {
        fail(io, err);
      }
    });

  plugin.command('test')
    .description('run a plugin component against request/response cases (JSON), no network')
    .argument('<plugin>', 'the .wasm component')
    .argument('<cases>', 'the cases file')
    .action(async (wasm: string, casesFile: string) => {
      try {
        const { runPluginTests } = await import('../../../plugin-abi/src/harness/cases.ts');
        const failed = await runPluginTests(wasm, casesFile, io.out);
        if (failed > 0) process.exitCode = 1;
      } catch (err) {
        fail(io, err);
      }
    });

  return plugin;
}

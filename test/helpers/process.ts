/** `weir run` as a real child process, with its stdout+stderr collected for assertions. */
import { spawn, type ChildProcess } from 'node:child_process';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;

export interface WeirProcess {
  readonly child: ChildProcess;
  /** Everything written so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the first match of `re` in the output (bounded: `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (bounded: `ms`; null if it has not exited). */
  exited(ms?: number): Promise<number | null>;
  /** SIGKILL if still running. */
  kill(): void;
}

/** `stdout`: a file descriptor to write stdout to instead of collecting it; `uid`: run as that user (and group). */
export function runWeir(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdout?: number; uid?: number } = {}): WeirProcess {
  const child = spawn(process.execPath, [WEIR, ...args], {
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    waitFor: async (re, ms = 10_000) => {
      const until = Date.now() + ms;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (Date.now() > until) throw new Error(`timed out waiting for ${re} in:\n${out}`);
        if (child.exitCode !== null) throw new Error(`weir exited with ${child.exitCode} before ${re}:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    exited: (ms = 10_000) => Promise.race([exit, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/// <reference path="./gecko-profiler-demangle.d.ts" />
/**
 * The guest stack of a trap, innermost frame first, with function names from the module's
 * name section demangled (Rust legacy `_ZN…E` and v0 `_R…`, C++ Itanium), so a log line says
 * `core::panicking::panic_fmt ← my_plugin::Root::configure` instead of `wasm-function[812]`.
 *
 * V8 writes one `wasm-function[N]` per guest frame in `Error#stack`; N is the function index,
 * which metering keeps (it adds a global, no functions). Demangling is rustc-demangle's own
 * code compiled to wasm (npm gecko-profiler-demangle), loaded on the first trap only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as bg from 'gecko-profiler-demangle/index_bg.js';
import { wasm } from '../abi/wasm.ts';

const FRAME = /wasm-function\[(\d+)\]/g;
/** Frames kept in a log line: enough for a panic's path through the SDK into the plugin. */
export const MAX_FRAMES = 24;

// V8 keeps 10 frames by default; a Rust panic spends about that many in std before the
// plugin's own code. Errors are rare on the proxy's paths, so the deeper capture is cheap.
if (Error.stackTraceLimit < 32) Error.stackTraceLimit = 32;

let ready = false;

/** Instantiated by hand (not `import … from '*.wasm'`, which Node flags as experimental). */
function demangler(): (name: string) => string {
  if (!ready) {
    const path = createRequire(import.meta.url).resolve('gecko-profiler-demangle/index_bg.wasm');
    const inst = new wasm.Instance(new wasm.Module(readFileSync(path)), { './index_bg.js': bg as unknown as Record<string, unknown> });
    bg.__wbg_set_wasm(inst.exports);
    (inst.exports.__wbindgen_start as () => void)();
    ready = true;
  }
  return bg.demangle_any;
}

/** A name as written in source: demangled, Rust's `::h<hash>` suffix dropped. */
export function demangle(name: string): string {
  if (!/^(_Z|_R|__Z)/.test(name)) return name.replace(/::h[0-9a-f]{16}$/, '');
  try {
    return demangler()(name).replace(/::h[0-9a-f]{16}$/, '');
  } catch {
    return name;
  }
}

/** The guest frames of a trap (innermost first), named; empty when it has none. */
export function trapStack(err: unknown, functionNames: readonly string[]): string[] {
  const stack = err instanceof Error ? err.stack : typeof err === 'string' ? err : undefined;
  if (!stack) return [];
  const out: string[] = [];
  for (const m of stack.matchAll(FRAME)) {
    if (out.length === MAX_FRAMES) break;
    const idx = Number(m[1]);
    const name = functionNames[idx];
    out.push(name ? demangle(name) : `wasm-function[${idx}]`);
  }
  return out;
}

// Types of the wasm-bindgen glue of npm gecko-profiler-demangle, which trap-stack.ts
// instantiates itself (the package's own entry imports the .wasm as an ES module).
declare module 'gecko-profiler-demangle/index_bg.js' {
  /** Hands the glue the instance's exports. */
  export function __wbg_set_wasm(exports: Record<string, unknown>): void;
  /** A demangled name, or the input when no demangler recognises it. */
  export function demangle_any(name: string): string;
}

// The project's tsconfig has no DOM lib, so the WebAssembly global has no types. This is the
// typed subset the ABI code uses, declared locally rather than as globals other files might
// also declare.

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

/** A compiled core module (opaque). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export type WasmExports = Record<string, unknown>;
export type WasmImports = Record<string, Record<string, unknown>>;

export interface WasmInstance {
  readonly exports: WasmExports;
}

export interface WasmImportDesc { readonly module: string; readonly name: string; readonly kind: string }
export interface WasmExportDesc { readonly name: string; readonly kind: string }

export type CoreFn = (...args: (number | bigint)[]) => number | bigint | void;
export type PromisingFn = (...args: (number | bigint)[]) => Promise<number>;

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports?: WasmImports): Promise<WasmInstance>;
  Module: {
    new (bytes: Uint8Array): WasmModule;
    imports(module: WasmModule): WasmImportDesc[];
    exports(module: WasmModule): WasmExportDesc[];
  };
  Instance: new (module: WasmModule, imports?: WasmImports) => WasmInstance;
  /** JSPI (on by default in Node 24). */
  Suspending: new (fn: (...args: never[]) => unknown) => object;
  promising: (fn: unknown) => PromisingFn;
}

export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// The project's tsconfig has no DOM lib, so the WebAssembly global has no types. This is the
// small typed subset metering (and its tests and benchmark) use, without declaring globals
// that other files might declare too.

export interface WasmGlobal {
  value: unknown;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export type WasmImports = Record<string, Record<string, unknown>>;

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: {
    new (bytes: Uint8Array): WasmModule;
    customSections(module: WasmModule, name: string): ArrayBuffer[];
  };
  Instance: new (module: WasmModule, imports?: WasmImports) => WasmInstance;
  Global: new (desc: { value: string; mutable?: boolean }, value?: unknown) => WasmGlobal;
  Memory: new (desc: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  RuntimeError: new (message?: string) => Error;
  CompileError: new (message?: string) => Error;
  LinkError: new (message?: string) => Error;
}

export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

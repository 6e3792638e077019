// The plugin's core exports: `export * from "@weir/sdk-assemblyscript/exports"` in the entry file.
export * from "./assembly/generated/exports";

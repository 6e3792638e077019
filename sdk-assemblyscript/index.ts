// Package entry for `import … from "@weir/sdk-assemblyscript"` (asc looks for index.ts).
export * from "./assembly/index";

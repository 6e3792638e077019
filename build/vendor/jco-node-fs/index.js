// Stand-in for @bytecodealliance/jco-node-fs, wired in by package.json "overrides".
// The real package ships native binaries as optional per-platform packages, and some of
// those are missing from registries Weir is installed from; npm then cannot write a lock
// file that `npm ci` accepts. Weir uses preview2-shim only to run wasm-tools on bytes in
// memory, which never reaches these calls; they keep their documented meaning anyway:
// fadvise is a hint (the real one is a no-op where the OS has none), rename is atomic.
'use strict';
const { renameSync } = require('node:fs');

function fadvise(fd, offset, length, advice) {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('fd must be a non-negative integer');
}

function rename(oldPath, newPath) {
  renameSync(oldPath, newPath);
}

module.exports = { fadvise, rename };

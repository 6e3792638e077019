/** Public entry of the configuration loader. */
export { loadConfig, loadConfigText, formatDiagnostics, type LoadOptions, type LoadResult } from './load.ts';
export { DEFAULTS, DEFAULT_CONFIG_KDL } from './defaults.ts';
export { parseKdl, type KdlParseResult } from './kdl.ts';
export { parseSize, parseAddress, expandEnv } from './values.ts';
export type * from './types.ts';

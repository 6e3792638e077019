/**
 * `weir validate` (and `weir run` before it listens) loads every plugin a config names —
 * `plugins {}` entries and the first-party plugins behind `rate-limit`, `geo`, `jwt`… filters and
 * `load-balancing` — and runs its `configure` with its config block, through the same loader
 * the proxy uses. A plugin's refusal becomes a diagnostic at the node it names, else at the
 * block it was given, so a config error is found before anything starts.
 */
import { Registry } from 'prom-client';
import type { ConfigDiagnostic, ConfigNode, PluginConfig, SourceLocation, WeirConfig } from '../../../host/src/config/types.ts';
import { isWeirError } from '../../../host/src/errors.ts';
import { createLogger } from '../../../host/src/observability/logger.ts';
import { FIRST_PARTY_FILTERS, balancerPluginConfig, filterPluginConfig } from './first-party.ts';
import { flatConfigNodes } from './config-schema.ts';
import { WasmPlugin } from './plugin.ts';
import { PluginRuntime } from './runtime.ts';

interface Subject {
  /** The plugin config as the proxy would load it (or the error building it). */
  readonly build: () => PluginConfig | undefined;
  /** Where a refusal that names no node is reported. */
  readonly loc: SourceLocation;
}

/** Loads and configures every plugin of `config`; one diagnostic per plugin that fails. */
export async function pluginDiagnostics(config: WeirConfig): Promise<ConfigDiagnostic[]> {
  const subjects: Subject[] = [];
  for (const pc of config.plugins.values()) subjects.push({ build: () => pc, loc: pc.configLoc ?? pc.loc });
  for (const f of config.filters.values()) {
    if (FIRST_PARTY_FILTERS.has(f.type)) subjects.push({ build: () => filterPluginConfig(f), loc: f.loc });
  }
  for (const u of config.upstreams.values()) subjects.push({ build: () => balancerPluginConfig(u), loc: u.loc });
  if (subjects.length === 0) return [];

  const logger = createLogger({ level: 'silent', format: 'json', sync: true });
  const runtime = new PluginRuntime({ logger, registry: new Registry() });
  const out: ConfigDiagnostic[] = [];
  try {
    for (const s of subjects) {
      let pc: PluginConfig | undefined;
      try {
        pc = s.build();
        if (!pc) continue;
        await WasmPlugin.load(pc, { services: runtime.services, metrics: runtime.metrics, logger });
      } catch (err) {
        out.push(diagnostic(err, pc, s.loc));
      }
    }
  } finally {
    runtime.close();
  }
  return out;
}

function diagnostic(err: unknown, pc: PluginConfig | undefined, fallback: SourceLocation): ConfigDiagnostic {
  const code = isWeirError(err) ? err.code : 'WEIR_ERR_PLUGIN_LOAD';
  const detail = isWeirError(err) ? (err.detail as { node?: number; loc?: SourceLocation } | undefined) : undefined;
  // The diagnostic carries the location; the message need not repeat it.
  const message = (err as Error).message.replace(/^[^\s:]+:\d+:\d+: /, '');
  if (detail?.loc) return { code, message, loc: detail.loc, hint: undefined };
  // The node the plugin named; else a key its message starts with or quotes ("max-rps must be …").
  const said = message.replace(/^plugin \S+ rejected its config(?: at `[^`]*`)?: /, '');
  const node: ConfigNode | undefined = (detail?.node !== undefined && pc ? flatConfigNodes(pc.config)[detail.node] : undefined)
    ?? pc?.config.find((c) => said.startsWith(`${c.name} `) || said.includes(`\`${c.name}\``));
  return { code, message, loc: node?.loc ?? fallback, hint: undefined };
}


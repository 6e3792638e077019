/**
 * Per-plugin metrics. Hot-path counts are plain numbers read by prom-client at scrape time
 * (a labelled `inc()` per hook call would cost as much as the call itself); call durations
 * are sampled.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const HOOKS = ['describe', 'configure', 'on-request-headers', 'on-request-body', 'select-upstream', 'on-response-headers', 'on-response-body', 'on-log', 'on-tick'] as const;
export type HookName = (typeof HOOKS)[number];

export class PluginStats {
  readonly calls = new Float64Array(HOOKS.length);
  readonly fuel = new Float64Array(HOOKS.length);
  readonly errors = new Map<string, number>(); // `${hook}\0${kind}`
  instances = 0;
  /** Linear memory of the serving instances (inline plugins), read at scrape time. */
  memoryBytes: () => number = () => 0;
  reloads = 0;
  reloadFailures = 0;
}

/** Sample one call in this many for the duration histogram. */
export const DURATION_SAMPLE = 16;

export class PluginMetrics {
  readonly stats = new Map<string, PluginStats>();
  readonly duration: Histogram<'plugin' | 'hook'>;

  constructor(registry: Registry) {
    const stats = this.stats;
    const registers = [registry];
    new Counter({
      name: 'weir_plugin_calls_total', help: 'Plugin hook calls', labelNames: ['plugin', 'hook'], registers,
      collect() {
        this.reset();
        for (const [plugin, s] of stats) HOOKS.forEach((hook, i) => s.calls[i] && this.inc({ plugin, hook }, s.calls[i]!));
      },
    });
    new Counter({
      name: 'weir_plugin_errors_total', help: 'Plugin failures by hook and kind (trap, fuel, memory, timeout, invalid-mutation, unavailable)', labelNames: ['plugin', 'hook', 'kind'], registers,
      collect() {
        this.reset();
        for (const [plugin, s] of stats) for (const [k, n] of s.errors) {
          const [hook, kind] = k.split('\u0000');
          this.inc({ plugin, hook, kind }, n);
        }
      },
    });
    new Counter({
      name: 'weir_plugin_fuel_used_total', help: 'Fuel (metered wasm instructions) used by inline plugins', labelNames: ['plugin', 'hook'], registers,
      collect() {
        this.reset();
        for (const [plugin, s] of stats) HOOKS.forEach((hook, i) => s.fuel[i] && this.inc({ plugin, hook }, s.fuel[i]!));
      },
    });
    new Gauge({
      name: 'weir_plugin_instances', help: 'Live plugin instances', labelNames: ['plugin'], registers,
      collect() {
        for (const [plugin, s] of stats) this.set({ plugin }, s.instances);
      },
    });
    new Gauge({
      name: 'weir_plugin_memory_bytes', help: 'Linear memory of the serving instances of an inline plugin (a guest heap only grows, so a rising value under steady load is a guest leak)', labelNames: ['plugin'], registers,
      collect() {
        for (const [plugin, s] of stats) this.set({ plugin }, s.memoryBytes());
      },
    });
    new Counter({
      name: 'weir_plugin_reloads_total', help: 'Plugin hot swaps, by result', labelNames: ['plugin', 'result'], registers,
      collect() {
        this.reset();
        for (const [plugin, s] of stats) {
          if (s.reloads) this.inc({ plugin, result: 'ok' }, s.reloads);
          if (s.reloadFailures) this.inc({ plugin, result: 'error' }, s.reloadFailures);
        }
      },
    });
    this.duration = new Histogram({
      name: 'weir_plugin_call_duration_seconds', help: `Plugin hook call duration (sampled 1 in ${DURATION_SAMPLE})`, labelNames: ['plugin', 'hook'], registers,
      buckets: [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.005, 0.025, 0.1],
    });
  }

  for(plugin: string): PluginStats {
    let s = this.stats.get(plugin);
    if (!s) this.stats.set(plugin, (s = new PluginStats()));
    return s;
  }
}

/**
 * What the admin API needs from the process it runs in: a single Weir (worker-threads 1,
 * weir.ts) or the supervisor of several proxy threads (cluster/supervisor.ts). Both apply
 * changes through their reload transaction, so every thread switches to the new snapshot
 * or none does.
 */
import type { Registry } from 'prom-client';
import type { WeirConfig } from '../config/types.ts';
import type { AuditLog } from '../observability/audit.ts';

/** One registry's `getMetricsAsJSON()`. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface TargetState {
  readonly address: string;
  readonly weight: number;
  /** Active health checks pass and the target is not ejected. */
  readonly healthy: boolean;
  /** Passively ejected: by `outlier-detection`, or without it after repeated connect failures. */
  readonly ejected: boolean;
  /** `outlier-detection` only: ejections so far (summed over proxy threads). */
  readonly ejections?: number;
  /** `outlier-detection` only: why it was last ejected (`consecutive-5xx`, `consecutive-gateway-errors`, `success-rate`). */
  readonly ejectionReason?: string;
  readonly draining: boolean;
  /** Requests in flight to the target, over every proxy thread. */
  readonly inFlight: number;
  readonly requests: number;
  readonly failures: number;
}

export interface UpstreamState {
  readonly name: string;
  /** `circuit-breaker` only: `closed`, `open` or `half-open` (open if any proxy thread's is). */
  readonly circuit?: string;
  /** `outlier-detection` only: too few targets available, so requests go to all. */
  readonly panic?: boolean;
  readonly targets: readonly TargetState[];
}

/** The state of the running proxy (every thread summed where counts add up). */
export interface ProxyState {
  readonly generation: number;
  readonly ready: boolean;
  readonly threads: number;
  readonly inFlight: number;
  readonly upstreams: readonly UpstreamState[];
}

export interface ApplyOutcome {
  readonly ok: boolean;
  readonly generation: number;
  readonly error?: string;
}

export interface DrainOutcome {
  /** No request in flight to the target (on any thread) when the call returned. */
  readonly drained: boolean;
  readonly inFlight: number;
}

/** What `POST /api/v1/cache/purge` removes. */
export type PurgeSpec =
  | { readonly all: true }
  | { readonly tags: readonly string[] }
  | { readonly prefix: string }
  | { readonly url: string };

export interface AdminHost {
  /** The config file or directory (undefined when the config came as text: nothing to persist into). */
  readonly configPath: string | undefined;
  readonly audit: AuditLog;
  /** The config that serves now. */
  config(): WeirConfig;
  /** Unpersisted admin changes the running config was built with (file path → text). */
  overrides(): Readonly<Record<string, string>> | undefined;
  /** Reloads every thread, from the files with `overrides` read in place of theirs (undefined: the files as they are). */
  apply(overrides: Readonly<Record<string, string>> | undefined, trigger: 'admin-api'): Promise<ApplyOutcome>;
  state(): Promise<ProxyState>;
  /** Starts (`drain`) or ends draining `address` of `upstream` and waits up to `timeoutMs` for its requests. */
  drain(upstream: string, address: string, drain: boolean, timeoutMs: number): Promise<DrainOutcome>;
  /** Loads the plugin's file again on every thread; an error keeps the old version serving. */
  reloadPlugin(name: string): Promise<{ readonly ok: boolean; readonly error?: string }>;
  purge(spec: PurgeSpec): Promise<number>;
  /** Every thread's metrics, merged (counters and histograms summed). */
  metrics(): Promise<MetricsJson>;
  /** The last reloads, newest last. */
  reloads(): readonly ReloadRecord[];
}

export interface ReloadRecord {
  readonly at: string;
  readonly trigger: string;
  readonly ok: boolean;
  readonly generation: number;
  readonly error?: string;
}

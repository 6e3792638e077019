/** Messages between the supervisor (main thread) and its proxy threads. */
import type { Registry } from 'prom-client';
import type { PurgeSpec } from '../admin/host.ts';
import type { Discovered } from '../upstream/discovery.ts';

/** What each proxy thread gets at start. */
export interface ThreadData {
  readonly index: number;
  readonly configPath: string;
  readonly skipFileChecks: boolean;
  /** Counters, buckets, KV and upstream target state shared by every thread. */
  readonly sab: SharedArrayBuffer;
  /** Unpersisted admin API changes the other threads run with (a replacement thread starts on them too). */
  readonly overrides?: Readonly<Record<string, string>>;
  /** Targets the admin API drains ([upstream, address]): a replacement thread drains them too. */
  readonly drains?: ReadonlyArray<readonly [string, string]>;
  /** The targets the supervisor's discovery found (threads run no discovery of their own). */
  readonly discovered?: Discovered;
}

/** One registry's `getMetricsAsJSON()` (structured-clone safe). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export type ToThread =
  /** Prepare a reload (bind, build, load) without changing what serves; answer `prepared`. */
  | { readonly t: 'reload-prepare'; readonly id: number; readonly overrides?: Readonly<Record<string, string>>; readonly discovered?: Discovered }
  /** Admin API calls every thread answers with `admin-answer` (see admin/host.ts). */
  | { readonly t: 'admin-state'; readonly id: number }
  | { readonly t: 'admin-drain'; readonly id: number; readonly upstream: string; readonly address: string; readonly drain: boolean; readonly timeoutMs: number }
  | { readonly t: 'admin-plugin-reload'; readonly id: number; readonly name: string }
  | { readonly t: 'admin-purge'; readonly id: number; readonly spec: PurgeSpec }
  /** Commit (every thread prepared) or abort the reload prepared as `prepareId`; answer `reloaded`. */
  | { readonly t: 'reload-finish'; readonly id: number; readonly prepareId: number; readonly commit: boolean; readonly reason?: string }
  | { readonly t: 'close' }
  /** Send your registry as JSON (for an aggregate). */
  | { readonly t: 'metrics-json'; readonly id: number }
  /** The aggregate a thread asked for. */
  | { readonly t: 'metrics-text'; readonly id: number; readonly text?: string; readonly error?: string };

export type FromThread =
  | { readonly t: 'ready'; readonly listeners: Record<string, { host: string; port: number }> }
  | { readonly t: 'start-failed'; readonly error: string; readonly code?: string }
  | { readonly t: 'prepared'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | { readonly t: 'reloaded'; readonly id: number; readonly ok: boolean; readonly generation: number; readonly error?: string }
  | { readonly t: 'metrics-json'; readonly id: number; readonly metrics: MetricsJson }
  | { readonly t: 'admin-answer'; readonly id: number; readonly value: unknown }
  /** This thread serves /metrics: please aggregate every thread's. */
  | { readonly t: 'metrics-request'; readonly id: number }
  | { readonly t: 'closed' };

/** Messages between the proxy thread and a plugin worker thread (structured-cloned). */
import type { PluginConfig } from '../../../host/src/config/types.ts';
import type * as W from '../../generated/types.ts';
import type { HookName } from './metrics.ts';
import type { PluginVersion } from './plugin.ts';

export interface WorkerMember {
  /** Identity of the plugin config (the worker caches loaded plugins by it). */
  readonly key: string;
  readonly config: PluginConfig;
  readonly failureMode: 'open' | 'closed';
}

/** Installs (or replaces) a plugin version in a worker; the module is cloned, not recompiled. */
export interface WorkerLoad {
  readonly op: 'load';
  readonly key: string;
  readonly config: PluginConfig;
  readonly version: PluginVersion;
}

/** Many finished requests' on-log calls in one message (they need no answer). */
export interface WorkerLogBatch {
  readonly op: 'log-batch';
  readonly items: ReadonlyArray<{ readonly requestId: string; readonly members: readonly WorkerMember[]; readonly summary: W.LogSummary }>;
}

export interface WorkerTask {
  readonly op?: 'call';
  readonly hook: HookName;
  readonly requestId: string;
  /** The chain members implementing `hook`, in call order. */
  readonly members: readonly WorkerMember[];
  readonly head?: W.RequestHead;
  readonly response?: W.ResponseHead;
  readonly chunk?: Uint8Array;
  readonly end?: boolean;
  readonly targets?: W.Target[];
  readonly upstream?: W.UpstreamInfo;
  readonly summary?: W.LogSummary;
}

export interface MemberResult {
  readonly key: string;
  readonly decision?: W.Decision;
  readonly body?: W.BodyDecision;
  readonly index?: number;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface WorkerResult {
  readonly results: MemberResult[];
  /** Plugins this thread does not have (it replaced a terminated one): load and retry. */
  readonly missing?: string[];
}

/** One log line of a worker thread, sent to the proxy thread as it is written. */
export interface WorkerLogLine {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

/**
 * What goes between the proxy thread and a plugin worker thread: loads and the serve task
 * as piscina messages, calls and their answers over the channel (worker-channel.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import type { PluginConfig } from '../../../host/src/config/types.ts';
import type * as W from '../../generated/types.ts';
import type { HookName } from './metrics.ts';
import type { PluginVersion } from './plugin.ts';
import type { WireRequestHead, WireResponseHead } from './exchange.ts';

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
  /** Whether the thread runs the plugin's on-tick timer (`tick-ms`); false once its pool is retired. */
  ticks: boolean;
}

/**
 * Sent on a pool's cancel channel: its plugins' timers stop (a reload dropped them or left
 * them unused) or start again (a reload uses them again).
 */
export interface WorkerTicks {
  readonly ticks: boolean;
}

/** Many finished requests' on-log calls in one message (they need no answer). */
export interface WorkerLogBatch {
  readonly op: 'log-batch';
  readonly items: ReadonlyArray<{ readonly requestId: string; readonly members: readonly WorkerMember[]; readonly summary: W.LogSummary }>;
}

/** The thread's long task: answer calls on this channel until the proxy thread closes it. */
export interface WorkerServe {
  readonly op: 'serve';
  readonly sab: SharedArrayBuffer;
  /** Calls and answers too large for a slot. */
  readonly port: MessagePort;
  /** Wake-up messages to the proxy thread (a slot finished). */
  readonly wake: MessagePort;
}

export interface WorkerTask {
  readonly op?: 'call';
  readonly hook: HookName;
  readonly requestId: string;
  /** The chain members implementing `hook`, in call order. */
  readonly members: readonly WorkerMember[];
  readonly head?: WireRequestHead;
  readonly response?: WireResponseHead;
  readonly chunk?: Uint8Array;
  readonly end?: boolean;
  readonly targets?: W.Target[];
  readonly upstream?: W.UpstreamInfo;
  readonly summary?: W.LogSummary;
  /** The request is traced and recorded: answers carry what the hooks add to the trace. */
  readonly traced?: true;
}

/**
 * What a worker's hook calls add to the request's trace, replayed on the proxy thread's
 * span: a timed hook (its start in ms since the epoch, as the two threads' clocks differ),
 * an attribute, an event.
 */
export type TraceOp =
  | { readonly op: 'hook'; readonly plugin: string; readonly hook: string; readonly startEpochMs: number; readonly ms: number; readonly error?: string }
  | { readonly op: 'attr'; readonly key: string; readonly value: string | number | boolean }
  | { readonly op: 'event'; readonly name: string; readonly attributes?: Record<string, string | number | boolean> };

/** One answer record per member called, in call order. */
export interface MemberResult {
  /** The member's index in the call's `members`. */
  readonly i: number;
  readonly key: string;
  readonly decision?: W.Decision;
  readonly body?: W.BodyDecision;
  readonly index?: number;
  readonly error?: { readonly code: string; readonly message: string };
  /** For a traced task, what this member's hook added to the trace. */
  readonly trace?: TraceOp[];
}

/** The answer record instead of any member's: plugins this thread does not have (load and retry). */
export interface MissingPlugins {
  readonly missing: string[];
}

/** The answer record of a call that failed outside any plugin (the member running is blamed). */
export interface CallFault {
  readonly fault: string;
}

export type WorkerAnswer = MemberResult | MissingPlugins | CallFault;

/** One log line of a worker thread, sent to the proxy thread as it is written. */
export interface WorkerLogLine {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

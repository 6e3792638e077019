/**
 * The audit log: one JSON line per admin API call (who, what, result), per config reload
 * (trigger, result, generation) and per request a filter denied with 401/403 (auth, WAF).
 * `observability { logging { audit-log } }` sends it to stdout or a file; off by default.
 *
 * Filters do not write it themselves: a local reply with 401 or 403 from a route's chain
 * is recorded by the exchange (proxy/exchange.ts → `AuditLog.denial`), so every auth or
 * WAF plugin is covered without calling anything.
 *
 * A plugin adds entries of its own (the WAF: one per rule match, in detect mode too) by
 * setting request properties named `audit.<name>` whose value is a JSON object: when the
 * exchange ends, each becomes one line `{"type":"audit","event":"plugin","entry":"<name>",
 * …the object's fields, then requestId, client, route, method, host, path}` (`pluginEntries`).
 */
import type { ObservabilityConfig } from '../config/types.ts';
import { closeLogger, createLogger, loggerReady, type Logger } from './logger.ts';
import type { SinkErrorCounter } from './sinks.ts';

/** An admin API call as recorded. */
export interface AdminAuditEvent {
  /** The credential: `token:<sha256 prefix>` for bearer tokens, `cert:<subject CN>` for mTLS, `anonymous`. */
  readonly who: string;
  readonly access: 'full' | 'read-only' | 'none';
  readonly remote: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The stable code when the call failed. */
  readonly code?: string;
  /** What changed, when something did (upstream, target, route...). */
  readonly change?: Readonly<Record<string, unknown>>;
}

export interface ReloadAuditEvent {
  readonly trigger: 'file' | 'signal' | 'admin-api' | 'api' | 'discovery';
  readonly ok: boolean;
  readonly generation: number;
  readonly error?: string;
}

export interface DenialAuditEvent extends AuditRequest {
  readonly status: number;
  /** A code when Weir itself denied (WEIR_ERR_PURGE_FORBIDDEN...). */
  readonly code?: string;
}

/** Prefix of the request properties that are audit entries (see the module comment). */
export const AUDIT_PROPERTY_PREFIX = 'audit.';

/** The request an audit entry of a plugin belongs to. */
export interface AuditRequest {
  readonly requestId: string;
  readonly client: string;
  readonly route: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
}

export class AuditLog {
  private logger: Logger | undefined;
  private target: boolean | string;
  private readonly errors: SinkErrorCounter | undefined;

  private constructor(logger: Logger | undefined, target: boolean | string, errors: SinkErrorCounter | undefined) {
    this.logger = logger;
    this.target = target;
    this.errors = errors;
  }

  /** Opens the configured destination (rejects with WEIR_ERR_LOG_SINK if a file cannot be opened). */
  static async open(cfg: ObservabilityConfig['logging'], errors?: SinkErrorCounter, logger?: Logger): Promise<AuditLog> {
    if (logger) return new AuditLog(logger, 'custom', errors);
    return new AuditLog(await openTarget(cfg.auditLog, errors), cfg.auditLog, errors);
  }

  /** A log that records into `logger` (tests, embedding). */
  static into(logger: Logger | undefined): AuditLog {
    return new AuditLog(logger, 'custom', undefined);
  }

  get enabled(): boolean {
    return this.logger !== undefined;
  }

  admin(e: AdminAuditEvent): void {
    this.logger?.info({ type: 'audit', event: 'admin', ...e });
  }

  reload(e: ReloadAuditEvent): void {
    this.logger?.info({ type: 'audit', event: 'reload', ...e });
  }

  /** A request denied with 401/403 by a filter (auth, WAF) or by Weir (purge). */
  denial(e: DenialAuditEvent): void {
    this.logger?.info({ type: 'audit', event: 'denial', ...e });
  }

  /**
   * One line per `audit.<name>` property a plugin set on the request; a value that is not a
   * JSON object is recorded as `{"value": "<text>"}`. Weir's fields win over the plugin's.
   */
  pluginEntries(properties: ReadonlyMap<string, string>, req: AuditRequest): void {
    if (!this.logger) return;
    for (const [key, value] of properties) {
      if (!key.startsWith(AUDIT_PROPERTY_PREFIX)) continue;
      let fields: Record<string, unknown>;
      try {
        const v: unknown = JSON.parse(value);
        fields = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { value };
      } catch {
        fields = { value };
      }
      this.logger.info({ ...fields, type: 'audit', event: 'plugin', entry: key.slice(AUDIT_PROPERTY_PREFIX.length), ...req });
    }
  }

  /**
   * The audit log of a reload, as a transaction step: a changed target opens before the
   * commit (a file that cannot be opened fails the reload) and replaces this one's at commit.
   */
  async plan(cfg: ObservabilityConfig['logging']): Promise<{ commit(): void; abort(): void }> {
    if (this.target === 'custom' || this.target === cfg.auditLog) return { commit: () => {}, abort: () => {} };
    const next = await openTarget(cfg.auditLog, this.errors);
    return {
      commit: () => {
        if (this.logger) closeLogger(this.logger);
        this.logger = next;
        this.target = cfg.auditLog;
      },
      abort: () => {
        if (next) closeLogger(next);
      },
    };
  }

  /** Settles once every audit line is written (shutdown awaits it). */
  async close(): Promise<void> {
    const logger = this.logger;
    this.logger = undefined;
    if (logger && this.target !== 'custom') await closeLogger(logger);
  }
}

async function openTarget(target: boolean | string, errors: SinkErrorCounter | undefined): Promise<Logger | undefined> {
  if (target === false) return undefined;
  const logger = createLogger({ level: 'info', format: 'json', destination: typeof target === 'string' ? target : 1, sink: { name: 'audit', what: 'audit log' }, errors });
  try {
    await loggerReady(logger, 'audit log');
  } catch (err) {
    closeLogger(logger);
    throw err;
  }
  return logger;
}

/**
 * The listeners of a reload, as a transaction: `planListeners` binds every new address and
 * builds every changed protocol stack while the running listeners keep serving untouched;
 * only `commit` (which cannot fail) swaps stacks and closes the listeners the new config
 * dropped. If any step fails, everything the plan opened is closed again and the error
 * is thrown: the old listeners never noticed.
 *
 * A listener is matched to a bound socket by name, else by address (a renamed listener, or
 * two listeners trading addresses, keep their sockets). A new address is bound beside the
 * old one before the old closes; a changed listener on the same address keeps its socket.
 */
import type { LimitsConfig, ListenerConfig, WeirConfig } from '../config/types.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProxyCore } from '../proxy/core.ts';
import { startListener, type RunningListener } from './listeners.ts';
import { createSecureContexts } from './tls.ts';

export interface ListenerPlan {
  /** Puts the plan in force; returns the listeners by name, in config order. */
  commit(): Map<string, RunningListener>;
  /** Closes everything the plan opened (for a failure after planning). */
  abort(): void;
}

const settingsOf = (c: ListenerConfig, l: LimitsConfig): string => JSON.stringify([{ ...c, loc: undefined }, l]);
/** Port 0 asks for a fresh port: such listeners match by name only. */
const addressOf = (c: ListenerConfig): string | undefined => (c.port === 0 ? undefined : `${c.host}\u0000${c.port}`);
const sameAddress = (a: ListenerConfig, b: ListenerConfig): boolean => a.host === b.host && a.port === b.port;

/** Prepares the listeners of `config` beside the running ones; throws with nothing changed. */
export async function planListeners(running: ReadonlyMap<string, RunningListener>, config: WeirConfig, core: ProxyCore, logger: Logger, reusePort = false): Promise<ListenerPlan> {
  const free = new Map(running);
  const order: Array<RunningListener | undefined> = [];
  const swaps: Array<{ commit(): void; abort(): void }> = [];
  const bound: RunningListener[] = [];
  /** Unchanged TLS listeners: their certificate files are re-read at commit. */
  const certs: RunningListener[] = [];
  const abort = (): void => {
    for (const s of swaps) s.abort();
    for (const l of bound) {
      l.stop();
      l.destroyAll();
    }
  };
  try {
    for (const cfg of config.listeners) {
      let cur = free.get(cfg.name);
      if (cur && !sameAddress(cur.config, cfg)) cur = undefined;
      const addr = addressOf(cfg);
      if (!cur && addr !== undefined) cur = [...free.values()].find((l) => addressOf(l.config) === addr);
      if (cur) {
        free.delete([...free].find(([, l]) => l === cur)![0]);
        if (settingsOf(cur.config, cur.limits) !== settingsOf(cfg, config.limits)) {
          swaps.push(cur.prepare(cfg, config.limits));
        } else if (cfg.tls) {
          // Throws on a missing or invalid file, failing the reload before anything changed.
          createSecureContexts(cfg.tls);
          certs.push(cur);
        }
        order.push(cur);
      } else {
        const l = await startListener(cfg, config.limits, core, logger, reusePort);
        bound.push(l);
        order.push(l);
      }
    }
  } catch (err) {
    abort();
    throw err;
  }
  return {
    commit: () => {
      for (const s of swaps) s.commit();
      for (const l of certs) {
        try {
          l.reloadCertificates();
        } catch (err) {
          logger.error({ listener: l.config.name, err: (err as Error).message }, 'certificate reload failed; keeping the old certificates');
        }
      }
      for (const l of free.values()) l.retire();
      return new Map(order.map((l) => [l!.config.name, l!]));
    },
    abort,
  };
}

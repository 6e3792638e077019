/**
 * Reads the top-level `admin-api {}` block (already validated against the schema and the
 * constraints in config/constraints.ts) into the settings the admin listener runs on.
 */
import { isIP } from 'node:net';
import type { ConfigNode } from '../config/types.ts';
import { parseAddress } from '../config/values.ts';
import { arg, child, stringArg } from '../filters/settings.ts';

export interface AdminSettings {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly allowRemote: boolean;
  readonly persist: boolean;
  readonly drainTimeoutMs: number;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caFile: string | undefined } | undefined;
  readonly auth: {
    readonly type: 'bearer' | 'mtls';
    readonly token: string | undefined;
    readonly readOnlyToken: string | undefined;
    readonly readOnlySubjects: readonly string[];
  };
}

export const ADMIN_DRAIN_TIMEOUT_MS = 30_000;

/** The admin settings of a config, or undefined when no admin API is to run. */
export function adminSettings(node: ConfigNode | undefined): AdminSettings | undefined {
  if (!node || arg(node, 'enabled') === false) return undefined;
  const address = stringArg(node, 'address')!;
  const { host, port } = parseAddress(address)!;
  const tls = child(node, 'tls');
  const auth = child(node, 'auth')!;
  const drain = arg(node, 'drain-timeout-secs');
  return {
    address,
    host,
    port,
    allowRemote: arg(node, 'allow-remote') === true,
    persist: arg(node, 'persist') === true,
    drainTimeoutMs: typeof drain === 'number' ? Math.round(drain * 1000) : ADMIN_DRAIN_TIMEOUT_MS,
    tls: tls ? { certFile: stringArg(tls, 'cert-file')!, keyFile: stringArg(tls, 'key-file')!, caFile: stringArg(tls, 'ca-file') } : undefined,
    auth: {
      type: stringArg(auth, 'type') === 'mtls' ? 'mtls' : 'bearer',
      token: stringArg(auth, 'token'),
      readOnlyToken: stringArg(auth, 'read-only-token'),
      readOnlySubjects: (child(auth, 'read-only-subjects')?.args ?? []).map(String),
    },
  };
}

/** Loopback addresses (127.0.0.0/8, ::1, localhost): the only ones served without TLS unless `allow-remote`. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host.startsWith('::ffff:127.');
}

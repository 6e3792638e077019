/**
 * Cross-key constraints: values that pass the schema one by one but contradict each other,
 * and that Node or the proxy would otherwise refuse only at start (or a reload) — e.g. a
 * request timeout shorter than the header timeout is ERR_OUT_OF_RANGE from node:http.
 * Keys that another key's value makes inert (a `redis-*` key without `backend "redis"`) are
 * refused the same way: no key without an effect. Each is reported with
 * WEIR_ERR_CONFIG_CONSTRAINT at the key to change.
 */
import type { ConfigDiagnostic, ConfigNode, SourceLocation, WeirConfig } from './types.ts';
import { parseAddress } from './values.ts';

type Top = (name: string) => ConfigNode | undefined;

function child(node: ConfigNode | undefined, name: string): ConfigNode | undefined {
  return node ? [...node.children].reverse().find((c) => c.name === name) : undefined;
}

function listenerNodes(nodes: readonly ConfigNode[]): ConfigNode[] {
  return nodes.flatMap((n) => (n.name === 'listeners' ? n.children.filter((c) => c.name === 'listener') : n.name === 'listener' ? [n] : []));
}

/** Every cross-key problem of a built config; `nodes` are the top-level nodes it came from. */
export function checkConstraints(nodes: readonly ConfigNode[], config: WeirConfig): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  const top: Top = (name) => nodes.filter((n) => n.name === name).at(-1);
  const limits = top('limits');
  const at = (n: ConfigNode | undefined, fallback: SourceLocation | undefined): SourceLocation | undefined => n?.argLocs?.[0] ?? n?.loc ?? fallback;
  const push = (message: string, loc: SourceLocation | undefined, hint?: string): void => {
    out.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message, loc, hint });
  };

  // node:http: headersTimeout <= requestTimeout (when both are set). A listener's request
  // timeout and `limits request-timeout-ms` both apply; the shorter one is the one Node gets.
  const header = config.limits.headerTimeoutMs;
  const lnodes = listenerNodes(nodes);
  config.listeners.forEach((l, i) => {
    const own = l.requestTimeoutMs;
    const global = config.limits.requestTimeoutMs;
    const effective = !own ? global : !global ? own : Math.min(own, global);
    if (!effective || !header || header <= effective) return;
    const fromListener = own !== 0 && own === effective && child(lnodes[i], 'request-timeout-secs') !== undefined;
    const key = fromListener ? child(lnodes[i], 'request-timeout-secs') : child(limits, 'request-timeout-ms');
    const what = fromListener ? `listener \`${l.name}\` \`request-timeout-secs\`` : '`limits request-timeout-ms`';
    push(
      `${what} (${effective} ms) is shorter than \`limits header-timeout-ms\` (${header} ms): a whole request cannot arrive sooner than its headers`,
      at(key, at(child(limits, 'header-timeout-ms'), l.loc)),
      `make the request timeout at least ${header} ms, or lower header-timeout-ms`,
    );
  });

  // The metrics listener cannot share a port with a proxy listener (EADDRINUSE at start).
  const m = config.observability.metrics;
  const maddr = m.enabled && m.address ? parseAddress(m.address) : undefined;
  if (maddr && maddr.port !== 0) {
    for (const l of config.listeners) {
      const same = l.port === maddr.port && (l.host === maddr.host || ['0.0.0.0', '::'].includes(l.host) || ['0.0.0.0', '::'].includes(maddr.host));
      if (!same) continue;
      const node = child(child(top('observability'), 'metrics'), 'address');
      push(`metrics \`address\` ${m.address} is also the address of listener \`${l.name}\` (${l.address})`, at(node, undefined), 'give the metrics listener its own port, or serve metrics from a `builtin-handler "metrics"` route');
    }
  }
  checkAdminApi(top('admin-api'), config, push, at);
  // Keys that only one setting of another key reads: written with another, they would do nothing.
  for (const f of config.filters.values()) {
    if (f.type !== 'rate-limit') continue;
    const backend = child(f.settings, 'backend')?.args[0] ?? 'local';
    const onLimit = child(f.settings, 'on-limit')?.args[0] ?? 'reject';
    for (const c of f.settings.children) {
      const needs = c.name.startsWith('redis-') ? ['backend', 'redis', backend] : c.name.startsWith('memcached-') ? ['backend', 'memcached', backend] : c.name === 'delay-max-ms' ? ['on-limit', 'delay', onLimit] : undefined;
      if (needs && needs[1] !== needs[2]) {
        push(`\`${c.name}\` in filter \`${f.name}\` has no effect with \`${needs[0]} "${String(needs[2])}"\``, c.loc, `use \`${needs[0]} "${needs[1]}"\`, or remove \`${c.name}\``);
      }
    }
  }
  // A route's breaker watches its upstream attempts: a route without an upstream has none.
  for (const r of config.routes) {
    if (r.circuitBreaker !== undefined && r.upstream === undefined) {
      push(`\`circuit-breaker\` in route \`${r.name}\` has no effect: the route has no \`upstream\``, child(r.node, 'circuit-breaker')?.loc ?? r.loc, 'remove `circuit-breaker`, or give the route an `upstream`');
    }
  }
  const upstreamNodes = nodes.flatMap((n) => (n.name === 'upstreams' ? n.children.filter((c) => c.name === 'upstream') : n.name === 'upstream' ? [n] : []));
  for (const u of upstreamNodes) {
    // Slow start ramps targets that come back: only health checks and outlier ejections take them out.
    const slow = child(u, 'slow-start-secs');
    if (slow && !child(u, 'health-check') && !child(u, 'outlier-detection')) {
      push('`slow-start-secs` has no effect without `health-check` or `outlier-detection` (no target ever comes back)', slow.loc, 'add one of them, or remove `slow-start-secs`');
    }
    // HTTP/2 targets multiplex: no request waits for a connection.
    const pending = child(child(u, 'connection-pool'), 'max-pending-requests');
    if (pending && child(u, 'protocol')?.args[0] === 'h2') {
      push('`max-pending-requests` has no effect with `protocol "h2"` (requests never wait for a connection)', pending.loc, 'use `max-requests`, or remove `max-pending-requests`');
    }
    const hc = child(u, 'health-check');
    if (!hc) continue;
    const type = child(hc, 'type')?.args[0] ?? 'http';
    for (const c of hc.children) {
      const needs = ['path', 'expected-status', 'method', 'host', 'body-match'].includes(c.name) ? 'http' : undefined;
      if (needs && needs !== type) push(`health-check \`${c.name}\` has no effect with \`type "${String(type)}"\``, c.loc, `use \`type "${needs}"\`, or remove \`${c.name}\``);
    }
  }
  return out;
}

const LOOPBACK = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/**
 * The admin API: a remote address needs TLS or an explicit `allow-remote` (tokens would cross
 * the network in clear text); each auth type reads only its own keys.
 */
function checkAdminApi(
  node: ConfigNode | undefined,
  config: WeirConfig,
  push: (message: string, loc: SourceLocation | undefined, hint?: string) => void,
  at: (n: ConfigNode | undefined, fallback: SourceLocation | undefined) => SourceLocation | undefined,
): void {
  if (!node || child(node, 'enabled')?.args[0] === false) return;
  const addrNode = child(node, 'address');
  const addr = typeof addrNode?.args[0] === 'string' ? parseAddress(addrNode.args[0]) : undefined;
  const tls = child(node, 'tls');
  const auth = child(node, 'auth');
  const type = child(auth, 'type')?.args[0] ?? 'bearer';
  if (addr && !LOOPBACK(addr.host) && !tls && child(node, 'allow-remote')?.args[0] !== true) {
    push(`admin-api \`address\` ${String(addrNode!.args[0])} is not loopback and the admin API has no \`tls\``, at(addrNode, node.loc), 'listen on 127.0.0.1, add a `tls` block, or set `allow-remote #true`');
  }
  if (addr && addr.port !== 0) {
    for (const l of config.listeners) {
      if (l.port === addr.port && (l.host === addr.host || ['0.0.0.0', '::'].includes(l.host) || ['0.0.0.0', '::'].includes(addr.host))) {
        push(`admin-api \`address\` ${String(addrNode!.args[0])} is also the address of listener \`${l.name}\` (${l.address})`, at(addrNode, node.loc), 'give the admin API its own port');
      }
    }
  }
  const inert = (key: ConfigNode | undefined, why: string, hint: string): void => {
    if (key) push(`\`${key.name}\` has no effect ${why}`, key.loc, hint);
  };
  if (type === 'bearer') {
    if (!child(auth, 'token')) push('admin-api `auth type "bearer"` needs a `token`', at(child(auth, 'type'), auth?.loc), 'add `token "${ADMIN_API_TOKEN}"`');
    inert(child(auth, 'read-only-subjects'), 'with `type "bearer"`', 'use `read-only-token`, or `type "mtls"`');
    inert(child(tls, 'ca-file'), 'with `auth type "bearer"` (no client certificate is asked for)', 'remove `ca-file`, or use `auth type "mtls"`');
  } else {
    if (!child(tls, 'ca-file')) push('admin-api `auth type "mtls"` needs `tls { ca-file }` to verify client certificates', at(child(auth, 'type'), auth?.loc), 'add a `tls` block with `cert-file`, `key-file` and `ca-file`');
    inert(child(auth, 'token'), 'with `type "mtls"`', 'remove it, or use `type "bearer"`');
    inert(child(auth, 'read-only-token'), 'with `type "mtls"`', 'use `read-only-subjects`, or `type "bearer"`');
  }
}

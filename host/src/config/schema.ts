/**
 * The whole configuration dialect as one declarative table. validate.ts checks files
 * against it and gen-docs.ts turns it into docs/configuration.md, so the two cannot drift.
 *
 * A key is a KDL node: positional `args` (then optional variadic `rest`), `props`
 * (`weight=100`), and a children block described by `children` (or `anyChildren` for
 * free-form blocks such as a plugin's `config {}`). `variants` picks extra children by the
 * value of one child, e.g. a filter's keys depend on its `type`.
 */
import { DEFAULTS as D } from './defaults.ts';
import { ACCESS_LOG_BLOCK, HEADER_OPS_BLOCKS, INSECURE_SKIP_VERIFY, type Reshape } from './reshapes.ts';

export type ValueType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  /** Bytes: an integer or a string such as "16MiB", "10MB", "512KiB". */
  | 'size'
  /** Seconds (fractions allowed); stored as milliseconds. */
  | 'secs'
  /** Milliseconds. */
  | 'ms'
  /** "host:port" or "[v6]:port". */
  | 'address'
  /** A file path, relative to the file that names it; checked to exist. */
  | 'path'
  /** A JavaScript regular expression source. */
  | 'regex'
  | 'string-or-boolean'
  /** Any KDL value. */
  | 'scalar';

export interface ValueSpec {
  readonly type: ValueType;
  readonly enum?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /**
   * Enum values that are refused with WEIR_ERR_CONFIG_UNSUPPORTED: value → one sentence
   * saying what to use instead. They stay in `enum` so the docs list them as refused.
   */
  readonly unsupportedValues?: Readonly<Record<string, string>>;
  /**
   * Other spellings of values (Sentinel's `"round-robin"`, `"TLS1.2"`, `priority "high"`),
   * keyed by the value as written (`String(v)`), rewritten to the Weir value before checking.
   */
  readonly valueAliases?: Readonly<Record<string, string | number | boolean>>;
}

export interface ArgSpec extends ValueSpec {
  readonly name: string;
  readonly optional?: boolean;
}

export interface RestSpec extends ValueSpec {
  readonly name: string;
  /** Fewest values required (default 1). */
  readonly minCount?: number;
}

export interface PropSpec extends ValueSpec {
  readonly doc: string;
  /** Refused with WEIR_ERR_CONFIG_UNSUPPORTED; one sentence saying what to use instead. */
  readonly unsupported?: string;
}

export interface KeySpec {
  readonly name: string;
  readonly doc: string;
  readonly args?: readonly ArgSpec[];
  readonly rest?: RestSpec;
  readonly props?: Readonly<Record<string, PropSpec>>;
  readonly children?: readonly KeySpec[];
  readonly anyChildren?: boolean;
  /** Extra children picked by a child key's value, or (`fromArg`) by the node's first argument. */
  readonly variants?: { readonly key: string; readonly fromArg?: boolean; readonly cases: Readonly<Record<string, readonly KeySpec[]>> };
  /** May appear several times in its block. */
  readonly repeatable?: boolean;
  readonly required?: boolean;
  /** A top-level shorthand for a key of this plural block (`listener` for `listeners { listener }`). */
  readonly shorthandFor?: string;
  /** As written in KDL (seconds for `-secs` keys), for the docs. */
  readonly default?: string | number | boolean;
  /**
   * The key is refused with WEIR_ERR_CONFIG_UNSUPPORTED, at its location, with this one
   * sentence saying what to use instead. It stays in the table so the docs list it; the
   * feature that builds it removes the refusal.
   */
  readonly unsupported?: string;
  /** Another name for the block `aliasOf` (same children, same effect); writing both is refused. */
  readonly aliasOf?: string;
  /**
   * Other spellings of this key in the same block (Sentinel's), renamed to `name` before
   * checking (host/src/config/dialect.ts); `weir validate --explain` lists each one used.
   */
  readonly aliases?: readonly string[];
  /**
   * Children written in this block under another name that belong deeper in it:
   * written name → dotted path from this block (`"retry-policy": "policies.retry"`).
   */
  readonly moved?: Readonly<Record<string, string>>;
  /** A children block written under this key belongs to the enclosing block (`type "http" { path "/" }`). */
  readonly hoistChildren?: boolean;
  /** Rewrites another dialect's shape of this key into Weir's (dialect.ts); `doc` says how, for docs/sentinel.md. */
  readonly reshape?: Reshape;
}


const secs = (ms: number): number => ms / 1000;
const label = (what: string): ArgSpec => ({ name: `${what}-name`, type: 'string' });
const str = (name: string, doc: string, extra: Partial<KeySpec> = {}): KeySpec => ({ name, doc, args: [{ name: 'value', type: 'string' }], ...extra });
const val = (name: string, type: ValueType, doc: string, extra: Partial<KeySpec> & ValueSpecExtra = {}): KeySpec => {
  const { enum: en, min, max, ...rest } = extra;
  const arg: ArgSpec = { name: 'value', type, ...(en ? { enum: en } : {}), ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
  return { name, doc, args: [arg], ...rest };
};
interface ValueSpecExtra {
  enum?: readonly string[];
  min?: number;
  max?: number;
}
const oneOf = (name: string, values: readonly string[], doc: string, extra: Partial<KeySpec> = {}): KeySpec =>
  val(name, 'string', doc, { enum: values, ...extra });

export const FAILURE_MODES = ['open', 'closed'] as const;

/** Sentinel's spellings of a TLS version (`TLS1.2`, `tls1.2`, `1.2`, `TLSV1_2`…) → Weir's `TLSv1.2`. */
const TLS_VERSION_ALIASES: Readonly<Record<string, string>> = Object.fromEntries(
  ['1.2', '1.3'].flatMap((v) => [`TLS${v}`, `tls${v}`, v, `TLSV${v}`, `tlsv${v}`, `TLS_${v.replace('.', '_')}`, `TLSv${v.replace('.', '_')}`].map((a) => [a, `TLSv${v}`])),
);

/** The cipher suites a listener may name (IANA names, as Sentinel writes them) → OpenSSL's names, for Node's `ciphers`. */
export const CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
};

/** Lower case, `-` for `_`, and the OpenSSL name of each suite → its IANA name. */
const CIPHER_SUITE_ALIASES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(CIPHER_SUITES).flatMap(([iana, openssl]) =>
    [...new Set([iana.toLowerCase(), iana.replaceAll('_', '-'), iana.toLowerCase().replaceAll('_', '-'), openssl, openssl.toLowerCase()])].filter((a) => a !== iana).map((a) => [a, iana]),
  ),
);

/** Sentinel's named route priorities → numbers (higher is tried first; `normal` is the default 0). */
export const NAMED_PRIORITIES: Readonly<Record<string, number>> = { critical: 1000, high: 100, normal: 0, low: -100 };

/** Algorithm names operators write; only BALANCERS run, the others are refused (see LB_REFUSED). */
export const LOAD_BALANCING = [
  'round_robin', 'random', 'least_connections', 'weighted_least_connections', 'ip_hash',
  'consistent_hash', 'maglev', 'p2c', 'peak_ewma', 'least_latency', 'locality_aware',
  'adaptive', 'weighted_random', 'sticky', 'weighted', 'least_tokens', 'subset',
] as const;

/** The algorithms the proxy runs; `weighted` is another name for `round_robin` (already weighted). */
export const BALANCERS = [
  'round_robin', 'p2c', 'weighted', 'ip_hash', 'consistent_hash', 'maglev', 'locality_aware',
  'random', 'weighted_random', 'least_connections', 'weighted_least_connections', 'peak_ewma', 'least_latency', 'adaptive', 'least_tokens',
  'subset',
] as const;

/** The algorithms that choose by a request's `hash-key`. */
export const KEYED_BALANCERS: readonly string[] = ['consistent_hash', 'maglev'];

/** Sentinel's spellings of the algorithms → Weir's names (the refused ones stay refused). */
const LB_ALIASES: Readonly<Record<string, string>> = {
  'round-robin': 'round_robin', roundrobin: 'round_robin', 'weighted-round-robin': 'weighted', weighted_round_robin: 'weighted',
  'power-of-two-choices': 'p2c', power_of_two_choices: 'p2c', 'least-connections': 'least_connections', leastconnections: 'least_connections',
  'weighted-least-connections': 'weighted_least_connections', 'ip-hash': 'ip_hash', iphash: 'ip_hash', 'consistent-hash': 'consistent_hash',
  consistenthash: 'consistent_hash', 'peak-ewma': 'peak_ewma', peakewma: 'peak_ewma', 'least-latency': 'least_latency',
  'locality-aware': 'locality_aware', localityaware: 'locality_aware', 'weighted-random': 'weighted_random', sticky_session: 'sticky', stickysession: 'sticky',
  'least-tokens': 'least_tokens', leastconn: 'least_connections', 'least-conn': 'least_connections', weightedrandom: 'weighted_random', leastlatency: 'least_latency',
};

const LB_INSTEAD = 'use `round_robin` (smooth, weighted by `target weight=`) or `p2c` (the less busy of two random targets)';
const LB_REFUSED: Readonly<Record<string, string>> = Object.fromEntries(
  LOAD_BALANCING.filter((a) => !(BALANCERS as readonly string[]).includes(a)).map((a) => [a, `Weir does not implement \`${a}\`; ${LB_INSTEAD}.`]),
);

export const RETRY_ON = ['connect-failure', 'reset', 'timeout', '5xx', '502', '503', '504'] as const;

const systemChildren: KeySpec[] = [
  val('worker-threads', 'integer', 'Proxy threads in one process, sharing the ports (SO_REUSEPORT), the rate-limit and upstream-health state and the target stats load balancers read; 0 = one per CPU core.', { min: 0, default: D.system.workerThreads }),
  val('max-connections', 'integer', 'Most client connections open at once over all listeners of one proxy thread (each of `worker-threads` allows this many); a connection over it is closed at once. `limits max-connections` caps each listener.', { min: 1, default: D.system.maxConnections }),
  val('graceful-shutdown-timeout-secs', 'secs', 'How long a shutdown waits for requests in flight.', { default: secs(D.system.gracefulShutdownTimeoutMs) }),
  str('pid-file', 'File `weir run` writes its process id to once it listens (relative to the working directory), and removes when it exits; read at start (a reload does not move it).'),
  val('daemon', 'boolean', 'Detach from the terminal.', { unsupported: 'Weir does not fork into the background; run it under a service manager (systemd `Type=simple`, a container runtime) and remove `daemon`.' }),
  str('user', 'User to switch to after binding.', { unsupported: 'Weir does not change user itself; let the service manager start it as that user (systemd `User=`, with `AmbientCapabilities=CAP_NET_BIND_SERVICE` for ports below 1024) and remove `user`.' }),
  str('group', 'Group to switch to after binding.', { unsupported: 'Weir does not change group itself; let the service manager set it (systemd `Group=`) and remove `group`.' }),
  str('working-directory', 'Directory to change to at start.', { unsupported: 'Weir keeps the directory it was started in (relative paths in the config are from the file that names them); set it with the service manager (systemd `WorkingDirectory=`) and remove `working-directory`.' }),
];

const listenerTls: KeySpec = {
  name: 'tls',
  doc: 'Terminate TLS on this listener (implies `protocol "https"`).',
  children: [
    val('cert-file', 'path', 'PEM certificate chain served by default.', { required: true }),
    val('key-file', 'path', 'PEM private key of `cert-file`.', { required: true }),
    val('ca-file', 'path', 'PEM CA bundle used to verify client certificates (mTLS).'),
    { ...val('client-auth', 'boolean', 'Require a client certificate signed by `ca-file`.', { default: D.tls.clientAuth }), args: [{ name: 'value', type: 'boolean', valueAliases: { required: true, require: true, none: false, off: false } }] },
    { ...oneOf('min-version', ['TLSv1.2', 'TLSv1.3'], 'Oldest TLS version accepted.', { default: D.tls.minVersion }), args: [{ name: 'value', type: 'string', enum: ['TLSv1.2', 'TLSv1.3'], valueAliases: TLS_VERSION_ALIASES }] },
    {
      name: 'cipher-suites',
      doc: 'The only cipher suites accepted, by IANA name (any case, `-` or `_`; OpenSSL names too): TLS 1.3 `TLS_AES_256_GCM_SHA384` `TLS_AES_128_GCM_SHA256` `TLS_CHACHA20_POLY1305_SHA256`, TLS 1.2 `TLS_ECDHE_{ECDSA,RSA}_WITH_AES_256_GCM_SHA384` / `_AES_128_GCM_SHA256` / `_CHACHA20_POLY1305_SHA256`. A list without a TLS 1.3 suite allows TLS 1.2 only, one without a TLS 1.2 suite TLS 1.3 only. Unset: Node\'s defaults.',
      rest: { name: 'suite', type: 'string', enum: Object.keys(CIPHER_SUITES), valueAliases: CIPHER_SUITE_ALIASES },
    },
    val('ocsp-stapling', 'boolean', 'Staple OCSP responses.', { unsupported: 'Weir does not fetch or staple OCSP responses; remove `ocsp-stapling` (clients fall back to their own revocation checks).' }),
    {
      name: 'sni',
      doc: 'A certificate served to clients that ask for one of `hostnames`.',
      repeatable: true,
      children: [
        { name: 'hostnames', doc: 'Server names (SNI) this certificate is for; `*.example.com` allowed.', rest: { name: 'hostname', type: 'string' }, required: true },
        val('cert-file', 'path', 'PEM certificate chain.', { required: true }),
        val('key-file', 'path', 'PEM private key.', { required: true }),
      ],
    },
  ],
};

/** Edge rules of a listener (host/src/edge/). */
const ESCAPED_SLASHES = ['reject', 'keep', 'decode-and-redirect', 'decode'] as const;
const listenerEdge: KeySpec[] = [
  {
    name: 'path-normalization',
    doc: 'How request paths are normalised before routing; the normalised path is also what the upstream receives. Dot segments (also `%2e`) are always removed, percent-encoded unreserved characters decoded and other escapes upper-cased; a path climbing above the root, `%00`, a malformed escape or a `..;` segment gets 400 `WEIR_ERR_PATH_REJECTED`.',
    children: [
      val('merge-slashes', 'boolean', 'Collapse repeated slashes (`//admin` → `/admin`), after removing dot segments.', { default: D.pathNormalization.mergeSlashes }),
      oneOf('escaped-slashes', ESCAPED_SLASHES, '`%2F`, `%5C` and a raw `\\` in the path: `reject` = 400 `WEIR_ERR_PATH_REJECTED`; `keep` = forwarded as `%2F`/`%5C` (a raw `\\` as `%5C`), not a separator for routing; `decode-and-redirect` = 307 to the decoded, normalised path; `decode` = decoded to `/` and normalised, then routed and forwarded.', { default: D.pathNormalization.escapedSlashes }),
    ],
  },
  {
    name: 'trusted-proxies',
    doc: 'Peers (CIDRs or addresses) whose X-Forwarded-For, Forwarded and PROXY protocol headers are believed: from them the client is the right-most address that is not itself a trusted proxy. From any other peer the client is the socket address and those headers are dropped before filters and the upstream see them.',
    rest: { name: 'cidr', type: 'string' },
  },
  oneOf('proxy-protocol', ['off', 'v1', 'v2', 'any'], 'Read a PROXY protocol header (HAProxy v1 text, v2 binary, or either) before HTTP and TLS from peers in `trusted-proxies` (required from them; from others a header closes the connection, `WEIR_ERR_PROXY_PROTOCOL`). Needs `trusted-proxies`.', { default: D.edge.proxyProtocol }),
  {
    name: 'request-id',
    doc: 'The request id (X-Request-ID): sent upstream, in error replies and the access log.',
    children: [
      val('trust-incoming', 'boolean', 'Keep a valid X-Request-ID sent by the client; `#false` = always generate one (the client\'s header never reaches filters or the upstream).', { default: D.edge.trustIncomingRequestId }),
    ],
  },
];

const listener: KeySpec = {
  name: 'listener',
  doc: 'A socket Weir accepts client connections on.',
  repeatable: true,
  args: [label('listener')],
  children: [
    val('address', 'address', 'Where to listen: `"0.0.0.0:8080"`, `"[::1]:8443"`; port 0 = any free port.', { default: D.listener.address }),
    oneOf('protocol', ['http', 'h2c', 'https'], 'Wire protocol; `https` needs a `tls` block.', { default: D.listener.protocol }),
    val('request-timeout-secs', 'secs', 'Longest time to receive a whole request.', { default: secs(D.listener.requestTimeoutMs) }),
    val('keepalive-timeout-secs', 'secs', 'Idle time before a kept-alive connection is closed.', { default: secs(D.listener.keepAliveTimeoutMs) }),
    val('max-concurrent-streams', 'integer', 'HTTP/2 streams per connection on this listener (its SETTINGS_MAX_CONCURRENT_STREAMS); default: `limits http2 max-concurrent-streams`.', { min: 1 }),
    val('keepalive-max-requests', 'integer', 'HTTP/1.1 requests per connection on this listener, the last answered with `Connection: close`; 0 = unlimited; default: `limits max-requests-per-connection`.', { min: 0 }),
    str('default-route', 'Name of the route that takes this listener\'s requests no route matches (instead of 404 `WEIR_ERR_NO_ROUTE`), whatever its `matches`; a disabled route takes none.'),
    val('allow-connect', 'boolean', 'Accept CONNECT: tunnel to a target of the upstream of the route matching the CONNECT authority. Off: CONNECT gets 405.', { default: D.listener.allowConnect }),
    listenerTls,
    ...listenerEdge,
  ],
};

const matchKeys: KeySpec[] = [
  { name: 'host', doc: 'Host header (port ignored, case-insensitive); `*.example.com` wildcards allowed. Several values = any.', rest: { name: 'host', type: 'string' }, repeatable: true },
  { name: 'path', doc: 'Exact path. Several values = any.', rest: { name: 'path', type: 'string' }, repeatable: true },
  { name: 'path-prefix', doc: 'Path prefix. Several values = any.', rest: { name: 'prefix', type: 'string' }, repeatable: true },
  { name: 'path-regex', doc: 'Path regular expression. Several values = any.', rest: { name: 'regex', type: 'regex' }, repeatable: true },
  { name: 'method', doc: 'HTTP method (case-insensitive). Several values = any.', rest: { name: 'method', type: 'string' }, repeatable: true },
  {
    name: 'header',
    doc: 'Request header: `header "x-env" "prod"`, or `header name="x-env" value="prod"`; without a value = present.',
    repeatable: true,
    args: [
      { name: 'name', type: 'string', optional: true },
      { name: 'value', type: 'string', optional: true },
    ],
    props: {
      name: { type: 'string', doc: 'Header name.' },
      value: { type: 'string', doc: 'Exact value.' },
      regex: { type: 'regex', doc: 'Value regular expression.' },
    },
  },
  {
    name: 'query',
    doc: 'Query parameter: `query "debug" "1"` or `query name="debug" value="1"`; without a value = present.',
    repeatable: true,
    args: [
      { name: 'name', type: 'string', optional: true },
      { name: 'value', type: 'string', optional: true },
    ],
    props: {
      name: { type: 'string', doc: 'Parameter name.' },
      value: { type: 'string', doc: 'Exact value.' },
    },
  },
];

/** A route's `policies { cache {} }` (host/src/cache/). */
const routeCache: KeySpec = {
  name: 'cache',
  doc: 'Cache this route\'s GET/HEAD responses in the HTTP cache (see the top-level `cache`).',
  children: [
    val('enabled', 'boolean', '`false` = this route does not cache.', { default: true }),
    val('default-ttl-secs', 'integer', 'Freshness, in seconds, given to storable responses that carry no `max-age`, `s-maxage` or `Expires` (added to the stored `Cache-Control`).', { min: 0 }),
    val('max-size-bytes', 'size', 'Larger responses stream through without being stored.', { default: '10MiB' }),
    val('cache-private', 'boolean', 'Also store `Cache-Control: private` responses (the cache then acts as a private cache: `s-maxage` is ignored).', { default: false }),
    val('stale-if-error-secs', 'integer', 'Serve a stale entry (`STALE`) for this long past expiry when the origin fails or answers 5xx, unless it said `must-revalidate`; the response\'s own `stale-if-error` also counts.', { min: 0, default: 0 }),
    { name: 'cacheable-status-codes', doc: 'Store only these statuses; default: every status RFC 9111 allows.', rest: { name: 'status', type: 'integer', min: 100, max: 599 } },
    { name: 'vary-headers', doc: 'Request headers always part of the key (besides the response\'s `Vary`).', rest: { name: 'header', type: 'string' } },
    { name: 'ignore-query-params', doc: 'Query parameters left out of the key (`utm_source`, `_`).', rest: { name: 'param', type: 'string' } },
    val('stale-while-revalidate-secs', 'integer', 'For responses without their own `stale-while-revalidate`: for this long past expiry a stale entry answers at once (`STALE`) while one background request revalidates it (added to the stored `Cache-Control`).', { min: 0 }),
    { name: 'cacheable-methods', doc: 'Methods answered from and stored in the cache (default: both); a method left out is `BYPASS`.', rest: { name: 'method', type: 'string', enum: ['GET', 'HEAD'] } },
    { name: 'exclude-extensions', doc: 'Paths ending in one of these extensions (without the dot, any case) are `BYPASS`: neither looked up nor stored.', rest: { name: 'extension', type: 'string' } },
    { name: 'exclude-paths', doc: 'Paths matching one of these globs (`*` within a segment, `**` any depth, `?` one character) are `BYPASS`.', rest: { name: 'glob', type: 'string' } },
  ],
};

/** A route's `policies { compression {} }` (host/src/compression/). */
const routeCompression: KeySpec = {
  name: 'compression',
  doc: 'Compress responses for clients that accept it (`Accept-Encoding`, with q-values), streaming. Never for HEAD, 204, 206, 304, an already encoded response or `Cache-Control: no-transform`; adds `Vary: Accept-Encoding` and weakens a strong `ETag`. With `cache`, entries are stored uncompressed and compressed per client.',
  children: [
    val('enabled', 'boolean', '`false` = this route does not compress.', { default: true }),
    { name: 'encodings', doc: 'Encodings offered, in order of preference (a tie in the client\'s q-values goes to the first).', rest: { name: 'encoding', type: 'string', enum: ['br', 'zstd', 'gzip'] }, default: 'br zstd gzip' },
    { name: 'content-types', doc: 'Media types compressed (`text/*` = a whole type); default: text, JSON, JavaScript, XML, SVG, wasm and similar.', rest: { name: 'type', type: 'string' } },
    val('min-size', 'size', 'Responses whose `Content-Length` is below this are sent as they are.', { default: 1024 }),
    val('gzip-level', 'integer', 'gzip level.', { min: 1, max: 9, default: 6 }),
    val('br-level', 'integer', 'Brotli quality.', { min: 0, max: 11, default: 4 }),
    val('zstd-level', 'integer', 'zstd level.', { min: 1, max: 22, default: 3 }),
  ],
};

/** Request bodies decoded before filters and the upstream see them (host/src/compression/inflate-request.ts). */
const requestDecompression: KeySpec = {
  name: 'request-decompression',
  doc: 'Decode a request body sent with `Content-Encoding` gzip, deflate, br or zstd before the route\'s request-body filters run (they get the decoded body in one chunk) and send the decoded body upstream without `Content-Encoding`. A body that would inflate past `max-bytes` or `max-ratio` times its received size is refused with 413 `WEIR_ERR_DECOMPRESSION_LIMIT` as soon as a cap is crossed (it is never inflated whole); another encoding, or data not valid for its encoding, gets 415 `WEIR_ERR_BODY_ENCODING`.',
  children: [
    val('max-bytes', 'size', 'Largest decoded body.', { default: '10MiB' }),
    val('max-ratio', 'number', 'Largest decoded / received size ratio.', { min: 1, default: 100 }),
  ],
};

/** A route answered from a directory (host/src/static/). */
const staticFiles: KeySpec = {
  name: 'static-files',
  doc: 'Answer GET/HEAD from files under `root` instead of an upstream (the route\'s filters still run first): ETag / Last-Modified, conditional GET, byte ranges (several as multipart/byteranges), MIME types from the file extension. The whole request path is looked up under `root`; a path that resolves outside it (a symlink pointing out) is 404 `WEIR_ERR_FILE_NOT_FOUND`; other methods get 405.',
  children: [
    str('root', 'Directory served (must exist; relative paths are from the working directory).', { required: true }),
    str('index', 'File served for a directory.', { default: 'index.html' }),
    str('fallback', 'File (relative to `root`) served when nothing matches, for single-page apps.'),
    val('precompressed', 'boolean', 'Serve a `.br`, `.zst` or `.gz` sibling of the file when the client accepts that encoding (with `Vary: Accept-Encoding`).', { default: false }),
    str('cache-control', 'Cache-Control sent with every file.'),
  ],
};

const retry: KeySpec = {
  name: 'retry',
  doc: 'Retry failed upstream attempts. Without this block nothing is retried.',
  children: [
    val('max-attempts', 'integer', 'Attempts in total, the first included (1 = no retry).', { min: 1, default: D.retry.configuredMaxAttempts }),
    val('backoff-ms', 'ms', 'First backoff; doubles each retry, with jitter.', { default: D.retry.backoffMs, aliases: ['backoff-base-ms'] }),
    val('max-backoff-ms', 'ms', 'Longest backoff.', { default: D.retry.maxBackoffMs, aliases: ['backoff-max-ms'] }),
    { name: 'retry-on', doc: `Failures to retry: ${RETRY_ON.map((r) => `\`${r}\``).join(', ')}.`, rest: { name: 'failure', type: 'string', enum: RETRY_ON, valueAliases: { 502: '502', 503: '503', 504: '504' } }, default: D.retry.retryOn.join(' '), aliases: ['retryable-status-codes'] },
    val('budget-percent', 'number', 'Retries may be at most this % of the requests in flight to the upstream.', { min: 0, max: 100, default: D.retry.budgetPercent }),
    val('min-retry-concurrency', 'integer', 'Retries always allowed below this many concurrent retries.', { min: 0, default: D.retry.minRetryConcurrency }),
  ],
};

/** Sentinel's `circuit-breaker` block (routes and upstreams; host/src/upstream/breaker.ts). */
const circuitBreaker = (scope: 'route' | 'upstream'): KeySpec => ({
  name: 'circuit-breaker',
  doc: `A circuit breaker over this ${scope}'s upstream attempts (see docs/health.md). A failure is an attempt that got no response (connect failure, reset, timeout) or a 5xx; any other response is a success. Closed: \`failure-threshold\` failures in a row open it. Open: every request fails fast with 503 \`WEIR_ERR_CIRCUIT_OPEN\` for \`timeout-seconds\`. Half-open: up to \`half-open-max-requests\` attempts at once go through (others get the 503); \`success-threshold\` successes in a row close it, one failure opens it again. Without this block ${scope === 'upstream' ? 'the upstream fails fast only while every target is ejected' : 'the route has no breaker of its own'}.`,
  children: [
    val('failure-threshold', 'integer', 'Failures in a row that open the breaker.', { min: 1, default: D.circuitBreaker.failureThreshold }),
    val('success-threshold', 'integer', 'Successes in a row, half-open, that close it.', { min: 1, default: D.circuitBreaker.successThreshold }),
    val('timeout-seconds', 'secs', 'How long it stays open before letting probes through (half-open).', { min: 0, default: secs(D.circuitBreaker.timeoutMs) }),
    val('half-open-max-requests', 'integer', 'Attempts in flight at once while half-open.', { min: 1, default: D.circuitBreaker.halfOpenMaxRequests }),
  ],
});

/** Passive outlier detection per upstream (host/src/upstream/outlier.ts). */
const outlierDetection: KeySpec = {
  name: 'outlier-detection',
  doc: 'Eject targets that fail from the responses they give (see docs/health.md): on `consecutive-5xx` or `consecutive-gateway-errors` in a row, or a success rate below the fleet\'s. An ejected target takes no request for `base-ejection-time` times the number of times it was ejected. Replaces the default ejection after 5 connect failures in a row. Each proxy thread judges from the requests it carries.',
  children: [
    val('consecutive-5xx', 'integer', '5xx responses, or attempts without a response (connect failure, reset, timeout), in a row that eject a target; 0 = off.', { min: 0, default: D.outlier.consecutive5xx }),
    val('consecutive-gateway-errors', 'integer', '502, 503 and 504 responses, or attempts without a response, in a row that eject a target; 0 = off.', { min: 0, default: D.outlier.consecutiveGatewayErrors }),
    {
      name: 'success-rate',
      doc: 'Every `interval`, eject the targets whose success rate (responses below 500 over attempts) is below the mean of the fleet minus `stdev-factor` standard deviations. Without this block success rates are not compared.',
      children: [
        val('min-hosts', 'integer', 'Targets with at least `min-requests` attempts in the interval needed to compare them.', { min: 1, default: D.outlier.successRate.minHosts }),
        val('min-requests', 'integer', 'Attempts a target needs in the interval to be judged.', { min: 1, default: D.outlier.successRate.minRequests }),
        val('stdev-factor', 'number', 'Standard deviations below the mean that eject.', { min: 0, default: D.outlier.successRate.stdevFactor }),
      ],
    },
    val('interval', 'secs', 'Seconds between success-rate sweeps; each sweep also lowers by one the ejection count of a target not ejected.', { min: 0.001, default: secs(D.outlier.intervalMs) }),
    val('base-ejection-time', 'secs', 'Seconds of the first ejection; the n-th ejection lasts n times this.', { min: 0.001, default: secs(D.outlier.baseEjectionMs) }),
    val('max-ejection-percent', 'number', 'Most targets ejected at once, as a percent of the upstream\'s targets; an ejection past it does not happen.', { min: 0, max: 100, default: D.outlier.maxEjectionPercent }),
    val('panic-threshold', 'number', 'When fewer than this percent of targets are available (not ejected and, with `health-check`, healthy), requests go to every target, ignoring health (panic mode); 0 = never.', { min: 0, max: 100, default: D.outlier.panicThreshold }),
  ],
};

const headerOps: KeySpec[] = [
  { name: 'set', doc: 'Set a header, replacing any value.', repeatable: true, args: [{ name: 'name', type: 'string' }, { name: 'value', type: 'string' }] },
  { name: 'add', doc: 'Add a header value.', repeatable: true, args: [{ name: 'name', type: 'string' }, { name: 'value', type: 'string' }] },
  { name: 'remove', doc: 'Remove headers.', repeatable: true, rest: { name: 'name', type: 'string' } },
];

/** `policies { request-headers; response-headers }`: the headers filter's operations, and Sentinel's `rename`. */
const policyHeaderOps: KeySpec[] = [
  ...headerOps,
  { name: 'rename', doc: 'Move a header\'s value under a new name.', anyChildren: true, unsupported: 'Weir\'s header changes have no rename: remove `rename` (a `filter type "wasm"` can copy a value under a new name).' },
];

const rateLimitKeys: KeySpec[] = [
  val('max-rps', 'number', 'Requests per second allowed per key.', { min: 0, required: true }),
  val('burst', 'integer', 'Extra requests allowed in a burst; default: `max-rps`.', { min: 1, max: 1_000_000_000 }),
  str('key', 'What is limited: `client-ip`, `header:<name>`, `property:<name>` (e.g. `property:auth.subject`, set by an auth filter before it), `path`, `route`, `client-ip-and-path`.', { default: D.rateLimit.key }),
  oneOf('on-limit', ['reject', 'delay', 'log-only'], 'What happens over the limit.', { default: D.rateLimit.onLimit }),
  oneOf('backend', ['local', 'redis', 'memcached'], 'Where counters live.', { default: D.rateLimit.backend }),
  str('redis-url', 'e.g. `redis://127.0.0.1:6379`.'),
  str('redis-prefix', 'Key prefix in Redis.', { default: D.rateLimit.redisPrefix }),
  val('redis-pool-size', 'integer', 'Redis connections.', { min: 1, default: D.rateLimit.redisPoolSize }),
  val('redis-timeout-ms', 'ms', 'Redis call deadline.', { default: D.rateLimit.redisTimeoutMs }),
  val('redis-fallback', 'boolean', 'Fall back to local counters while Redis is down.', { aliases: ['redis-fallback-local'] }),
  str('memcached-url', 'e.g. `memcache://127.0.0.1:11211`.'),
  str('memcached-prefix', 'Key prefix in memcached.', { default: D.rateLimit.memcachedPrefix }),
  val('memcached-pool-size', 'integer', 'memcached connections.', { min: 1, default: D.rateLimit.memcachedPoolSize }),
  val('memcached-timeout-ms', 'ms', 'memcached call deadline.', { default: D.rateLimit.memcachedTimeoutMs }),
  val('memcached-fallback', 'boolean', 'Fall back to local counters while memcached is down.'),
  val('memcached-ttl', 'integer', 'Seconds a counter lives in memcached.', { min: 1, default: D.rateLimit.memcachedTtlSecs }),
  val('status-code', 'integer', 'Status sent when rejecting.', { min: 100, max: 599, default: D.rateLimit.statusCode }),
  val('delay-max-ms', 'ms', 'Longest delay with `on-limit "delay"`; beyond it the request is rejected.', { default: D.rateLimit.delayMaxMs }),
];

const route: KeySpec = {
  name: 'route',
  doc: 'Sends matching requests through filters to an upstream or a builtin handler. Highest `priority` wins; ties go to the route written first.',
  repeatable: true,
  moved: { 'retry-policy': 'policies.retry', websocket: 'policies.websocket', 'rewrite-path': 'policies.rewrite-path' },
  args: [label('route')],
  children: [
    { ...val('priority', 'integer', 'Higher is tried first. Sentinel\'s names: `"critical"` = 1000, `"high"` = 100, `"normal"` = 0, `"low"` = -100.', { default: D.route.priority }), args: [{ name: 'value', type: 'integer', valueAliases: NAMED_PRIORITIES }] },
    val('enabled', 'boolean', '`#false`: the route matches nothing (requests fall through to the next route); `PUT /api/v1/routes/{id}/enabled` sets it.', { default: true }),
    { name: 'matches', doc: 'Conditions (ANDed between kinds, ORed within a kind). Several blocks = any block. None = every request.', repeatable: true, children: matchKeys },
    str('upstream', 'Name of the upstream in `upstreams` to forward to.'),
    { name: 'filters', doc: 'Names of filters in `filters`, run in order.', rest: { name: 'filter', type: 'string' }, repeatable: true },
    staticFiles,
    circuitBreaker('route'),
    oneOf('service-type', ['web', 'api', 'static', 'builtin', 'inference'], 'The format of the route\'s error replies: `web` and `static` = an HTML page (`text/html`, the same status, code and request id), the others = the JSON body of docs/errors.md. It changes nothing else: serve files with `static-files`, answer from Weir with `builtin-handler`. Unset: JSON.'),
    oneOf('builtin-handler', ['health', 'ready', 'metrics', 'status', 'not-found', 'cache-stats'], 'Answer from Weir itself instead of an upstream; `cache-stats` = the HTTP cache\'s entries, bytes and hit/miss totals as JSON.'),
    {
      name: 'policies',
      doc: 'Per-route behaviour.',
      children: [
        val('timeout-secs', 'secs', 'Deadline for the whole request, retries included; default: the upstream\'s `timeouts`.'),
        oneOf('failure-mode', FAILURE_MODES, 'When a filter of this route that writes no `failure-mode` of its own fails: `open` = skip it and carry on, `closed` = fail the request.', { default: D.policies.failureMode }),
        val('max-body-size', 'size', 'Largest request body for this route, gRPC streams included; default: `limits.max-body-bytes` (none for gRPC).'),
        val('websocket', 'boolean', 'Allow WebSocket upgrades.', { default: D.policies.allowWebsocket }),
        { name: 'request-headers', doc: 'Header changes on requests before the upstream, as a `filter type "headers" { request { … } }` listed after the route\'s `filters`.', children: policyHeaderOps, reshape: HEADER_OPS_BLOCKS },
        { name: 'response-headers', doc: 'Header changes on responses before the client, as a `filter type "headers" { response { … } }` listed after the route\'s `filters`.', children: policyHeaderOps, reshape: HEADER_OPS_BLOCKS },
        { name: 'rate-limit', doc: 'A rate limit on this route: the `filter type "rate-limit"` plugin with these keys, run before the route\'s `filters`.', children: rateLimitKeys.map((k) => (k.name === 'max-rps' ? { ...k, aliases: ['requests-per-second'] } : k)) },
        str('rewrite-path', 'Path sent upstream instead of the request\'s (the query string is kept), as a `filter type "url-rewrite" { regex-rewrite "^.*$" "PATH" }` listed after the route\'s `filters`.'),
        val('buffer-requests', 'boolean', '`#true`: every request body, chunked ones too, is read whole (up to the body limit, else 413) before the upstream is called, instead of only those within `limits request-body-buffer-bytes`; no upstream connection waits on a slow client. Routes with request-body filters keep the filters\' own buffering.', { default: false }),
        val('buffer-responses', 'boolean', 'Read the whole response before answering.', { unsupported: 'Weir holds up to `limits response-buffer-bytes` per exchange and streams the rest; set that size instead.' }),
        retry,
        routeCache,
        routeCompression,
        requestDecompression,
      ],
    },
  ],
};

const dnsCommon: KeySpec[] = [
  val('refresh-interval', 'secs', 'Longest time between two resolutions: addresses are resolved again when their TTL runs out or after this long, whichever comes first (at least 1 s apart); after a failure, again after this long. SRV records (whose TTL Node does not report) are read again after this long.', { min: 1, default: 30 }),
  { name: 'nameservers', doc: 'DNS servers asked, `"ip"` or `"ip:port"`; default: the system\'s resolvers.', rest: { name: 'server', type: 'string' } },
];

const DISCOVERY_KINDS: Readonly<Record<string, readonly KeySpec[]>> = {
  dns: [
    str('hostname', 'Name whose A and AAAA records are the targets.', { required: true }),
    val('port', 'integer', 'Port of every target.', { min: 1, max: 65535, required: true }),
    ...dnsCommon,
  ],
  'dns-srv': [
    str('service', 'SRV name, e.g. `_http._tcp.api.example.com`: the records of the lowest priority are the targets (their host resolved through A/AAAA, their port, their weight as `weight`; weight 0 counts as 1).', { required: true }),
    ...dnsCommon,
  ],
  consul: [
    str('address', 'Consul\'s HTTP API.', { default: 'http://127.0.0.1:8500' }),
    str('service', 'Service name in Consul\'s catalog.', { required: true }),
    str('datacenter', 'Datacenter asked (`dc=`); default: the agent\'s own.'),
    str('tag', 'Only instances with this tag.'),
    val('only-passing', 'boolean', 'Only instances whose health checks all pass (`passing`); `#false`: every registered instance.', { default: true }),
    val('refresh-interval', 'secs', 'Longest wait of one blocking query (`wait=`): Consul answers as soon as the service changes, or after this long; after a failure, the next query is sent after this long (at most 5 s).', { min: 1, max: 600, default: 30 }),
  ],
  kubernetes: [
    str('service', 'Service whose EndpointSlices (label `kubernetes.io/service-name`) hold the targets: every ready endpoint address.', { required: true }),
    str('namespace', 'Namespace of the Service; default: the kubeconfig context\'s, or the pod\'s own in a cluster.'),
    str('port-name', 'Name of the Service port used; default: each slice\'s first port.'),
    str('kubeconfig', 'kubeconfig file (its current context: server, CA, token or client certificate; `~/` is the home directory); default: in-cluster credentials (KUBERNETES_SERVICE_HOST, the service account\'s token and CA).'),
    val('refresh-interval', 'secs', 'Longest life of one watch (`timeoutSeconds`), after which it resumes from the last resourceVersion; after a failure, the next attempt waits this long (at most 5 s).', { min: 1, max: 3600, default: 30 }),
  ],
  file: [
    val('path', 'path', 'File of targets: JSON `[{"address":"10.0.0.1:8080","weight":2}]` (or `{"targets":[…]}`), or KDL `target "10.0.0.1:8080" weight=2` lines. Read again when it changes.', { required: true }),
  ],
};

const upstream: KeySpec = {
  name: 'upstream',
  doc: 'A pool of backend servers. Needs at least one `target` or a `discovery` block.',
  repeatable: true,
  args: [label('upstream')],
  children: [
    {
      name: 'target',
      doc: 'A backend server.',
      repeatable: true,
      args: [{ name: 'address', type: 'address' }],
      props: {
        weight: { type: 'integer', min: 0, doc: `Relative share of traffic (default ${D.target.weight}).` },
        labels: { type: 'string', doc: 'Labels for `load-balancing "subset"` (only with it): `name=value` pairs separated by commas, e.g. `labels="version=v2,region=eu"`.' },
        zone: { type: 'string', doc: 'Locality zone, for `load-balancing "locality_aware"` (only with it): targets of the proxy\'s own zone (the `WEIR_ZONE` environment variable) first, then the other zones in the order they first appear in the target list.' },
      },
    },
    {
      ...oneOf('load-balancing', LOAD_BALANCING, `Algorithm: \`round_robin\` (smooth weighted round robin), \`p2c\` (power of two choices on requests in flight per weight), \`weighted\` (another name for \`round_robin\`), \`ip_hash\` (the client address modulo the weights; not consistent), \`consistent_hash\` (a ketama ring on \`hash-key\`), \`maglev\` (a Maglev lookup table on \`hash-key\`), \`locality_aware\` (smooth weighted round robin over the healthy targets of the first zone by priority: the proxy's own, then the order of \`zone=\` in the target list), \`random\`, \`weighted_random\`, \`least_connections\`, \`weighted_least_connections\`, \`peak_ewma\`, \`least_latency\`, \`adaptive\`, \`least_tokens\` (on the targets' live stats), \`subset\` (smooth weighted round robin over the targets whose \`labels=\` match the request's \`subset-header\`). See docs/load-balancing.md. The other names are refused.`, { default: D.upstream.loadBalancing }),
      args: [{ name: 'value', type: 'string', enum: LOAD_BALANCING, unsupportedValues: LB_REFUSED, valueAliases: LB_ALIASES }],
    },
    str('subset-header', 'With `load-balancing "subset"`: the request header naming the subset, `name=value` pairs separated by commas; the request goes to the targets whose `labels=` hold them all. Without the header, or when no healthy target matches, every target is a candidate.', { default: 'x-subset' }),
    str('hash-key', 'What `consistent_hash` and `maglev` hash: `header:NAME`, `cookie:NAME`, `query:NAME`, `path` or `client-ip` (the client address after `trusted-proxies`). A request without that header, cookie or parameter is hashed by its client address. Only with those two algorithms.', { default: 'client-ip' }),
    oneOf('protocol', ['http1', 'h2'], 'Protocol spoken to the targets.', { default: D.upstream.protocol }),
    circuitBreaker('upstream'),
    outlierDetection,
    val('slow-start-secs', 'secs', 'A target that comes back (its health check passes again, or its ejection ends) gets a share of its `weight` that grows linearly from 1% to all of it over this many seconds; 0 = at once. Plugins that choose targets (`select-upstream`, the `lb` plugin behind `round_robin` and `p2c`) see the configured weight; Weir keeps their choice of a ramping target with the probability of its share, and otherwise sends the request to another target.', { min: 0, default: 0 }),
    {
      name: 'connection-pool',
      doc: 'Connections kept to each target.',
      children: [
        val('max-connections', 'integer', 'Most connections per target.', { min: 1, default: D.connectionPool.maxConnections }),
        val('max-idle', 'integer', 'Most idle connections kept per target.', { min: 0, unsupported: 'the pool keeps idle connections up to `max-connections`; bound them in time with `idle-timeout` instead.' }),
        val('idle-timeout', 'secs', 'Seconds an idle connection is kept.', { default: secs(D.connectionPool.idleTimeoutMs), aliases: ['idle-timeout-secs'] }),
        val('queue-timeout', 'secs', 'Seconds a request waits for a free connection when all `max-connections` of an `http1` target are busy; then 503 `WEIR_ERR_QUEUE_TIMEOUT`.', { default: secs(D.connectionPool.queueTimeoutMs) }),
        val('max-lifetime', 'secs', 'Seconds after which a connection is retired.', { default: secs(D.connectionPool.maxLifetimeMs), aliases: ['max-lifetime-secs'] }),
        val('max-requests', 'integer', 'Most requests in flight to the whole upstream (all targets); one more gets 503 `WEIR_ERR_UPSTREAM_MAX_REQUESTS` at once. 0 = no cap.', { min: 0, default: D.connectionPool.maxRequests }),
        val('max-pending-requests', 'integer', 'Most requests of the whole upstream waiting for a free connection (`http1` targets at `max-connections`); one more gets 503 `WEIR_ERR_UPSTREAM_MAX_PENDING` at once instead of waiting. 0 = no cap (each still waits at most `queue-timeout`).', { min: 0, default: D.connectionPool.maxPendingRequests }),
      ],
    },
    {
      name: 'timeouts',
      doc: 'Upstream timeouts, in seconds.',
      children: [
        val('connect', 'secs', 'Seconds to establish a connection.', { default: secs(D.timeouts.connectMs), aliases: ['connect-secs'] }),
        val('request', 'secs', 'Seconds for one attempt\'s whole exchange with a target, from sending the request to the end of the response body; past it the attempt ends with 504 (or a reset once the response started) and `retry-on "timeout"` may retry it.', { default: secs(D.timeouts.requestMs), aliases: ['request-secs'] }),
        val('read', 'secs', 'Seconds the response body may pause between two reads from the target.', { default: secs(D.timeouts.readMs), aliases: ['read-secs'] }),
        val('write', 'secs', 'Send timeout: seconds the response may make no progress towards the client (its buffer full, the client not reading) before the exchange is ended (`WEIR_ERR_SEND_TIMEOUT`, connection closed).', { default: secs(D.timeouts.writeMs), aliases: ['write-secs'] }),
      ],
    },
    {
      name: 'health-check',
      doc: 'Active health checking of each target.',
      children: [
        oneOf('type', ['http', 'tcp', 'grpc'], 'HTTP request, plain TCP connect, or the gRPC health protocol (grpc.health.v1 Check; needs `protocol "h2"`). Sentinel\'s `type "http" { path; expected-status; host }` form is read as those keys of this block.', { default: D.healthCheck.type, hoistChildren: true }),
        str('path', 'Path requested by `http` checks.', { default: D.healthCheck.path }),
        oneOf('method', ['GET', 'HEAD', 'POST', 'OPTIONS'], 'Method of `http` checks.', { default: D.healthCheck.method }),
        str('host', 'Host header of `http` checks; default: the target address.'),
        val('body-match', 'regex', '`http` checks pass only when the response body (its first 64 KiB) matches this regular expression.'),
        str('service', 'Service named in `grpc` checks; empty = the server as a whole.', { default: D.healthCheck.service }),
        val('interval-secs', 'secs', 'Time between checks.', { default: secs(D.healthCheck.intervalMs) }),
        val('interval-jitter-secs', 'secs', 'A random extra wait, from 0 to this, added to each interval (checks of many proxies do not arrive together).', { min: 0, default: 0 }),
        val('timeout-secs', 'secs', 'Deadline of one check.', { default: secs(D.healthCheck.timeoutMs) }),
        val('healthy-threshold', 'integer', 'Successes in a row to mark a target healthy.', { min: 1, default: D.healthCheck.healthyThreshold }),
        val('unhealthy-threshold', 'integer', 'Failures in a row to mark a target unhealthy.', { min: 1, default: D.healthCheck.unhealthyThreshold }),
        { name: 'expected-status', doc: 'Statuses counted as healthy.', rest: { name: 'status', type: 'integer', min: 100, max: 599 }, default: D.healthCheck.expectedStatus.join(' ') },
      ],
    },
    {
      name: 'tls',
      doc: 'Connect to the targets over TLS.',
      reshape: INSECURE_SKIP_VERIFY,
      children: [
        str('sni', 'Server name sent; default: the target host.'),
        val('ca-file', 'path', 'PEM CA bundle to verify targets; default: the system store.', { aliases: ['ca-cert'] }),
        val('client-cert', 'path', 'PEM client certificate (mTLS).'),
        val('client-key', 'path', 'PEM key of `client-cert`.'),
        val('verify', 'boolean', 'Verify the target\'s certificate.', { default: D.upstreamTls.verify }),
      ],
    },
    {
      name: 'discovery',
      doc: 'Find targets from a service registry instead of `target` lines: `"dns"` (A/AAAA records of `hostname`, every address a target), `"dns-srv"` (SRV records of `service`), `"consul"` (Consul\'s health API with blocking queries), `"kubernetes"` (a Service\'s EndpointSlices, list and watch) or `"file"` (a watched JSON or KDL list of targets). Each change is applied like a reload (in-flight requests finish on the targets they started with); when the source fails, the last good set keeps serving. docs/discovery.md.',
      args: [{ name: 'kind', type: 'string', enum: ['dns', 'dns-srv', 'file', 'consul', 'kubernetes'] }],
      variants: { key: '', fromArg: true, cases: DISCOVERY_KINDS },
    },
  ],
};

const geoKeys: KeySpec[] = [
  val('database-path', 'path', 'Country database (MaxMind format); default: the bundled CC0 geo-whois-asn-country database.'),
  {
    ...oneOf('database-type', ['mmdb', 'ip2location'], 'Database format: `mmdb` (MaxMind format).', { default: D.geo.databaseType }),
    args: [{ name: 'value', type: 'string', enum: ['mmdb', 'ip2location'], unsupportedValues: { ip2location: 'Weir reads MaxMind-format databases only; convert the database to `.mmdb`, or leave `database-path` out to use the bundled one.' } }],
  },
  oneOf('action', ['block', 'allow', 'log-only'], '`block` the listed countries, `allow` only them, or only tag requests.', { default: D.geo.action }),
  { name: 'countries', doc: 'ISO country codes: `"RU,CN"` or `"RU" "CN"`.', rest: { name: 'codes', type: 'string' } },
  oneOf('on-failure', FAILURE_MODES, 'When the lookup fails: `open` = let through, `closed` = reject.', { default: D.geo.onFailure }),
  val('status-code', 'integer', 'Status sent when blocking.', { min: 100, max: 599, default: D.geo.statusCode }),
  str('block-message', 'Body sent when blocking.', { default: D.geo.blockMessage }),
  val('cache-ttl-secs', 'secs', 'How long lookups are cached.', { unsupported: 'lookups are cached per address for as long as the database is loaded, with no expiry to tune; remove `cache-ttl-secs`.' }),
  str('client-ip-header', 'Take the client address from a request header.', { unsupported: 'any client could pick its country with it; geo looks up the client address Weir computes, so put the load balancer in the listener\'s `trusted-proxies` instead.' }),
];

const apiKeyKeys: KeySpec[] = [
  str('header', 'Request header carrying the key.', { default: 'x-api-key' }),
  val('keys-file', 'path', 'Accepted keys, one `LABEL KEY` or `LABEL sha256:SALT:HEX` a line (`#` comments); changes apply on reload and when the file changes.'),
  { name: 'key', doc: 'One accepted key (or `sha256:SALT:HEX`), e.g. `key "${SERVICE_KEY}" label="billing"`.', repeatable: true, args: [{ name: 'key', type: 'string' }], props: { label: { type: 'string', doc: 'Name of the key: the request property `auth.subject`.' } } },
  val('strip', 'boolean', 'Remove the key header before the upstream.', { default: true }),
];

const corsKeys: KeySpec[] = [
  { name: 'allow-origins', doc: 'Origins (`scheme://host[:port]`) allowed to read responses: exact, `https://*.example.org` for any subdomain (not `example.org` itself), or `"*"` (not with credentials).', required: true, rest: { name: 'origin', type: 'string' } },
  { name: 'allow-methods', doc: 'Methods a preflight may ask for; default: `GET HEAD POST`; `"*"` = any.', rest: { name: 'method', type: 'string' } },
  { name: 'allow-headers', doc: 'Request headers a preflight may ask for (case-insensitive); `"*"` = any but `authorization`.', rest: { name: 'header', type: 'string' } },
  { name: 'expose-headers', doc: 'Response headers scripts may read (Access-Control-Expose-Headers).', rest: { name: 'header', type: 'string' } },
  val('allow-credentials', 'boolean', 'Allow cookies and HTTP auth: Access-Control-Allow-Credentials, and the origin echoed (never `*`).', { default: false }),
  val('max-age-secs', 'integer', 'How long browsers may cache a preflight (Access-Control-Max-Age); unset: not sent.', { min: 0, max: 86400 }),
];

/** Keys of the WAF (plugins/waf), in a `type "waf"` filter and in the top-level `waf` block. */
const wafKeys: KeySpec[] = [
  oneOf('mode', ['block', 'detect'], '`block`: a request whose anomaly score reaches `anomaly-threshold` gets 403 `WEIR_ERR_WAF_BLOCKED`; `detect`: it goes on, and its matches are logged and audited.', { default: D.waf.mode }),
  val('paranoia-level', 'integer', 'Rules run: 1 = high-confidence rules only, up to 4 = every rule (more false positives); see docs/waf.md.', { min: 1, max: 4, default: D.waf.paranoiaLevel }),
  val('anomaly-threshold', 'integer', 'Score at which a request is blocked; each match adds its severity (critical 5, error 4, warning 3, notice 2).', { min: 1, default: D.waf.anomalyThreshold }),
  {
    name: 'body-inspection',
    doc: 'Inspection of request bodies (form-urlencoded, JSON, multipart).',
    children: [
      val('inspect-request-body', 'boolean', '`#false`: bodies are neither buffered nor inspected.', { default: true }),
      val('decompress', 'boolean', 'Undo gzip, deflate, br and zstd request bodies before inspection (as `policies { request-decompression }`, which a route may set itself); the decoded body goes upstream. `#false`: an encoded body is not inspected (rule 1006).', { default: true }),
      val('max-decompression-ratio', 'number', 'A body that inflates more than this many times its size is refused with 413 `WEIR_ERR_DECOMPRESSION_LIMIT` (zip bombs).', { min: 1, default: D.waf.maxDecompressionRatio }),
      val('max-body-inspection-bytes', 'size', 'Largest body inspected, after decompression; a larger one is refused with 413 (`WEIR_ERR_BODY_TOO_LARGE` or `WEIR_ERR_DECOMPRESSION_LIMIT`), never passed uninspected. Inspection costs about 1 µs of CPU per byte (a proxy thread, one call per body).', { default: '128KiB' }),
      { name: 'content-types', doc: 'Content types whose bodies are inspected: a type naming `json` is parsed as JSON (keys and string values), `application/x-www-form-urlencoded` and `multipart/form-data` by field; any other listed type is inspected as one text. Bodies of unlisted types are not inspected (rule 1005 at paranoia 2).', rest: { name: 'type', type: 'string' }, default: D.waf.contentTypes.join(' ') },
    ],
  },
  {
    name: 'exclude',
    doc: 'Turn rules off: `exclude rule=7001 route="search" parameter="query:q"`. Each property narrows it; `rule` is a rule id or a class (`sqli`, `xss`, `traversal`, `rfi`, `rce`, `protocol`, `scanner`). An exclusion with only `route` takes the WAF off that route.',
    repeatable: true,
    props: {
      rule: { type: 'scalar', doc: 'A rule id (`7001`) or a class (`sqli`); default: every rule.' },
      route: { type: 'string', doc: 'A route name; default: every route.' },
      parameter: { type: 'string', doc: '`path`, `query:NAME`, `body:NAME` (a form or multipart field, or a JSON key path such as `user.bio`), `header:NAME` or `cookie:NAME`; a trailing `*` matches a prefix; default: every parameter.' },
    },
  },
];

const ipFilterKeys: KeySpec[] = [
  { name: 'allow', doc: 'CIDRs (IPv4 or IPv6; a bare address is one host) of the client addresses let through; unset: every address not denied.', rest: { name: 'cidr', type: 'string' } },
  { name: 'deny', doc: 'CIDRs refused with 403 `WEIR_ERR_IP_DENIED`; deny wins over allow.', rest: { name: 'cidr', type: 'string' } },
];

const basicAuthKeys: KeySpec[] = [
  val('htpasswd', 'path', 'Users, one `USER:HASH` a line: bcrypt (`htpasswd -B`) or SHA-crypt (`$5$`, `$6$`); changes apply on reload and when the file changes.', { required: true }),
  str('realm', 'Realm named in the `WWW-Authenticate: Basic` challenge.', { default: 'weir' }),
  val('strip', 'boolean', 'Remove the Authorization header before the upstream.', { default: true }),
];

const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];
const names = (name: string, doc: string, what: string, extra: Partial<KeySpec> = {}): KeySpec => ({ name, doc, rest: { name: what, type: 'string' }, ...extra });

const jwtKeys: KeySpec[] = [
  { name: 'algorithms', doc: 'Signature algorithms accepted (a token\'s `alg` must be one): `HS256` `HS384` `HS512` `RS256` `RS384` `RS512` `PS256` `ES256` `ES384` `EdDSA`.', required: true, rest: { name: 'algorithm', type: 'string', enum: JWT_ALGORITHMS } },
  str('secret', 'HMAC key for HS256/384/512, at least 32 bytes; write `"${JWT_SECRET}"`.'),
  val('jwks-file', 'path', 'Verification keys (a JWKS: RSA, EC, OKP and `oct` keys); changes apply on reload and when the file changes.'),
  str('jwks-url', 'JWKS fetched from the identity provider (http-callout): cached for its Cache-Control max-age (default 300 s, 30 s to 1 day), fetched again by a timer before that ends, and for a `kid` it lacks at most every 5 s.'),
  names('issuer', 'Accepted `iss` values (any of them).', 'issuer'),
  names('audience', 'Accepted `aud` values: the token\'s `aud` (a string or a list) must hold one.', 'audience'),
  names('required-claims', 'Claims the token must carry.', 'claim'),
  val('clock-skew-secs', 'integer', 'Leeway for `exp`, `nbf` and `iat`.', { min: 0, max: 3600, default: 30 }),
  {
    name: 'claims-to-headers',
    doc: 'Claims copied into request headers for the upstream; a client\'s own copies of those headers are removed first.',
    children: [{ name: 'claim', doc: '`claim "sub" header="x-user"`: non-string claims are sent as JSON.', repeatable: true, args: [{ name: 'claim', type: 'string' }], props: { header: { type: 'string', doc: 'The request header to set.' } } }],
  },
  {
    name: 'token-from',
    doc: 'Where the token is looked for, in order; default: `header "authorization" prefix="Bearer "`.',
    children: [
      { name: 'header', doc: 'A request header.', repeatable: true, args: [{ name: 'name', type: 'string' }], props: { prefix: { type: 'string', doc: 'Text before the token (case-insensitive), e.g. `"Bearer "`.' } } },
      { name: 'cookie', doc: 'A cookie.', repeatable: true, args: [{ name: 'name', type: 'string' }] },
      { name: 'query', doc: 'A query parameter.', repeatable: true, args: [{ name: 'name', type: 'string' }] },
    ],
  },
];

export const FILTER_TYPES: Readonly<Record<string, readonly KeySpec[]>> = {
  'url-rewrite': [
    str('prefix', 'Only paths starting with this prefix are rewritten.'),
    str('replace-prefix-match', 'Replace the matched `prefix` (or the route\'s `path-prefix`) with this.'),
    { name: 'regex-rewrite', doc: 'Rewrite the path: `regex-rewrite "^/v1/(.*)" "/api/$1"`.', args: [{ name: 'pattern', type: 'regex' }, { name: 'substitution', type: 'string' }] },
  ],
  headers: [
    { name: 'request', doc: 'Changes to request headers, before the upstream.', children: headerOps },
    { name: 'response', doc: 'Changes to response headers, before the client.', children: headerOps },
  ],
  wasm: [str('plugin', 'Name of the plugin in `plugins`.', { required: true })],
  // gRPC-Web (application/grpc-web, -text) to gRPC and back; no settings (docs/http2.md).
  'grpc-web': [],
  'rate-limit': rateLimitKeys,
  geo: geoKeys,
  'api-key': apiKeyKeys,
  cors: corsKeys,
  waf: wafKeys,
  'ip-filter': ipFilterKeys,
  'basic-auth': basicAuthKeys,
  jwt: jwtKeys,
};

/**
 * Sentinel's external agents (its agent protocol over a Unix socket or gRPC) are not spoken:
 * each kind has a WASM plugin or a built-in instead.
 */
const AGENTS_INSTEAD = 'Weir does not speak the Sentinel agent protocol; run the logic in-process instead: rate limiting = `filter type "rate-limit"` (plugins/rate-limit), geo blocking = `type "geo"` (plugins/geo), WAF = `type "waf"` (plugins/waf), header changes = `type "headers"`, auth and custom agents = a `type "wasm"` filter with your plugin (see docs/plugin-abi.md).';

const filter: KeySpec = {
  name: 'filter',
  doc: 'A named request/response filter; routes list filters by name. The keys allowed depend on `type`.',
  repeatable: true,
  args: [label('filter')],
  children: [
    { ...oneOf('type', [...Object.keys(FILTER_TYPES), 'agent'], 'Kind of filter.', { required: true }), args: [{ name: 'value', type: 'string', enum: [...Object.keys(FILTER_TYPES), 'agent'], unsupportedValues: { agent: AGENTS_INSTEAD } }] },
    oneOf('failure-mode', FAILURE_MODES, 'When the filter itself fails: `open` = skip it, `closed` = fail the request. Unset: each route\'s `policies failure-mode` (default `' + D.policies.failureMode + '`).'),
  ],
  variants: { key: 'type', cases: FILTER_TYPES },
};

const plugin: KeySpec = {
  name: 'plugin',
  doc: 'A WebAssembly component run by `wasm` filters.',
  repeatable: true,
  args: [label('plugin')],
  children: [
    val('path', 'path', 'The `.wasm` component file.', { required: true }),
    oneOf('isolation', ['inline', 'worker'], '`inline` = on the proxy thread; `worker` = in a worker thread pool.', { default: D.plugin.isolation }),
    val('fuel', 'integer', 'CPU budget per call, in wasm fuel units.', { min: 1, default: D.plugin.fuel }),
    val('memory-limit', 'size', 'Largest linear memory.', { default: '64MiB' }),
    val('timeout-ms', 'ms', 'Wall-clock deadline per call.', { default: D.plugin.timeoutMs }),
    val('pool-size', 'integer', 'Instances kept ready.', { min: 1, default: D.plugin.poolSize }),
    val('tick-ms', 'ms', 'Period of the plugin\'s `on-tick` timer (its describe must list on-tick); none: no timer.', { min: 10 }),
    { name: 'config', doc: 'Free-form block handed to the plugin\'s `configure`.', anyChildren: true },
  ],
};

const limits: KeySpec = {
  name: 'limits',
  doc: 'Protection against abusive or broken clients.',
  children: [
    val('max-header-bytes', 'size', 'Largest request header section.', { default: D.limits.maxHeaderBytes, aliases: ['max-header-size-bytes', 'max-header-size'] }),
    val('max-header-count', 'integer', 'Most request headers.', { min: 1, default: D.limits.maxHeaderCount }),
    val('max-body-bytes', 'size', 'Largest request body (`"10MiB"` or a number); gRPC requests are bounded only by a route `max-body-size`.', { default: '10MiB', aliases: ['max-body-size-bytes', 'max-body-size'] }),
    val('max-request-line-bytes', 'size', 'Longest request line.', { default: D.limits.maxRequestLineBytes }),
    val('header-timeout-ms', 'ms', 'Time to receive the request headers.', { default: D.limits.headerTimeoutMs }),
    val('request-timeout-ms', 'ms', 'Time to receive the whole request.', { default: D.limits.requestTimeoutMs }),
    val('keepalive-timeout-ms', 'ms', 'Idle time before a kept-alive connection is closed.', { default: D.limits.keepAliveTimeoutMs }),
    val('max-requests-per-connection', 'integer', 'Requests before a connection is closed; 0 = unlimited.', { min: 0, default: D.limits.maxRequestsPerConnection }),
    val('max-connections', 'integer', 'Most client connections at once on each listener; `system max-connections` caps all listeners together.', { min: 1, default: D.limits.maxConnections }),
    val('websocket-idle-timeout-secs', 'secs', 'An open WebSocket with no traffic either way for this long is closed.', { default: secs(D.limits.websocketIdleTimeoutMs) }),
    val('websocket-max-message-bytes', 'size', 'Largest WebSocket message, either direction; larger ones close the connection (1009).', { default: D.limits.websocketMaxMessageBytes }),
    val('max-upstream-requests-per-client', 'integer', 'Upstream requests one client address may have in flight or waiting for a connection; more get 503 `WEIR_ERR_CLIENT_LIMIT`. 0 = no cap.', { min: 0, default: D.limits.maxUpstreamRequestsPerClient }),
    val('response-buffer-bytes', 'size', 'Response bytes held in memory per exchange when the client reads slower than the upstream sends; only past it is the upstream read paused (so smaller responses free their upstream connection at once).', { default: '128KiB' }),
    val('request-body-buffer-bytes', 'size', 'Request bodies up to this size are read whole before an upstream connection is taken; larger ones are streamed.', { default: '64KiB' }),
    val('max-connections-per-client', 'integer', 'Connections one peer address may hold open at once on a proxy thread, over all listeners; one more is closed at once. It counts the socket\'s peer, so a load balancer in front counts as one client. 0 = no cap.', { min: 0, default: D.limits.maxConnectionsPerClient }),
    val('max-total-connections', 'integer', 'Client connections over all listeners, as `system max-connections` (per proxy thread); writing both is refused.', { min: 1 }),
    val('max-in-flight-requests', 'integer', 'Requests each proxy thread handles at once, every route and listener together; one more gets 503 `WEIR_ERR_OVERLOADED` before routing. 0 = no cap.', { min: 0, default: D.limits.maxInFlightRequests }),
    val('max-decompression-ratio', 'number', 'Largest decoded / received size ratio of a request body wherever Weir decodes one (a route\'s `policies { request-decompression }`, a WAF\'s `decompress`), unless that block sets its own `max-ratio` / `max-decompression-ratio`; past it: 413 `WEIR_ERR_DECOMPRESSION_LIMIT`.', { min: 1 }),
    val('max-decompressed-size-bytes', 'size', 'Largest decoded request body wherever Weir decodes one (as `max-decompression-ratio`), unless a route\'s `request-decompression` sets its own `max-bytes`; a WAF inspects no more than the smaller of this and its `max-body-inspection-bytes`.'),
    val('min-request-body-rate', 'size', 'Slowest accepted request body, bytes per second over 5-second windows (not counted while the upstream is not reading it; gRPC streams are exempt); a slower client gets 408 `WEIR_ERR_REQUEST_TIMEOUT`. 0 = off.', { default: D.limits.minRequestBodyRate }),
    {
      name: 'http2',
      doc: 'HTTP/2 limits.',
      children: [
        val('max-concurrent-streams', 'integer', 'Streams per connection.', { min: 1, default: D.limits.http2.maxConcurrentStreams }),
        val('initial-window-size', 'integer', 'Flow-control window, bytes.', { min: 0, max: 2 ** 31 - 1, default: D.limits.http2.initialWindowSize }),
        val('connection-window-size', 'size', 'Flow-control window of the whole connection, bytes.', { default: D.limits.http2.connectionWindowSize }),
        val('max-header-list-size', 'size', 'Largest header list.', { default: D.limits.http2.maxHeaderListSize }),
        val('max-session-memory-mb', 'integer', 'Memory per session, MB.', { min: 1, default: D.limits.http2.maxSessionMemoryMb }),
      ],
    },
  ],
};

const sampleRatioDoc = 'Share of new traces recorded and exported, 0 to 1. A request whose `traceparent` says sampled is always recorded (parent-based), one that says not sampled never is.';
const tracing: KeySpec = {
  name: 'tracing',
  doc: 'OpenTelemetry tracing (see docs/tracing.md): a server span per request, a client span per upstream attempt, spans for slow plugin hooks; W3C `traceparent`/`tracestate` continued from the client (trusted or not) and sent upstream with a new parent id; spans exported in batches as OTLP/HTTP protobuf. Without this block `traceparent` is forwarded unchanged.',
  children: [
    val('enabled', 'boolean', '`#false` turns tracing off (as if the block were absent).', { default: true }),
    str('endpoint', 'OTLP/HTTP URL spans are posted to (protobuf); a URL without a path gets `/v1/traces` (a collector\'s OTLP/HTTP port is usually 4318). Required, here or in `backend`.'),
    {
      name: 'backend',
      doc: 'Sentinel\'s spelling of `endpoint`: `backend "otlp" { endpoint "…" }`. Writing both is refused.',
      args: [{ name: 'type', type: 'string', enum: ['otlp', 'jaeger', 'zipkin'], unsupportedValues: {
        jaeger: 'Weir exports OTLP only; Jaeger takes OTLP/HTTP on port 4318: write `backend "otlp"` with that endpoint.',
        zipkin: 'Weir exports OTLP only; send to an OpenTelemetry Collector\'s OTLP/HTTP receiver, which exports to Zipkin.',
      } }],
      children: [str('endpoint', 'As `tracing { endpoint }`.', { required: true })],
    },
    str('service-name', '`service.name` of the spans\' resource.', { default: D.observability.tracing.serviceName }),
    val('sample-ratio', 'number', sampleRatioDoc, { min: 0, max: 1, default: D.observability.tracing.sampleRatio }),
    { ...val('sampling-rate', 'number', `Sentinel's name for \`sample-ratio\` (same effect; writing both is refused).`, { min: 0, max: 1 }), aliasOf: 'sample-ratio' },
    val('hook-span-threshold-ms', 'ms', 'A plugin hook call that takes at least this long gets its own span under the request span; 0 = every call.', { min: 0, default: D.observability.tracing.hookSpanThresholdMs }),
    val('export-delay-ms', 'ms', 'Longest time an ended span waits before its batch is sent (a full batch of 512 goes at once).', { min: 1, default: D.observability.tracing.exportDelayMs }),
  ],
};

const observability: KeySpec = {
  name: 'observability',
  doc: 'Metrics, logs and traces.',
  children: [
    {
      name: 'metrics',
      doc: 'Prometheus metrics.',
      children: [
        val('enabled', 'boolean', 'Serve metrics. `#false`: nothing serves them, and a `metrics` builtin route or a metrics `address` is refused (WEIR_ERR_CONFIG_CONSTRAINT).', { default: D.observability.metrics.enabled }),
        val('address', 'address', 'Separate listener for metrics; default: the `metrics` builtin route only.'),
        str('path', 'Path metrics are served on.', { default: D.observability.metrics.path }),
      ],
    },
    {
      name: 'logging',
      doc: 'Logs.',
      children: [
        oneOf('level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'Least severe level written.', { default: D.observability.logging.level }),
        oneOf('format', ['json', 'pretty'], 'Log line format.', { default: D.observability.logging.format }),
        val('access-log', 'string-or-boolean', '`true` = stdout, `false` = off, a string = file path (relative to the working directory); it must be writable when the config is loaded, and is reopened when it is moved or deleted.', { default: D.observability.logging.accessLog, reshape: ACCESS_LOG_BLOCK }),
        val('audit-log', 'string-or-boolean', 'JSON lines for admin API calls (who, what, result), config reloads and auth/WAF denials: `true` = stdout, `false` = off, a string = file path (as `access-log`).', { default: false, reshape: ACCESS_LOG_BLOCK }),
        { name: 'error-log', doc: 'A separate file for error lines.', anyChildren: true, unsupported: 'Weir writes one process log (every level, to stdout, as `format` says); route its error lines with the service manager or log shipper, and remove `error-log`.' },
      ],
    },
    tracing,
  ],
};

const cache: KeySpec = {
  name: 'cache',
  doc: 'The HTTP cache (RFC 9111) shared by the routes that have `policies { cache {} }`. Without this block those routes use the defaults.',
  children: [
    val('enabled', 'boolean', '`false` turns caching off for every route.', { default: true }),
    oneOf('backend', ['memory', 'disk', 'hybrid'], 'Where entries live: `memory` (LRU by bytes); `disk` (one file per entry under `disk-path`, written atomically, index rebuilt from the files on start, evicted by the same LRU); `hybrid` (`disk`, plus an eighth of `max-size` of hot bodies in memory).', { default: 'memory' }),
    val('max-size', 'size', 'Bytes the cache may hold; least recently used entries are evicted past it.', { default: '100MiB' }),
    val('eviction-limit', 'size', 'Start evicting at this size instead of `max-size` (the smaller of the two wins).'),
    val('lock-timeout', 'secs', 'How long a request for a key another request is filling waits for that fill before going to the origin itself.', { default: 10 }),
    str('disk-path', 'Directory of the `disk` and `hybrid` backends (created if missing); required by them, unused by `memory`.'),
    val('disk-shards', 'integer', 'Subdirectories the entry files are spread over.', { min: 1, max: 256, default: 16 }),
    str('status-header', 'Response header telling `HIT`, `MISS`, `STALE` or `BYPASS`.', { default: 'x-cache' }),
    {
      name: 'purge',
      doc: 'Who may send `PURGE` (of a URL, a `prefix*`, or the tags in a `Surrogate-Key` / `Cache-Tag` request header); others get 403 `WEIR_ERR_PURGE_FORBIDDEN`. Default: loopback only.',
      children: [
        { name: 'allow', doc: 'Addresses or networks (`10.0.0.0/8`) allowed to purge.', rest: { name: 'address', type: 'string' }, repeatable: true },
        str('token', 'A token that also allows purging, sent as `Authorization: Bearer …` or `X-Purge-Token`; use `"${ENV_VAR}"`.'),
      ],
    },
  ],
};

const waf: KeySpec = {
  name: 'waf',
  doc: 'The web application firewall (plugins/waf, docs/waf.md) on every route, ahead of the route\'s own filters; a route that lists a `type "waf"` filter of its own gets that one instead.',
  children: [
    val('enabled', 'boolean', '`#false`: the block is ignored (no route gets the WAF).', { default: true }),
    ...wafKeys,
  ],
};

const adminApi: KeySpec = {
  name: 'admin-api',
  doc: 'The admin API and UI (`/api/v1/…`, `/ui/`) on a listener of their own; see docs/admin-api.md.',
  children: [
    val('enabled', 'boolean', '`#false`: nothing listens on `address`.', { default: true }),
    val('address', 'address', 'Where the admin API listens. An address that is not loopback is refused without `tls` unless `allow-remote #true`.', { required: true }),
    val('allow-remote', 'boolean', 'Accept a non-loopback `address` without `tls` (tokens then cross the network in clear text).', { default: false }),
    val('persist', 'boolean', 'Write changes made through the API back to the config file (comments and formatting kept). `#false`: changes live until the file is reloaded, which replaces them (the API answers `"persisted": false`).', { default: false }),
    val('drain-timeout-secs', 'secs', 'How long `POST /api/v1/upstreams/{id}/drain` waits for in-flight requests when the call names no `timeout-ms`.', { default: 30 }),
    {
      name: 'tls',
      doc: 'Serve the admin API over HTTPS.',
      children: [
        val('cert-file', 'path', 'PEM certificate chain.', { required: true }),
        val('key-file', 'path', 'PEM private key of `cert-file`.', { required: true }),
        val('ca-file', 'path', 'PEM CA bundle that signs admin client certificates (required by `auth type "mtls"`).'),
      ],
    },
    {
      name: 'auth',
      doc: 'Who may call the API. Without a valid credential: 401 `WEIR_ERR_ADMIN_UNAUTHORIZED`; a read-only credential on a write: 403 `WEIR_ERR_ADMIN_FORBIDDEN`.',
      required: true,
      children: [
        oneOf('type', ['bearer', 'mtls'], '`bearer`: `Authorization: Bearer <token>` (compared in constant time); `mtls`: a client certificate signed by `tls ca-file`.', { required: true }),
        str('token', 'The full-access bearer token; use `"${ENV_VAR}"` to keep it out of the file. Required by `bearer`.'),
        str('read-only-token', 'A bearer token that may only read (GET).'),
        { name: 'read-only-subjects', doc: 'mTLS: client certificate subject common names that may only read.', rest: { name: 'cn', type: 'string' } },
      ],
    },
  ],
};

/** The top level of a file. Plural blocks merge across files; the rest may appear once. */
export const ROOT: readonly KeySpec[] = [
  { name: 'schema-version', doc: 'Version of this dialect: `"1.0"`.', args: [{ name: 'version', type: 'scalar' }], default: D.schemaVersion },
  { name: 'include', doc: 'Read another file (relative to this one) as if written here.', repeatable: true, args: [{ name: 'file', type: 'string' }] },
  { name: 'system', doc: 'Process-wide settings.', children: systemChildren },
  { name: 'server', doc: 'Another name for `system`, with the same keys and the same effect; writing both is refused.', aliasOf: 'system', children: systemChildren },
  { name: 'listeners', doc: 'Where clients connect. With none, Weir listens on `' + D.listener.address + '`.', repeatable: true, children: [listener] },
  { ...listener, doc: 'Shorthand for a `listener` inside `listeners`.', shorthandFor: 'listeners' },
  { name: 'routes', doc: 'How requests are matched and where they go.', repeatable: true, children: [route] },
  { ...route, doc: 'Shorthand for a `route` inside `routes`.', shorthandFor: 'routes' },
  { name: 'upstreams', doc: 'Backend pools.', repeatable: true, children: [upstream] },
  { ...upstream, doc: 'Shorthand for an `upstream` inside `upstreams`.', shorthandFor: 'upstreams' },
  { name: 'filters', doc: 'Named filters used by routes.', repeatable: true, children: [filter] },
  { ...filter, doc: 'Shorthand for a `filter` inside `filters`.', shorthandFor: 'filters' },
  { name: 'plugins', doc: 'WebAssembly plugins used by `wasm` filters.', repeatable: true, children: [plugin] },
  { ...plugin, doc: 'Shorthand for a `plugin` inside `plugins`.', shorthandFor: 'plugins' },
  { name: 'agents', doc: 'Sentinel\'s external processing agents.', anyChildren: true, unsupported: AGENTS_INSTEAD },
  limits,
  observability,
  cache,
  waf,
  adminApi,
];

/**
 * Every key path of the schema ("routes.route.matches.path-prefix"), props as "target.weight=".
 * Shorthands and aliases appear once, without their children (they share their target's).
 */
export function allKeyPaths(specs: readonly KeySpec[] = ROOT, prefix = ''): string[] {
  const out: string[] = [];
  for (const s of specs) {
    const p = prefix + s.name;
    out.push(p);
    for (const a of s.aliases ?? []) out.push(prefix + a);
    if (s.shorthandFor || s.aliasOf) continue;
    for (const m of Object.keys(s.moved ?? {})) out.push(`${p}.${m}`);
    for (const prop of Object.keys(s.props ?? {})) out.push(`${p}.${prop}=`);
    if (s.children) out.push(...allKeyPaths(s.children, p + '.'));
    if (s.variants) {
      for (const [c, specsOfCase] of Object.entries(s.variants.cases)) out.push(...allKeyPaths(specsOfCase, `${p}[${c}].`));
    }
  }
  return out;
}

/** The key paths of allKeyPaths that are Sentinel's spellings (`aliases`, `moved`) of another key. */
export function aliasKeyPaths(specs: readonly KeySpec[] = ROOT, prefix = ''): string[] {
  const out: string[] = [];
  for (const s of specs) {
    const p = prefix + s.name;
    for (const a of s.aliases ?? []) out.push(prefix + a);
    if (s.shorthandFor || s.aliasOf) continue;
    for (const m of Object.keys(s.moved ?? {})) out.push(`${p}.${m}`);
    if (s.children) out.push(...aliasKeyPaths(s.children, p + '.'));
    if (s.variants) for (const [c, cs] of Object.entries(s.variants.cases)) out.push(...aliasKeyPaths(cs, `${p}[${c}].`));
  }
  return out;
}

/** Key paths refused with WEIR_ERR_CONFIG_UNSUPPORTED (a refused block's children included), and refused enum values as "path=value". */
export function unsupportedKeyPaths(specs: readonly KeySpec[] = ROOT, prefix = '', inRefused = false): string[] {
  const out: string[] = [];
  for (const s of specs) {
    const p = prefix + s.name;
    const refused = inRefused || s.unsupported !== undefined;
    if (refused) out.push(p);
    for (const v of Object.keys(s.args?.[0]?.unsupportedValues ?? {})) out.push(`${p}=${v}`);
    if (s.shorthandFor || s.aliasOf) continue;
    for (const [name, prop] of Object.entries(s.props ?? {})) if (refused || prop.unsupported !== undefined) out.push(`${p}.${name}=`);
    if (s.children) out.push(...unsupportedKeyPaths(s.children, p + '.', refused));
    if (s.variants) {
      for (const [c, specsOfCase] of Object.entries(s.variants.cases)) out.push(...unsupportedKeyPaths(specsOfCase, `${p}[${c}].`, refused));
    }
  }
  return out;
}

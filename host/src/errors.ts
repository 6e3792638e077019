/**
 * Every error Weir reports, in one table. A code is stable forever: users grep logs and
 * alert on it. `docs/errors.md` lists the same codes; test/errors.test.ts keeps them in sync.
 *
 * `status` is the HTTP status sent to the client when the error ends a request (0 where it
 * never reaches a client, e.g. a config error). `source` says whose fault it is.
 */
export type ErrorSource = 'downstream' | 'upstream' | 'plugin' | 'config' | 'internal';

export interface ErrorSpec {
  readonly status: number;
  readonly source: ErrorSource;
  readonly message: string;
}

export const ERRORS = {
  // downstream: the client sent something we refuse
  WEIR_ERR_NO_ROUTE: { status: 404, source: 'downstream', message: 'no route matches the request' },
  WEIR_ERR_BAD_REQUEST: { status: 400, source: 'downstream', message: 'malformed request' },
  WEIR_ERR_BODY_TOO_LARGE: { status: 413, source: 'downstream', message: 'request body exceeds the configured limit' },
  WEIR_ERR_HEADERS_TOO_LARGE: { status: 431, source: 'downstream', message: 'request headers exceed the configured limit' },
  WEIR_ERR_URI_TOO_LONG: { status: 414, source: 'downstream', message: 'request line exceeds the configured limit' },
  WEIR_ERR_REQUEST_TIMEOUT: { status: 408, source: 'downstream', message: 'the client did not send the request in time' },
  WEIR_ERR_METHOD_NOT_ALLOWED: { status: 405, source: 'downstream', message: 'method not allowed here' },
  WEIR_ERR_UPGRADE_REFUSED: { status: 400, source: 'downstream', message: 'protocol upgrade not allowed on this route' },
  WEIR_ERR_CLIENT_ABORTED: { status: 499, source: 'downstream', message: 'the client closed the connection before the response was complete' },
  WEIR_ERR_OVERLOADED: { status: 503, source: 'internal', message: 'too many connections or requests in flight' },
  WEIR_ERR_PATH_REJECTED: { status: 400, source: 'downstream', message: 'the request path is not allowed (encoded slash or backslash, or it climbs above the root)' },
  WEIR_ERR_CLIENT_LIMIT: { status: 503, source: 'downstream', message: 'this client has too many requests in flight to upstreams' },
  WEIR_ERR_QUEUE_TIMEOUT: { status: 503, source: 'upstream', message: 'no upstream connection became free in time' },
  WEIR_ERR_SEND_TIMEOUT: { status: 0, source: 'downstream', message: 'the client did not read the response in time' },
  WEIR_ERR_PROXY_PROTOCOL: { status: 400, source: 'downstream', message: 'invalid or untrusted PROXY protocol header' },
  WEIR_ERR_PURGE_FORBIDDEN: { status: 403, source: 'downstream', message: 'PURGE is allowed only from trusted addresses or with the purge token' },
  WEIR_ERR_FILE_NOT_FOUND: { status: 404, source: 'downstream', message: 'no file under the static-files root for this path' },
  WEIR_ERR_CACHE_ONLY_IF_CACHED: { status: 504, source: 'downstream', message: 'the request asked for only-if-cached and the cache holds no usable response' },
  WEIR_ERR_DECOMPRESSION_LIMIT: { status: 413, source: 'downstream', message: 'the request body inflates past the decompression size or ratio limit' },
  WEIR_ERR_BODY_ENCODING: { status: 415, source: 'downstream', message: 'the request body has a Content-Encoding Weir does not decode, or its data is not valid for it' },
  WEIR_ERR_AUTH_MISSING: { status: 401, source: 'downstream', message: 'the route needs a credential (API key, basic auth or bearer token) and the request has none' },
  WEIR_ERR_AUTH_INVALID: { status: 401, source: 'downstream', message: 'the credential is not valid: unknown key, wrong password, malformed token or bad signature' },
  WEIR_ERR_IP_DENIED: { status: 403, source: 'downstream', message: 'the client address is not allowed by the route\'s ip-filter' },
  WEIR_ERR_CORS_PREFLIGHT_REFUSED: { status: 403, source: 'downstream', message: 'the CORS preflight asks for an origin, method or header this route does not allow' },
  WEIR_ERR_WAF_BLOCKED: { status: 403, source: 'downstream', message: 'the web application firewall blocked the request' },
  WEIR_ERR_AUTH_EXPIRED: { status: 401, source: 'downstream', message: 'the token has expired (exp, with the configured clock skew)' },
  WEIR_ERR_AUTH_NOT_YET_VALID: { status: 401, source: 'downstream', message: 'the token is not valid yet (nbf) or was issued in the future (iat)' },
  WEIR_ERR_AUTH_CLAIMS: { status: 401, source: 'downstream', message: 'the token\'s issuer, audience or required claims are not what the route accepts' },
  WEIR_ERR_AUTH_UNKNOWN_KEY: { status: 401, source: 'downstream', message: 'no verification key matches the token (its kid is not in the JWKS, even after fetching it again)' },
  WEIR_ERR_ADMIN_UNAUTHORIZED: { status: 401, source: 'downstream', message: 'the admin API needs a valid credential' },
  WEIR_ERR_ADMIN_FORBIDDEN: { status: 403, source: 'downstream', message: 'this admin credential may only read' },
  WEIR_ERR_ADMIN_NOT_FOUND: { status: 404, source: 'downstream', message: 'no such admin API path, upstream, route or plugin' },
  WEIR_ERR_ADMIN_BAD_REQUEST: { status: 400, source: 'downstream', message: 'the admin API request body is not what this call takes' },
  WEIR_ERR_ADMIN_CONFLICT: { status: 409, source: 'downstream', message: 'the change would make the configuration invalid; nothing changed' },
  WEIR_ERR_ADMIN_UNAVAILABLE: { status: 503, source: 'internal', message: 'the change could not be applied on every proxy thread; nothing changed' },

  // upstream: the backend failed us
  WEIR_ERR_NO_UPSTREAM: { status: 502, source: 'config', message: 'the route has no upstream to forward to' },
  WEIR_ERR_NO_HEALTHY_TARGET: { status: 503, source: 'upstream', message: 'no healthy target in the upstream' },
  WEIR_ERR_UPSTREAM_CONNECT: { status: 502, source: 'upstream', message: 'could not connect to the upstream' },
  WEIR_ERR_UPSTREAM_RESET: { status: 502, source: 'upstream', message: 'the upstream closed the connection' },
  WEIR_ERR_UPSTREAM_TIMEOUT: { status: 504, source: 'upstream', message: 'the upstream did not answer in time' },
  WEIR_ERR_UPSTREAM_PROTOCOL: { status: 502, source: 'upstream', message: 'the upstream sent an invalid response' },
  WEIR_ERR_UPSTREAM_TLS: { status: 502, source: 'upstream', message: 'TLS handshake with the upstream failed' },
  WEIR_ERR_CIRCUIT_OPEN: { status: 503, source: 'upstream', message: 'the circuit breaker of the upstream or route is open (or half-open with its probes in flight)' },
  WEIR_ERR_UPSTREAM_MAX_REQUESTS: { status: 503, source: 'upstream', message: 'the upstream has connection-pool max-requests requests in flight' },
  WEIR_ERR_UPSTREAM_MAX_PENDING: { status: 503, source: 'upstream', message: 'the upstream has connection-pool max-pending-requests requests waiting for a connection' },
  WEIR_ERR_RETRY_BUDGET: { status: 502, source: 'upstream', message: 'the retry budget is exhausted' },

  // plugin: a filter or WASM plugin failed
  WEIR_ERR_FILTER_FAILED: { status: 500, source: 'plugin', message: 'a built-in filter failed' },
  WEIR_ERR_PLUGIN_TRAP: { status: 503, source: 'plugin', message: 'the plugin trapped' },
  WEIR_ERR_PLUGIN_FUEL: { status: 503, source: 'plugin', message: 'the plugin ran out of fuel (CPU budget)' },
  WEIR_ERR_PLUGIN_MEMORY: { status: 503, source: 'plugin', message: 'the plugin exceeded its memory limit' },
  WEIR_ERR_PLUGIN_TIMEOUT: { status: 503, source: 'plugin', message: 'the plugin exceeded its wall-clock deadline' },
  WEIR_ERR_PLUGIN_INVALID_MUTATION: { status: 503, source: 'plugin', message: 'the plugin returned an invalid mutation' },
  WEIR_ERR_PLUGIN_UNAVAILABLE: { status: 503, source: 'plugin', message: 'the plugin is backing off after repeated crashes' },
  WEIR_ERR_PLUGIN_LOAD: { status: 0, source: 'plugin', message: 'the plugin could not be loaded' },
  WEIR_ERR_PLUGIN_WORLD_MISMATCH: { status: 0, source: 'plugin', message: 'the component does not match the weir:proxy plugin world' },
  WEIR_ERR_PLUGIN_ABI_VERSION: { status: 0, source: 'plugin', message: 'the plugin was built for another weir:proxy ABI version; rebuild it with the current SDK' },
  WEIR_ERR_PLUGIN_CONFIG: { status: 0, source: 'plugin', message: 'the plugin rejected its configuration' },

  // config: the KDL file is wrong
  WEIR_ERR_CONFIG_SYNTAX: { status: 0, source: 'config', message: 'the file is not valid KDL' },
  WEIR_ERR_CONFIG_UNKNOWN_KEY: { status: 0, source: 'config', message: 'unknown configuration key' },
  WEIR_ERR_CONFIG_TYPE: { status: 0, source: 'config', message: 'a configuration value has the wrong type' },
  WEIR_ERR_CONFIG_VALUE: { status: 0, source: 'config', message: 'a configuration value is out of range or not allowed' },
  WEIR_ERR_CONFIG_MISSING: { status: 0, source: 'config', message: 'a required configuration key is missing' },
  WEIR_ERR_CONFIG_DUPLICATE: { status: 0, source: 'config', message: 'a name is defined twice' },
  WEIR_ERR_CONFIG_REFERENCE: { status: 0, source: 'config', message: 'a reference names something that is not defined' },
  WEIR_ERR_CONFIG_SCHEMA_VERSION: { status: 0, source: 'config', message: 'unsupported schema-version' },
  WEIR_ERR_CONFIG_FILE: { status: 0, source: 'config', message: 'a file named by the configuration cannot be read' },
  WEIR_ERR_CONFIG_INCLUDE: { status: 0, source: 'config', message: 'an include could not be resolved' },
  WEIR_ERR_CONFIG_UNSUPPORTED: { status: 0, source: 'config', message: 'this key or value names a feature Weir does not provide yet' },
  WEIR_ERR_CONFIG_CONSTRAINT: { status: 0, source: 'config', message: 'two configuration values contradict each other' },

  // internal
  WEIR_ERR_INTERNAL: { status: 500, source: 'internal', message: 'internal error' },
  WEIR_ERR_LISTEN: { status: 0, source: 'internal', message: 'a listener could not bind its address' },
  WEIR_ERR_SHUTTING_DOWN: { status: 503, source: 'internal', message: 'the proxy is shutting down' },
  WEIR_ERR_LOG_SINK: { status: 0, source: 'internal', message: 'a log destination could not be opened or written' },
  WEIR_ERR_DISCOVERY: { status: 0, source: 'internal', message: 'a discovery source failed (no answer, no records, an unreadable targets file); the upstream keeps its last good targets' },
  WEIR_ERR_RELOAD: { status: 0, source: 'internal', message: 'a reload failed; the previous configuration keeps serving' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Marks Weir errors across module copies and worker threads (undici does the same). */
const kWeirError = Symbol.for('weir.error');

export class WeirError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly source: ErrorSource;
  /** Extra structured detail for logs (never sent to clients). */
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WeirError';
    this.code = code;
    this.status = spec.status;
    this.source = spec.source;
    this.detail = options?.detail;
  }

  get [kWeirError](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kWeirError] === true;
  }
}

export function isWeirError(value: unknown): value is WeirError {
  return value instanceof WeirError;
}

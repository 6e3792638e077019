/**
 * The typed, immutable configuration snapshot that the rest of Weir reads.
 * Produced only by `loadConfig` (config/load.ts) after every check passed; defaults are
 * applied there, in one place (config/defaults.ts). Everything is deeply frozen.
 *
 * Durations are normalised to milliseconds and sizes to bytes, whatever unit the KDL key
 * uses (`timeout-secs` → `timeoutMs`).
 */

/** Where a value came from, for error messages: file:line:column. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** A KDL value after v1/v2 normalisation. */
export type ConfigScalar = string | number | boolean | null;

/**
 * A KDL node as structured data, kept for blocks whose meaning belongs to someone else
 * (a filter's settings, a plugin's `config {}` block handed to the plugin's `configure`).
 */
export interface ConfigNode {
  readonly name: string;
  readonly args: readonly ConfigScalar[];
  readonly props: Readonly<Record<string, ConfigScalar>>;
  readonly children: readonly ConfigNode[];
  readonly loc: SourceLocation;
  /** Location of each argument (same order as `args`), for precise diagnostics. */
  readonly argLocs?: readonly SourceLocation[];
  /** Location of each property's value. */
  readonly propLocs?: Readonly<Record<string, SourceLocation>>;
}

export interface SystemConfig {
  /** 0 = one proxy thread per core. */
  readonly workerThreads: number;
  readonly maxConnections: number;
  readonly gracefulShutdownTimeoutMs: number;
  /** Written by `weir run` with its process id, removed at exit. */
  readonly pidFile: string | undefined;
}

export interface SniCertConfig {
  readonly hostnames: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | undefined;
  readonly clientAuth: boolean;
  /** 'TLSv1.2' | 'TLSv1.3' */
  readonly minVersion: string;
  /** 'TLSv1.2' when `cipher-suites` names no TLS 1.3 suite; else 'TLSv1.3'. */
  readonly maxVersion: string;
  /** `cipher-suites` as OpenSSL names joined by `:` (Node's `ciphers`); undefined: Node's defaults. */
  readonly ciphers: string | undefined;
  readonly sni: readonly SniCertConfig[];
  readonly loc: SourceLocation;
}

export type ListenerProtocol = 'http' | 'h2c' | 'https';

export interface ListenerConfig {
  readonly name: string;
  /** As written, e.g. "0.0.0.0:8080" or "[::1]:8080". */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: ListenerProtocol;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Accept CONNECT (tunnelled to the upstream of the route matching its authority). */
  readonly allowConnect: boolean;
  readonly tls: TlsConfig | undefined;
  /** `max-concurrent-streams`: this listener's HTTP/2 stream limit (undefined: `limits http2`'s). */
  readonly maxConcurrentStreams: number | undefined;
  /** `keepalive-max-requests`: this listener's requests per connection (undefined: `limits`'). */
  readonly maxRequestsPerConnection: number | undefined;
  /** Edge rules: path normalisation, trusted proxies, request ids (host/src/edge/). */
  readonly edge: ListenerEdgeConfig;
  readonly loc: SourceLocation;
}

export type EscapedSlashesAction = 'reject' | 'keep' | 'decode-and-redirect' | 'decode';

/** A listener's edge rules (`path-normalization`, ...). */
export interface ListenerEdgeConfig {
  readonly pathNormalization: { readonly mergeSlashes: boolean; readonly escapedSlashes: EscapedSlashesAction };
  /** CIDRs whose forwarding headers and PROXY protocol headers are believed. */
  readonly trustedProxies: readonly string[];
  readonly proxyProtocol: 'off' | 'v1' | 'v2' | 'any';
  /** Keep a client's valid X-Request-ID (false: always generate one). */
  readonly trustIncomingRequestId: boolean;
  /** `default-route`: the route for this listener's requests that no route matches. */
  readonly defaultRoute?: string;
}

export interface HeaderMatch {
  readonly name: string; // lowercased
  /** Exact value; undefined = header present. */
  readonly value: string | undefined;
  readonly regex: string | undefined;
}

export interface QueryMatch {
  readonly name: string;
  readonly value: string | undefined;
}

/**
 * One `matches {}` block: kinds are ANDed, the values of one kind are ORed
 * (`method "GET" "POST"` matches either). Empty lists match anything.
 */
export interface RouteMatch {
  readonly hosts: readonly string[]; // lowercased; "*.example.com" wildcards allowed
  readonly paths: readonly string[];
  readonly pathPrefixes: readonly string[];
  readonly pathRegexes: readonly string[];
  readonly methods: readonly string[]; // uppercased
  readonly headers: readonly HeaderMatch[];
  readonly query: readonly QueryMatch[];
}

export interface RetryPolicy {
  /** Total attempts including the first; 1 = no retry. */
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Which failures are retried: 'connect-failure' | 'reset' | 'timeout' | '5xx' | '502' | '503' | '504'. */
  readonly retryOn: readonly string[];
  /** Retries may be at most this % of requests in flight to the upstream (Envoy's retry budget). */
  readonly budgetPercent: number;
  /** Retries always allowed below this many concurrent retries. */
  readonly minRetryConcurrency: number;
}

export interface RoutePolicies {
  readonly timeoutMs: number | undefined;
  readonly failureMode: 'open' | 'closed';
  readonly retry: RetryPolicy;
  readonly maxBodySize: number | undefined;
  readonly allowWebsocket: boolean;
  /** `buffer-requests`: every request body (within the body limit) is read whole before the upstream is called. */
  readonly bufferRequests?: boolean;
  /** `request-decompression`: request bodies are decoded within these caps (undefined: passed as sent). */
  readonly requestDecompression: { readonly maxBytes: number; readonly maxRatio: number } | undefined;
}

export type BuiltinHandler = 'health' | 'ready' | 'metrics' | 'status' | 'not-found' | 'cache-stats';

export interface RouteConfig {
  readonly name: string;
  readonly priority: number;
  /** `enabled #false`: the router skips this route. */
  readonly enabled: boolean;
  /** Empty = matches every request. Several blocks = any of them. */
  readonly matches: readonly RouteMatch[];
  readonly upstream: string | undefined;
  /** Filter names, in order. */
  readonly filters: readonly string[];
  readonly builtinHandler: BuiltinHandler | undefined;
  readonly policies: RoutePolicies;
  /** `service-type`: `html` for `web` and `static` routes, else `json`. */
  readonly errorFormat?: 'json' | 'html';
  /** The route's own `circuit-breaker` (over its upstream attempts), if written. */
  readonly circuitBreaker?: CircuitBreakerConfig;
  /** The route block as written, for the host built-ins that read their own blocks (cache, compression, static files). */
  readonly node?: ConfigNode;
  readonly loc: SourceLocation;
}

export interface TargetConfig {
  readonly address: string; // "host:port"
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly zone: string | undefined;
  /** `labels=` (`k=v,k2=v2`), for `load-balancing "subset"`. */
  readonly labels?: string;
}

export interface ConnectionPoolConfig {
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  /** Longest wait for a free connection of a full HTTP/1 pool (then 503 WEIR_ERR_QUEUE_TIMEOUT). */
  readonly queueTimeoutMs: number;
  readonly maxLifetimeMs: number;
  /** Requests in flight to the whole upstream (0 = no cap; over it 503 WEIR_ERR_UPSTREAM_MAX_REQUESTS). */
  readonly maxRequests: number;
  /** Requests of the whole upstream waiting for a connection (0 = no cap; over it 503 WEIR_ERR_UPSTREAM_MAX_PENDING). */
  readonly maxPendingRequests: number;
}

export interface UpstreamTimeouts {
  readonly connectMs: number;
  readonly requestMs: number;
  readonly readMs: number;
  /** Send timeout: longest time without progress writing the response to the client. */
  readonly writeMs: number;
}

export interface HealthCheckConfig {
  readonly type: 'http' | 'tcp' | 'grpc';
  readonly path: string;
  readonly method: string;
  /** Host header of `http` checks (undefined: the target address). */
  readonly host: string | undefined;
  /** `http` checks pass only when the body matches (regex source). */
  readonly bodyMatch: string | undefined;
  /** Random extra wait, 0 to this, added to each interval. */
  readonly jitterMs: number;
  /** The service a `grpc` check asks about ('' = the whole server). */
  readonly service: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly expectedStatus: readonly number[];
}

export interface CircuitBreakerConfig {
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly timeoutMs: number;
  readonly halfOpenMaxRequests: number;
}

export interface OutlierDetectionConfig {
  /** 0 = off. */
  readonly consecutive5xx: number;
  /** 0 = off. */
  readonly consecutiveGatewayErrors: number;
  readonly successRate: { readonly minHosts: number; readonly minRequests: number; readonly stdevFactor: number } | undefined;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly panicThreshold: number;
}

export interface UpstreamTlsConfig {
  readonly sni: string | undefined;
  readonly caFile: string | undefined;
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
  readonly verify: boolean;
}

export interface UpstreamConfig {
  readonly name: string;
  readonly targets: readonly TargetConfig[];
  /** 'round_robin' | 'p2c' | 'ip_hash' | 'consistent_hash' | 'maglev' (`weighted` is loaded as 'round_robin'; other names are refused). */
  readonly loadBalancing: string;
  /** `hash-key` of consistent_hash and maglev: `header:X`, `cookie:X`, `query:X`, `path` or `client-ip`. */
  readonly hashKey: string;
  /** `subset-header` of the subset algorithm: the request header naming its subset. */
  readonly subsetHeader: string;
  /** 'http1' | 'h2' */
  readonly protocol: 'http1' | 'h2';
  readonly connectionPool: ConnectionPoolConfig;
  readonly timeouts: UpstreamTimeouts;
  readonly healthCheck: HealthCheckConfig | undefined;
  /** `circuit-breaker`; undefined: the upstream fails fast only while every target is ejected. */
  readonly circuitBreaker: CircuitBreakerConfig | undefined;
  /** `outlier-detection`; undefined: a target is ejected after 5 connect failures in a row. */
  readonly outlierDetection: OutlierDetectionConfig | undefined;
  /** A recovered target's weight ramps up over this long (0 = at once). */
  readonly slowStartMs: number;
  readonly tls: UpstreamTlsConfig | undefined;
  /** `discovery`: where the targets come from (then `targets` are the last set it found). */
  readonly discovery?: DiscoveryConfig;
  readonly loc: SourceLocation;
}

/** `upstream { discovery "dns" | "dns-srv" | "consul" | "kubernetes" | "file" }` (upstream/discovery.ts). */
export type DiscoveryConfig =
  | { readonly kind: 'dns'; readonly hostname: string; readonly port: number; readonly refreshMs: number; readonly nameservers: readonly string[] }
  | { readonly kind: 'dns-srv'; readonly service: string; readonly refreshMs: number; readonly nameservers: readonly string[] }
  | { readonly kind: 'consul'; readonly address: string; readonly service: string; readonly datacenter: string | undefined; readonly tag: string | undefined; readonly onlyPassing: boolean; readonly refreshMs: number }
  | { readonly kind: 'kubernetes'; readonly service: string; readonly namespace: string | undefined; readonly portName: string | undefined; readonly kubeconfig: string | undefined; readonly refreshMs: number }
  | { readonly kind: 'file'; readonly path: string };

export interface FilterConfig {
  readonly name: string;
  /** 'url-rewrite' | 'headers' | 'wasm' | 'rate-limit' | 'geo' | … */
  readonly type: string;
  readonly failureMode: 'open' | 'closed';
  /** True when the block wrote no `failure-mode`: each route's `policies failure-mode` applies. */
  readonly failureModeFromRoute?: boolean;
  /** For type "wasm": the plugin name in `plugins {}`. */
  readonly plugin: string | undefined;
  /** The filter's whole block (validated against its type's schema), for its factory to read. */
  readonly settings: ConfigNode;
  readonly loc: SourceLocation;
}

export interface PluginConfig {
  readonly name: string;
  /** Absolute path of the .wasm component. */
  readonly path: string;
  readonly isolation: 'inline' | 'worker';
  readonly fuel: number;
  readonly memoryLimitBytes: number;
  readonly timeoutMs: number;
  readonly poolSize: number;
  /** Period of the plugin's on-tick timer in ms; undefined: no timer. */
  readonly tickMs?: number;
  /** The `config {}` block handed to the plugin's `configure`. */
  readonly config: readonly ConfigNode[];
  /** MaxMind database answering this plugin's geo-country calls (default: the bundled one). */
  readonly geoDatabase?: string;
  readonly loc: SourceLocation;
  /** Where the `config {}` block is written, for diagnostics. */
  readonly configLoc?: SourceLocation;
}

export interface Http2Limits {
  readonly maxConcurrentStreams: number;
  readonly initialWindowSize: number;
  /** Receive window of the whole connection (all streams together), bytes. */
  readonly connectionWindowSize: number;
  readonly maxHeaderListSize: number;
  readonly maxSessionMemoryMb: number;
}

export interface LimitsConfig {
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly maxBodyBytes: number;
  readonly maxRequestLineBytes: number;
  readonly headerTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
  readonly maxConnections: number;
  /** An open WebSocket with no traffic either way for this long is closed. */
  readonly websocketIdleTimeoutMs: number;
  /** Largest WebSocket message (all fragments), either direction. */
  readonly websocketMaxMessageBytes: number;
  /** Upstream requests one client address may have in flight or waiting; 0 = no cap. */
  readonly maxUpstreamRequestsPerClient: number;
  /** `max-in-flight-requests`: requests a proxy thread handles at once; more get 503 WEIR_ERR_OVERLOADED. 0 = no cap. */
  readonly maxInFlightRequests: number;
  /** `max-connections-per-client`: connections one peer address may hold on a proxy thread. 0 = no cap. */
  readonly maxConnectionsPerClient: number;
  /** Response bytes held in memory for a client that reads slower than the upstream sends. */
  readonly responseBufferBytes: number;
  /** Request bodies up to this size are read whole before an upstream connection is taken. */
  readonly requestBodyBufferBytes: number;
  /** Slowest accepted request body, bytes per second over 5-second windows; 0 = off. */
  readonly minRequestBodyRate: number;
  readonly http2: Http2Limits;
}

export interface ObservabilityConfig {
  readonly metrics: {
    readonly enabled: boolean;
    /** Separate listener for metrics; undefined = served on the proxy listeners' builtin route. */
    readonly address: string | undefined;
    readonly path: string;
  };
  readonly logging: {
    readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    readonly format: 'json' | 'pretty';
    /** true = stdout, false = off, string = file path. */
    readonly accessLog: boolean | string;
    /** The audit log (observability/audit.ts): true = stdout, false = off, string = file path. */
    readonly auditLog: boolean | string;
  };
  /** OpenTelemetry tracing; undefined without a `tracing` block (or with `enabled #false`). */
  readonly tracing: TracingConfig | undefined;
}

export interface TracingConfig {
  /** OTLP/HTTP URL spans are posted to. */
  readonly endpoint: string;
  readonly serviceName: string;
  /** Share of new traces sampled (0..1); a sampled incoming parent is always continued. */
  readonly sampleRatio: number;
  /** Plugin hooks that take at least this long get their own span. */
  readonly hookSpanThresholdMs: number;
  /** Longest wait before queued spans are sent. */
  readonly exportDelayMs: number;
}

export interface WeirConfig {
  readonly schemaVersion: string;
  readonly system: SystemConfig;
  readonly listeners: readonly ListenerConfig[];
  /** Sorted by priority (highest first), then by order of appearance. */
  readonly routes: readonly RouteConfig[];
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly filters: ReadonlyMap<string, FilterConfig>;
  readonly plugins: ReadonlyMap<string, PluginConfig>;
  readonly limits: LimitsConfig;
  readonly observability: ObservabilityConfig;
  /** The top-level `cache` block as written; host/src/cache reads it (cacheSettings). */
  readonly cache: ConfigNode | undefined;
  /** The top-level `admin-api` block as written; host/src/admin reads it (adminSettings). */
  readonly adminApi: ConfigNode | undefined;
  /** Every file read to build this snapshot (watched for hot reload). */
  readonly files: readonly string[];
}

/** One problem found while loading a config. */
export interface ConfigDiagnostic {
  readonly code: string; // a WEIR_ERR_CONFIG_* code
  readonly message: string;
  readonly loc: SourceLocation | undefined;
  /** e.g. "did you mean `path-prefix`?" */
  readonly hint: string | undefined;
  /** Absent = 'error'. Warnings never make a load fail. */
  readonly severity?: 'error' | 'warning';
}

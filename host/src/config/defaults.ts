/**
 * Every default of the configuration, in one place. The loader applies them and the schema
 * shows them in docs/configuration.md. Values are in the snapshot's units (ms, bytes).
 * Chosen close to Envoy's and nginx's defaults so operators meet no surprises.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULTS = {
  schemaVersion: '1.0',
  system: {
    workerThreads: 1,
    maxConnections: 10_000,
    gracefulShutdownTimeoutMs: 30_000,
  },
  listener: {
    name: 'default',
    address: '127.0.0.1:8080',
    protocol: 'http',
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 60_000,
    allowConnect: false,
  },
  pathNormalization: {
    mergeSlashes: true,
    escapedSlashes: 'reject',
  },
  edge: {
    proxyProtocol: 'off',
    trustIncomingRequestId: true,
  },
  tls: {
    minVersion: 'TLSv1.2',
    clientAuth: false,
  },
  route: {
    priority: 0,
  },
  policies: {
    failureMode: 'closed',
    allowWebsocket: false,
  },
  retry: {
    // 1 = no retries unless a `retry {}` block asks for them.
    maxAttempts: 1,
    // With a `retry {}` block that names no attempts, retry once.
    configuredMaxAttempts: 2,
    backoffMs: 25,
    maxBackoffMs: 250,
    retryOn: ['connect-failure'],
    budgetPercent: 20,
    minRetryConcurrency: 3,
  },
  target: {
    weight: 1,
  },
  upstream: {
    loadBalancing: 'round_robin',
    protocol: 'http1',
  },
  connectionPool: {
    maxConnections: 128,
    idleTimeoutMs: 60_000,
    // Wait for a free connection of a full pool at most this long (then 503).
    queueTimeoutMs: 10_000,
    maxLifetimeMs: 3_600_000,
    // 0 = no cap (Envoy's circuit-breaker limits, off unless written).
    maxRequests: 0,
    maxPendingRequests: 0,
  },
  timeouts: {
    connectMs: 5_000,
    requestMs: 60_000,
    readMs: 30_000,
    // Like nginx's send_timeout.
    writeMs: 60_000,
  },
  healthCheck: {
    type: 'http',
    path: '/health',
    method: 'GET',
    service: '',
    intervalMs: 10_000,
    timeoutMs: 2_000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    expectedStatus: [200],
  },
  // Sentinel's breaker defaults.
  circuitBreaker: {
    failureThreshold: 5,
    successThreshold: 2,
    timeoutMs: 30_000,
    halfOpenMaxRequests: 1,
  },
  // Envoy's outlier detection defaults, except max-ejection-percent (Envoy: 10, which never
  // ejects from an upstream of fewer than 10 targets) and gateway errors (on, like 5xx).
  outlier: {
    consecutive5xx: 5,
    consecutiveGatewayErrors: 5,
    successRate: { minHosts: 5, minRequests: 100, stdevFactor: 1.9 },
    intervalMs: 10_000,
    baseEjectionMs: 30_000,
    maxEjectionPercent: 50,
    panicThreshold: 50,
  },
  upstreamTls: {
    verify: true,
  },
  filter: {
    failureMode: 'closed',
  },
  rateLimit: {
    backend: 'local',
    key: 'client-ip',
    onLimit: 'reject',
    statusCode: 429,
    delayMaxMs: 1_000,
    redisPrefix: 'weir:ratelimit:',
    redisPoolSize: 8,
    redisTimeoutMs: 50,
    memcachedPrefix: 'weir:ratelimit:',
    memcachedPoolSize: 8,
    memcachedTimeoutMs: 50,
    memcachedTtlSecs: 2,
  },
  geo: {
    databaseType: 'mmdb',
    action: 'block',
    onFailure: 'open',
    statusCode: 403,
    blockMessage: 'Access denied',
  },
  waf: {
    mode: 'block',
    paranoiaLevel: 1,
    anomalyThreshold: 5,
    // ≈1 µs of CPU per byte of JSON on a loaded 2-core machine: 128 KiB ≈ 0.1 s per request at most.
    maxBodyInspectionBytes: 128 * 1024,
    maxDecompressionRatio: 100,
    contentTypes: ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'],
  },
  plugin: {
    isolation: 'inline',
    // ≈ 30 ms of CPU for a typical guest.
    fuel: 100_000_000,
    memoryLimitBytes: 64 * MiB,
    timeoutMs: 100,
    poolSize: 4,
  },
  limits: {
    maxHeaderBytes: 16 * KiB,
    maxHeaderCount: 100,
    maxBodyBytes: 10 * MiB,
    maxRequestLineBytes: 8 * KiB,
    headerTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 60_000,
    // 0 = unlimited.
    maxRequestsPerConnection: 0,
    maxConnections: 10_000,
    websocketIdleTimeoutMs: 300_000,
    websocketMaxMessageBytes: 1 * MiB,
    // Slow-client containment (docs/architecture.md, "Slow clients"). 0 = no cap.
    // Below the default pool (128 per target), so one address cannot take every connection,
    // with room for one client at 100 concurrent requests (h2load -c10 -m10, wrk -c100).
    maxUpstreamRequestsPerClient: 100,
    maxInFlightRequests: 0,
    maxConnectionsPerClient: 0,
    responseBufferBytes: 128 * KiB,
    requestBodyBufferBytes: 64 * KiB,
    // Bytes per second over 5-second windows; 0 = off.
    minRequestBodyRate: 1024,
    http2: {
      maxConcurrentStreams: 100,
      initialWindowSize: 65_535,
      // Room for several streams in flight at once (Envoy uses 1 MiB too).
      connectionWindowSize: 1 * MiB,
      maxHeaderListSize: 16 * KiB,
      maxSessionMemoryMb: 10,
    },
  },
  observability: {
    metrics: { enabled: true, path: '/metrics' },
    logging: { level: 'info', format: 'json', accessLog: true },
    // The OpenTelemetry SDK's own defaults: every trace, a batch every 5 s.
    tracing: { serviceName: 'weir', sampleRatio: 1, hookSpanThresholdMs: 1, exportDelayMs: 5000 },
  },
} as const;

/**
 * The configuration used when none is given: one plain-HTTP listener with the builtin
 * health, readiness and metrics routes. Loaded through `loadConfigText` like any file.
 */
export const DEFAULT_CONFIG_KDL = `schema-version "1.0"

listeners {
    listener "default" {
        address "${DEFAULTS.listener.address}"
        protocol "http"
    }
}

routes {
    route "health" {
        priority 1000
        matches { path "/health"; }
        builtin-handler "health"
    }
    route "ready" {
        priority 1000
        matches { path "/ready"; }
        builtin-handler "ready"
    }
    route "metrics" {
        priority 1000
        matches { path "/metrics"; }
        builtin-handler "metrics"
    }
}
`;

/**
 * "No key without an effect": every key path of the schema (allKeyPaths in
 * host/src/config/schema.ts) → the tests that show the running proxy acting on it, or, for a
 * refused key, refusing it. test/config/key-coverage.test.ts fails for a schema key without a
 * row, a row naming a key that no longer exists, and a row whose test file does not exist or
 * does not contain the named test. Adding a key means adding its row and its test.
 */

/** A test file (from the repository root) and a fragment of a test's name, as written in that file. */
export interface Exercise {
  readonly file: string;
  readonly test: string;
}

const t = (file: string, test: string): Exercise => ({ file, test });

const INTEGRITY = 'test/config/integrity.test.ts';
const EFFECTS = 'test/config/key-effects.test.ts';
const LIMITS = 'test/edge/limits.test.ts';
const TLS = 'test/edge/tls.test.ts';
const UP_TLS = 'test/edge/upstream-tls.test.ts';
const ROUTING = 'test/proxy/routing.test.ts';
const SEMANTICS = 'test/proxy/semantics.test.ts';
const FILTERS = 'test/proxy/filters.test.ts';
const RUNTIME = 'test/plugins/runtime.test.ts';
const FIRST_PARTY = 'test/plugins/first-party.test.ts';
const SEED_BACKENDS = 'test/store/seed-backends.test.ts';
const CACHE = 'test/cache/cache.test.ts';
const PATH = 'test/edge/path.test.ts';
const TRUST = 'test/edge/trust.test.ts';
const WS = 'test/edge/websocket.test.ts';
const SLOW = 'test/edge/slow-clients.test.ts';
const TRACING = 'test/observability/tracing.test.ts';
const LB_HASHING = 'test/plugins/lb-hashing.test.ts';
const LB_LOCALITY = 'test/plugins/lb-locality.test.ts';
const LB_SUBSET = 'test/plugins/lb-subset.test.ts';

const SYSTEM_CAP = t(INTEGRITY, 'caps connections over all listeners');
const ROUTING_MATRIX = t(ROUTING, 'routing matrix: priorities, hosts, wildcards, methods, regex, headers, query');
const HEADER_FILTERS = t(FILTERS, 'url-rewrite (prefix and regex) and headers filters');
const RETRIES = t(SEMANTICS, 'retries idempotent requests on connect failure to another target');
const HEALTH_FILE = 'test/proxy/health.test.ts';
const UP_BREAKER = t(HEALTH_FILE, 'upstream circuit-breaker: failure-threshold opens it, timeout-seconds later half-open-max-requests probes go through, success-threshold closes it');
const ROUTE_BREAKER = t(HEALTH_FILE, 'route circuit-breaker: the breaker of one route opens while another route to the same upstream keeps going, and closes after its probes succeed');
const POOL_CAPS = t(HEALTH_FILE, 'connection-pool max-requests and max-pending-requests: 503 with their codes at once');
const OD_5XX = t(HEALTH_FILE, 'outlier-detection consecutive-5xx: ejected, longer each time, never past max-ejection-percent');
const OD_GATEWAY = t(HEALTH_FILE, 'outlier-detection consecutive-gateway-errors: 502, 503 and 504 in a row eject, 500s do not');
const OD_NO_RESPONSE = t(HEALTH_FILE, 'outlier-detection: an attempt without a response (connect failure) counts as a gateway error');
const OD_SUCCESS = t(HEALTH_FILE, 'outlier-detection success-rate: a target far below the success rate of the fleet is ejected');
const OD_PANIC = t(HEALTH_FILE, 'outlier-detection panic-threshold: with too few targets available requests go to every target');
const HC_MORE = t(HEALTH_FILE, 'health-check method, host and body-match decide health; interval-jitter-secs spreads the checks');
const OD_PANIC_PARTIAL = t(HEALTH_FILE, 'outlier-detection panic-threshold: below the threshold (not only with every target out) ejected targets take requests again');
const INERT = t(HEALTH_FILE, 'health keys without an effect are refused');
const SLOW_START = t(HEALTH_FILE, 'slow-start-secs: a target whose health check passes again gets a growing share of its weight');
const HEALTH = t(EFFECTS, 'health-check: type http, path, interval-secs, timeout-secs, thresholds and expected-status');
const TIMEOUTS = t(EFFECTS, 'upstream timeouts: connect (TLS handshake never completes), request (headers too late), read (body stalls)');
const SNI = t(TLS, 'SNI picks the certificate: exact name, wildcard (one label), default without SNI');
const MTLS = t(TLS, 'mTLS: no client certificate, no connection');
const RATE_LIMIT = t(FIRST_PARTY, 'rate-limit: token bucket per client, 429 with Retry-After and RateLimit-* headers');
const GEO = t(FIRST_PARTY, 'geo: block and allow by country');
const AUTH = 'test/plugins/auth.test.ts';
const API_KEY = t(AUTH, 'api-key: keys-file (plain and salted SHA-256), key from env, strip');
const CORS = 'test/plugins/cors.test.ts';
const CORS_PREFLIGHT = t(CORS, 'cors: a preflight from an allowed origin is answered 204 by the proxy');
const CORS_ACTUAL = t(CORS, 'cors: actual requests from allowed origins get the origin echoed');
const IP_FILTER = 'test/plugins/ip-filter.test.ts';
const IP_SOCKET = t(IP_FILTER, 'ip-filter: allow and deny on the socket address (IPv4)');
const IP_V6 = t(IP_FILTER, 'ip-filter: IPv6 allow and deny through a real listener on ::1');
const IP_XFF = t(IP_FILTER, 'ip-filter: behind trusted-proxies the X-Forwarded-For client is filtered');
const BASIC = t(AUTH, 'basic-auth: htpasswd with bcrypt (cost 10) and SHA-crypt users');
const JWT = t(AUTH, 'jwt: every algorithm through the proxy');
const JWT_FILE = t(AUTH, 'jwt: jwks-file and weir validate');
const REDIS = t(SEED_BACKENDS, 'two instances share one token bucket in redis');
const MEMCACHED = t(SEED_BACKENDS, 'two instances share fixed-window counters in memcached');
const H2_SETTINGS = t(LIMITS, 'HTTP/2 settings announced: max concurrent streams, window, header list size');
const DISC_K8S = t('test/proxy/discovery.test.ts', 'discovery kubernetes: EndpointSlices by list and watch');
const DISC_K8S_IN = t('test/proxy/discovery.test.ts', 'discovery kubernetes: in-cluster service account');
const DISC_CONSUL = t('test/proxy/discovery.test.ts', 'discovery consul: blocking queries return on change');
const DISCOVERY = 'test/proxy/discovery.test.ts';
const DISC_DNS = t(DISCOVERY, 'discovery dns: every A record is a target');
const DISC_SRV = t(DISCOVERY, 'discovery dns-srv: the lowest priority serves');
const DISC_FILE = t(DISCOVERY, 'discovery file: a watched JSON then KDL file');
const DISC_CONFIG = t(DISCOVERY, 'discovery config: each kind');
const WAF = 'test/waf/waf.test.ts';
const WAF_BLOCK = t(WAF, 'waf block mode: SQLi in a JSON body, XSS in a query');
const WAF_DETECT = t(WAF, 'waf detect mode passes matching requests');
const WAF_EXCLUDE = t(WAF, 'waf exclusions: by rule and parameter on one route');
const WAF_TOP = t(WAF, 'waf top-level block: every route gets it');
const WAF_LEVELS = t(WAF, 'waf paranoia-level and anomaly-threshold gate and score rules');
const WAF_BODY = t(WAF, 'waf body inspection: gzip bodies are decompressed and inspected');
const WAF_SEED = t(WAF, 'the Sentinel seed waf block works as written');
const ADMIN = 'test/admin/api.test.ts';
const ADMIN_LISTENER = 'test/admin/listener.test.ts';
const ADMIN_AUTH = t(ADMIN, 'admin API auth: 401 without or with a wrong token');
const ADMIN_CONSTRAINTS = t(ADMIN_LISTENER, 'admin-api constraints: a non-loopback address needs tls or allow-remote');
const ADMIN_REMOTE = t(ADMIN_LISTENER, 'admin-api allow-remote serves a non-loopback address; enabled #false serves nothing');
const ADMIN_TLS = t(ADMIN_LISTENER, 'admin-api tls serves HTTPS with a bearer token; auth type "mtls" takes a client certificate');
const ADMIN_PERSIST = t(ADMIN, 'persist #true writes changes back keeping comments');
const CACHE_FRESH = t(CACHE, 'a fresh response is stored on a miss and served from memory after');
const CACHE_SENTINEL = t(CACHE, "Sentinel's route cache keys: exclude-extensions, exclude-paths, cacheable-methods and stale-while-revalidate-secs");
const CACHE_SHAPE = t(CACHE, 'cache-private stores private responses; default-ttl-secs gives freshness; cacheable-status-codes and ignore-query-params');
const CACHE_DISK = t(CACHE, 'disk backend: one file per entry spread over disk-shards');
const COMPRESSION = 'test/compression/compression.test.ts';
const COMPRESS_NEGOTIATE = t(COMPRESSION, 'gzip, br and zstd are negotiated from Accept-Encoding q-values');
const COMPRESS_ROUTE = t(COMPRESSION, 'encodings order and content-types and min-size are per route');
const COMPRESS_LEVELS = t(COMPRESSION, 'gzip-level, br-level and zstd-level set the effort');
const DECODE_ROUTE = t('test/compression/inflate-request.test.ts', 'policies { request-decompression }: the upstream gets the decoded body');
const STATIC = 'test/static/static.test.ts';
const STATIC_BASICS = t(STATIC, 'files with MIME types, index, ETag and Last-Modified');
const STATIC_EXTRAS = t(STATIC, 'precompressed serves the .br / .gz sibling the client accepts');
const CACHE_PURGE = t(CACHE, 'PURGE: loopback by default; with purge { allow; token }');
const STORE_FOR = t('test/store/store-for.test.ts', 'storeFor: local → the runtime store; redis/memcached → one fallback-wrapped store per connection settings');
const SHORTHANDS = t(EFFECTS, 'top-level shorthands listener, route, upstream, filter and plugin');
const PLUGIN_BASICS = t(RUNTIME, 'header mutations on request and response, properties, version');

const SENTINEL = 'test/config/sentinel.test.ts';
const SENT_DECODE = t(SENTINEL, 'sentinel limits max-decompressed-size-bytes and max-decompression-ratio cap every decoded request body');
const SENT_REFUSED = t(SENTINEL, 'sentinel keys without a Weir feature are refused with WEIR_ERR_CONFIG_UNSUPPORTED');
const SENT_RETRY = t(SENTINEL, 'sentinel retry-policy with retryable-status-codes, backoff-base-ms and backoff-max-ms retries a 503');
const SENT_WS = t(SENTINEL, 'sentinel route websocket #true allows upgrades like policies websocket');
const SENT_POOL = t(SENTINEL, 'sentinel connection-pool idle-timeout-secs and max-lifetime-secs close idle upstream connections');
const SENT_TIMEOUTS = t(SENTINEL, 'sentinel upstream timeouts connect-secs, request-secs, read-secs, write-secs');
const SENT_UP_TLS = t(SENTINEL, 'sentinel upstream tls insecure-skip-verify and ca-cert');
const SENT_RL = t(SENTINEL, 'sentinel rate-limit redis-fallback-local counts locally while Redis is down');
const SENT_HEADERS = t(SENTINEL, 'sentinel policies request-headers and response-headers act as a headers filter');
const SENT_REWRITE = t(SENTINEL, 'sentinel rewrite-path (route or policies) acts as a url-rewrite filter');
const SENT_RL_ROUTE = t(SENTINEL, 'sentinel policies rate-limit acts as a rate-limit filter with the same keys');
const SENT_LISTENER = t(SENTINEL, 'sentinel listener max-concurrent-streams and keepalive-max-requests act as the limits for that listener');
const SENT_PID = t(SENTINEL, 'sentinel system pid-file is written by weir run and removed when it exits');
const SENT_LIMITS = t(SENTINEL, 'sentinel limits max-header-size-bytes, max-header-size, max-body-size-bytes and max-body-size');

const ROWS: Readonly<Record<string, readonly Exercise[]>> = {
  'schema-version': [t('test/config/validate.test.ts', 'schema-version must be "1.0" or "1"')],
  include: [t('test/config/load.test.ts', 'include is relative to the including file')],
  system: [SYSTEM_CAP],
  'system.worker-threads': [t('test/cluster/cli.test.ts', 'weir run: two threads answer')],
  'system.max-connections': [SYSTEM_CAP, t(INTEGRITY, '`limits max-connections` caps each listener; `system max-connections` their sum')],
  'system.graceful-shutdown-timeout-secs': [t(EFFECTS, 'graceful-shutdown-timeout-secs bounds how long a shutdown waits')],
  server: [SYSTEM_CAP, t(INTEGRITY, '`server {}` and `system {}` together are refused')],

  listeners: [SYSTEM_CAP],
  'listeners.listener': [SYSTEM_CAP],
  'listeners.listener.address': [SYSTEM_CAP],
  'listeners.listener.protocol': [t(SEMANTICS, 'HTTP/2 cleartext (prior knowledge) downstream'), t(TLS, 'ALPN: h2 and http/1.1 on the same listener')],
  'listeners.listener.request-timeout-secs': [t(EFFECTS, 'listener request-timeout-secs: a body not complete in time')],
  'listeners.listener.keepalive-timeout-secs': [t(EFFECTS, 'listener keepalive-timeout-secs: an idle kept-alive connection')],
  'listeners.listener.allow-connect': [t('test/edge/framing.test.ts', 'allow-connect: CONNECT tunnels to the upstream'), t('test/edge/framing.test.ts', 'CONNECT is refused (405) on a listener without allow-connect')],
  'listeners.listener.path-normalization': [t(PATH, 'no spelling of /admin reaches the origin')],
  'listeners.listener.path-normalization.merge-slashes': [t(PATH, 'merge-slashes #false: repeated slashes are forwarded as sent')],
  'listeners.listener.path-normalization.escaped-slashes': [t(PATH, 'escaped-slashes ')],
  'listeners.listener.trusted-proxies': [t(TRUST, 'trusted peer: the right-most untrusted X-Forwarded-For hop is the client'), t(TRUST, 'untrusted peer: X-Forwarded-For and Forwarded are ignored')],
  'listeners.listener.proxy-protocol': [t(TRUST, 'PROXY v1 from a trusted peer'), t(TRUST, 'PROXY v2 (binary, IPv4 and IPv6, LOCAL)')],
  'listeners.listener.request-id': [t(TRUST, 'request-id { trust-incoming #false }')],
  'listeners.listener.request-id.trust-incoming': [t(TRUST, 'request-id { trust-incoming #false }')],
  'listeners.listener.tls': [SNI],
  'listeners.listener.tls.cert-file': [SNI],
  'listeners.listener.tls.key-file': [SNI],
  'listeners.listener.tls.ca-file': [MTLS],
  'listeners.listener.tls.client-auth': [MTLS],
  'listeners.listener.tls.min-version': [t(TLS, 'min-version TLSv1.3 refuses a TLS 1.2 client')],
  'listeners.listener.tls.sni': [SNI],
  'listeners.listener.tls.sni.hostnames': [SNI],
  'listeners.listener.tls.sni.cert-file': [SNI],
  'listeners.listener.tls.sni.key-file': [SNI],
  listener: [SHORTHANDS],

  routes: [ROUTING_MATRIX],
  'routes.route': [ROUTING_MATRIX],
  'routes.route.priority': [ROUTING_MATRIX],
  'routes.route.enabled': [ADMIN_PERSIST],
  'routes.route.matches': [ROUTING_MATRIX],
  'routes.route.matches.host': [ROUTING_MATRIX],
  'routes.route.matches.path': [ROUTING_MATRIX],
  'routes.route.matches.path-prefix': [ROUTING_MATRIX],
  'routes.route.matches.path-regex': [ROUTING_MATRIX],
  'routes.route.matches.method': [ROUTING_MATRIX],
  'routes.route.matches.header': [ROUTING_MATRIX],
  'routes.route.matches.header.name=': [t(EFFECTS, 'match props: header name=/value=/regex=')],
  'routes.route.matches.header.value=': [t(EFFECTS, 'match props: header name=/value=/regex=')],
  'routes.route.matches.header.regex=': [t(EFFECTS, 'match props: header name=/value=/regex=')],
  'routes.route.matches.query': [ROUTING_MATRIX],
  'routes.route.matches.query.name=': [t(EFFECTS, 'and query name=/value=')],
  'routes.route.matches.query.value=': [t(EFFECTS, 'and query name=/value=')],
  'routes.route.upstream': [ROUTING_MATRIX],
  'routes.route.filters': [HEADER_FILTERS],
  'routes.route.builtin-handler': [t(ROUTING, 'builtin health handler answers without an upstream'), t(INTEGRITY, 'metrics enabled #false: a metrics route or a metrics address is refused; enabled, both serve')],
  'routes.route.policies': [t(SEMANTICS, 'route timeout → 504 WEIR_ERR_UPSTREAM_TIMEOUT')],
  'routes.route.policies.timeout-secs': [t(SEMANTICS, 'route timeout → 504 WEIR_ERR_UPSTREAM_TIMEOUT')],
  'routes.route.policies.failure-mode': [t(INTEGRITY, 'policies failure-mode is the default of the route')],
  'routes.route.policies.max-body-size': [t(SEMANTICS, 'body over max-body-size → 413 before anything reaches the origin')],
  'routes.route.policies.websocket': [t(WS, 'messages are relayed both ways')],
  'routes.route.policies.retry': [RETRIES],
  'routes.route.policies.retry.max-attempts': [RETRIES, t(SEMANTICS, 'retry on 503 from the upstream when configured')],
  'routes.route.policies.retry.backoff-ms': [RETRIES, t(EFFECTS, 'retry max-backoff-ms caps the exponential backoff')],
  'routes.route.policies.retry.max-backoff-ms': [t(EFFECTS, 'retry max-backoff-ms caps the exponential backoff')],
  'routes.route.policies.retry.retry-on': [RETRIES, t(SEMANTICS, 'retry on 503 from the upstream when configured')],
  'routes.route.policies.retry.budget-percent': [t(EFFECTS, 'retry budget-percent and min-retry-concurrency')],
  'routes.route.policies.retry.min-retry-concurrency': [t(EFFECTS, 'retry budget-percent and min-retry-concurrency')],
  'routes.route.policies.cache': [CACHE_FRESH],
  'routes.route.policies.cache.enabled': [t(CACHE, 'a route with cache { enabled #false } does not cache')],
  'routes.route.policies.cache.default-ttl-secs': [CACHE_SHAPE],
  'routes.route.policies.cache.max-size-bytes': [t(CACHE, 'larger-than max-size-bytes responses are not stored')],
  'routes.route.policies.cache.cache-private': [CACHE_SHAPE],
  'routes.route.policies.cache.stale-if-error-secs': [t(CACHE, 'stale-if-error: a stale entry answers (STALE)')],
  'routes.route.policies.cache.cacheable-status-codes': [CACHE_SHAPE],
  'routes.route.policies.cache.vary-headers': [t(CACHE, 'Vary: each variant is its own entry; vary-headers adds headers')],
  'routes.route.policies.cache.ignore-query-params': [CACHE_SHAPE],
  'routes.route.policies.cache.stale-while-revalidate-secs': [CACHE_SENTINEL],
  'routes.route.policies.cache.cacheable-methods': [CACHE_SENTINEL],
  'routes.route.policies.cache.exclude-extensions': [CACHE_SENTINEL],
  'routes.route.policies.cache.exclude-paths': [CACHE_SENTINEL],
  'routes.route.static-files': [STATIC_BASICS, t(STATIC, 'traversal is impossible'), t(STATIC, 'static-files with an upstream or a builtin-handler is refused')],
  'routes.route.static-files.root': [STATIC_BASICS],
  'routes.route.static-files.index': [STATIC_EXTRAS],
  'routes.route.static-files.fallback': [STATIC_EXTRAS],
  'routes.route.static-files.precompressed': [STATIC_EXTRAS],
  'routes.route.static-files.cache-control': [STATIC_BASICS],
  'routes.route.policies.compression': [COMPRESS_NEGOTIATE],
  'routes.route.policies.compression.enabled': [COMPRESS_LEVELS],
  'routes.route.policies.compression.encodings': [COMPRESS_ROUTE],
  'routes.route.policies.compression.content-types': [COMPRESS_ROUTE],
  'routes.route.policies.compression.min-size': [COMPRESS_ROUTE, t(COMPRESSION, 'never compressed: HEAD, 204, small')],
  'routes.route.policies.compression.gzip-level': [COMPRESS_LEVELS],
  'routes.route.policies.compression.br-level': [COMPRESS_LEVELS],
  'routes.route.policies.compression.zstd-level': [COMPRESS_LEVELS],
  'routes.route.policies.request-decompression': [DECODE_ROUTE],
  'routes.route.policies.request-decompression.max-bytes': [DECODE_ROUTE],
  'routes.route.policies.request-decompression.max-ratio': [DECODE_ROUTE],
  route: [SHORTHANDS],

  upstreams: [ROUTING_MATRIX],
  'upstreams.upstream': [ROUTING_MATRIX],
  'upstreams.upstream.target': [ROUTING_MATRIX],
  'upstreams.upstream.target.weight=': [t(FIRST_PARTY, 'load balancing: round_robin keeps the weights exactly')],
  'upstreams.upstream.target.labels=': [t(LB_SUBSET, 'subset: the header picks the targets holding every label'), t(LB_SUBSET, 'config: labels= and subset-header only with subset')],
  'upstreams.upstream.subset-header': [t(LB_SUBSET, 'subset: the header picks the targets holding every label'), t(LB_SUBSET, 'config: labels= and subset-header only with subset')],
  'upstreams.upstream.target.zone=': [t(LB_LOCALITY, 'locality_aware: the local zone first'), t(LB_LOCALITY, 'config: zone= only with locality_aware')],
  'upstreams.upstream.load-balancing': [t(FIRST_PARTY, 'load balancing: round_robin keeps the weights exactly; p2c spreads'), t(INTEGRITY, "'load-balancing \"sticky\"'"), t('test/plugins/balancer-contract.test.ts', 'distribution over 3..10 weighted targets matches the expectation'), t(INTEGRITY, 'the algorithms that run are accepted'), t(LB_HASHING, 'hash-key: header, cookie, query and path hash the same value to the same target')],
  'upstreams.upstream.hash-key': [t(LB_HASHING, 'hash-key: header, cookie, query and path hash the same value to the same target'), t(LB_HASHING, 'config: hash-key only with consistent_hash or maglev')],
  'upstreams.upstream.protocol': [t(SEMANTICS, 'HTTP/2 end to end (h2c client → Weir → h2c upstream)')],
  'upstreams.upstream.connection-pool': [t(EFFECTS, 'connection-pool max-connections caps connections per target')],
  'upstreams.upstream.connection-pool.max-connections': [t(EFFECTS, 'connection-pool max-connections caps connections per target')],
  'upstreams.upstream.connection-pool.max-idle': [t(INTEGRITY, "'connection-pool max-idle'")],
  'upstreams.upstream.connection-pool.idle-timeout': [t(EFFECTS, 'connection-pool idle-timeout closes an idle upstream connection')],
  'upstreams.upstream.connection-pool.max-lifetime': [t(EFFECTS, 'max-lifetime retires a busy one')],
  'upstreams.upstream.connection-pool.queue-timeout': [t(SLOW, 'connection-pool queue-timeout: a full pool answers 503 WEIR_ERR_QUEUE_TIMEOUT')],
  'upstreams.upstream.timeouts': [TIMEOUTS],
  'upstreams.upstream.timeouts.connect': [TIMEOUTS],
  'upstreams.upstream.timeouts.request': [TIMEOUTS],
  'upstreams.upstream.timeouts.read': [TIMEOUTS],
  'upstreams.upstream.timeouts.write': [t(SLOW, 'timeouts write: a response that makes no progress for that long ends the exchange')],
  'upstreams.upstream.health-check': [HEALTH],
  'upstreams.upstream.health-check.type': [HEALTH, t(EFFECTS, 'health-check type "tcp"'), t('test/grpc/health.test.ts', 'grpc health checks: only targets whose service is SERVING get traffic')],
  'upstreams.upstream.health-check.service': [t('test/grpc/health.test.ts', 'grpc health checks: only targets whose service is SERVING get traffic')],
  'upstreams.upstream.health-check.path': [HEALTH],
  'upstreams.upstream.health-check.interval-secs': [HEALTH],
  'upstreams.upstream.health-check.timeout-secs': [HEALTH],
  'upstreams.upstream.health-check.healthy-threshold': [HEALTH],
  'upstreams.upstream.health-check.unhealthy-threshold': [HEALTH],
  'upstreams.upstream.health-check.expected-status': [HEALTH],
  'upstreams.upstream.circuit-breaker': [UP_BREAKER],
  'upstreams.upstream.circuit-breaker.failure-threshold': [UP_BREAKER],
  'upstreams.upstream.circuit-breaker.success-threshold': [UP_BREAKER],
  'upstreams.upstream.circuit-breaker.timeout-seconds': [UP_BREAKER],
  'upstreams.upstream.circuit-breaker.half-open-max-requests': [UP_BREAKER],
  'routes.route.circuit-breaker': [ROUTE_BREAKER, INERT],
  'routes.route.circuit-breaker.failure-threshold': [ROUTE_BREAKER],
  'routes.route.circuit-breaker.success-threshold': [ROUTE_BREAKER],
  'routes.route.circuit-breaker.timeout-seconds': [ROUTE_BREAKER],
  'routes.route.circuit-breaker.half-open-max-requests': [ROUTE_BREAKER],
  'upstreams.upstream.connection-pool.max-requests': [POOL_CAPS],
  'upstreams.upstream.connection-pool.max-pending-requests': [POOL_CAPS, INERT],
  'upstreams.upstream.outlier-detection': [OD_5XX],
  'upstreams.upstream.outlier-detection.consecutive-5xx': [OD_5XX, OD_GATEWAY],
  'upstreams.upstream.outlier-detection.consecutive-gateway-errors': [OD_GATEWAY, OD_NO_RESPONSE],
  'upstreams.upstream.outlier-detection.success-rate': [OD_SUCCESS],
  'upstreams.upstream.outlier-detection.success-rate.min-hosts': [OD_SUCCESS],
  'upstreams.upstream.outlier-detection.success-rate.min-requests': [OD_SUCCESS],
  'upstreams.upstream.outlier-detection.success-rate.stdev-factor': [OD_SUCCESS],
  'upstreams.upstream.outlier-detection.interval': [OD_SUCCESS],
  'upstreams.upstream.outlier-detection.base-ejection-time': [OD_5XX],
  'upstreams.upstream.outlier-detection.max-ejection-percent': [OD_5XX, OD_PANIC],
  'upstreams.upstream.outlier-detection.panic-threshold': [OD_PANIC, OD_PANIC_PARTIAL],
  'upstreams.upstream.slow-start-secs': [SLOW_START, INERT],
  'upstreams.upstream.health-check.method': [HC_MORE],
  'upstreams.upstream.health-check.host': [HC_MORE],
  'upstreams.upstream.health-check.body-match': [HC_MORE],
  'upstreams.upstream.health-check.interval-jitter-secs': [HC_MORE],
  'upstreams.upstream.tls': [t(UP_TLS, 'verification is on by default: an unknown CA is refused')],
  'upstreams.upstream.tls.sni': [t(UP_TLS, 'sni names the upstream: sent in the handshake and checked against the certificate')],
  'upstreams.upstream.tls.ca-file': [t(UP_TLS, 'ca-file verifies the upstream')],
  'upstreams.upstream.tls.client-cert': [t(UP_TLS, 'upstream mTLS: Weir presents its client certificate')],
  'upstreams.upstream.tls.client-key': [t(UP_TLS, 'upstream mTLS: Weir presents its client certificate')],
  'upstreams.upstream.tls.verify': [t(UP_TLS, 'verify #false accepts any certificate')],
  'upstreams.upstream.discovery': [DISC_DNS, DISC_FILE, DISC_CONSUL, DISC_K8S],
  'upstreams.upstream.discovery[kubernetes].service': [DISC_K8S, DISC_K8S_IN, DISC_CONFIG],
  'upstreams.upstream.discovery[kubernetes].namespace': [DISC_K8S_IN],
  'upstreams.upstream.discovery[kubernetes].port-name': [DISC_K8S],
  'upstreams.upstream.discovery[kubernetes].kubeconfig': [DISC_K8S],
  'upstreams.upstream.discovery[kubernetes].refresh-interval': [DISC_K8S],
  'upstreams.upstream.discovery[dns].hostname': [DISC_DNS, DISC_CONFIG],
  'upstreams.upstream.discovery[dns].port': [DISC_DNS, DISC_CONFIG],
  'upstreams.upstream.discovery[dns].refresh-interval': [DISC_DNS],
  'upstreams.upstream.discovery[dns].nameservers': [DISC_DNS],
  'upstreams.upstream.discovery[dns-srv].service': [DISC_SRV],
  'upstreams.upstream.discovery[dns-srv].refresh-interval': [DISC_SRV],
  'upstreams.upstream.discovery[dns-srv].nameservers': [DISC_SRV],
  'upstreams.upstream.discovery[file].path': [DISC_FILE],
  'upstreams.upstream.discovery[consul].address': [DISC_CONSUL, DISC_CONFIG],
  'upstreams.upstream.discovery[consul].service': [DISC_CONSUL],
  'upstreams.upstream.discovery[consul].datacenter': [DISC_CONSUL],
  'upstreams.upstream.discovery[consul].tag': [DISC_CONSUL],
  'upstreams.upstream.discovery[consul].only-passing': [DISC_CONSUL],
  'upstreams.upstream.discovery[consul].refresh-interval': [DISC_CONSUL],
  upstream: [SHORTHANDS],

  filters: [HEADER_FILTERS],
  'filters.filter': [HEADER_FILTERS],
  'filters.filter.type': [HEADER_FILTERS, t('test/grpc/grpc-web.test.ts', 'gRPC-Web binary unary over HTTP/1.1')],
  'filters.filter.failure-mode': [t(FILTERS, 'failure modes apply'), t(INTEGRITY, "a filter\\'s own failure-mode wins")],
  'filters.filter[url-rewrite].prefix': [t(EFFECTS, "url-rewrite prefix: replace-prefix-match replaces the filter\\'s own prefix")],
  'filters.filter[url-rewrite].replace-prefix-match': [HEADER_FILTERS],
  'filters.filter[url-rewrite].regex-rewrite': [HEADER_FILTERS],
  'filters.filter[headers].request': [HEADER_FILTERS],
  'filters.filter[headers].request.set': [HEADER_FILTERS],
  'filters.filter[headers].request.add': [HEADER_FILTERS],
  'filters.filter[headers].request.remove': [HEADER_FILTERS],
  'filters.filter[headers].response': [HEADER_FILTERS],
  'filters.filter[headers].response.set': [HEADER_FILTERS],
  'filters.filter[headers].response.add': [HEADER_FILTERS],
  'filters.filter[headers].response.remove': [HEADER_FILTERS],
  'filters.filter[wasm].plugin': [PLUGIN_BASICS],
  'filters.filter[rate-limit].max-rps': [RATE_LIMIT],
  'filters.filter[rate-limit].burst': [RATE_LIMIT],
  'filters.filter[rate-limit].key': [t(FIRST_PARTY, 'rate-limit: key header:NAME keeps separate buckets'), API_KEY],
  'filters.filter[api-key].header': [API_KEY],
  'filters.filter[api-key].keys-file': [API_KEY, t(AUTH, 'api-key: weir validate gives file:line:column')],
  'filters.filter[api-key].key': [API_KEY],
  'filters.filter[api-key].key.label=': [API_KEY],
  'filters.filter[api-key].strip': [API_KEY],
  'filters.filter[basic-auth].htpasswd': [BASIC, t(AUTH, 'basic-auth: weir validate gives file:line:column')],
  'filters.filter[basic-auth].realm': [BASIC],
  'filters.filter[basic-auth].strip': [BASIC],
  'filters.filter[jwt].algorithms': [JWT, JWT_FILE],
  'filters.filter[jwt].secret': [JWT, JWT_FILE],
  'filters.filter[jwt].jwks-file': [JWT_FILE],
  'filters.filter[jwt].jwks-url': [JWT],
  'filters.filter[jwt].issuer': [JWT],
  'filters.filter[jwt].audience': [JWT],
  'filters.filter[jwt].required-claims': [JWT],
  'filters.filter[jwt].clock-skew-secs': [JWT],
  'filters.filter[jwt].claims-to-headers': [JWT],
  'filters.filter[jwt].claims-to-headers.claim': [JWT],
  'filters.filter[jwt].claims-to-headers.claim.header=': [JWT],
  'filters.filter[jwt].token-from': [JWT],
  'filters.filter[jwt].token-from.header': [JWT],
  'filters.filter[jwt].token-from.header.prefix=': [JWT],
  'filters.filter[jwt].token-from.cookie': [JWT],
  'filters.filter[jwt].token-from.query': [JWT],
  'filters.filter[rate-limit].on-limit': [t(FIRST_PARTY, 'log-only never rejects; delay holds the request')],
  'filters.filter[rate-limit].backend': [REDIS, MEMCACHED],
  'filters.filter[rate-limit].redis-url': [REDIS],
  'filters.filter[rate-limit].redis-prefix': [REDIS],
  'filters.filter[rate-limit].redis-pool-size': [t(EFFECTS, 'rate-limit redis-pool-size: that many connections to redis')],
  'filters.filter[rate-limit].redis-timeout-ms': [REDIS, STORE_FOR, t('test/store/redis-store.test.ts', 'calls fall back after redis-timeout-ms')],
  'filters.filter[rate-limit].redis-fallback': [REDIS, STORE_FOR, t('test/store/redis-store.test.ts', 'redis killed mid-run → local fallback')],
  'filters.filter[rate-limit].memcached-url': [MEMCACHED],
  'filters.filter[rate-limit].memcached-prefix': [MEMCACHED],
  'filters.filter[rate-limit].memcached-pool-size': [MEMCACHED],
  'filters.filter[rate-limit].memcached-timeout-ms': [MEMCACHED],
  'filters.filter[rate-limit].memcached-fallback': [MEMCACHED, STORE_FOR, t('test/store/memcached-store.test.ts', 'memcached down → fallback; back → recovered')],
  'filters.filter[rate-limit].memcached-ttl': [MEMCACHED],
  'filters.filter[rate-limit].status-code': [t(EFFECTS, 'rate-limit status-code: the rejection uses it')],
  'filters.filter[rate-limit].delay-max-ms': [t(FIRST_PARTY, 'delay holds the request')],
  'filters.filter[geo].database-path': [t(FIRST_PARTY, 'the seed configuration blocks for these filters work as written')],
  'filters.filter[geo].database-type': [t(FIRST_PARTY, 'the seed configuration blocks for these filters work as written'), t(INTEGRITY, "'geo database-type \"ip2location\"'")],
  'filters.filter[geo].action': [GEO],
  'filters.filter[geo].countries': [GEO],
  'filters.filter[geo].on-failure': [GEO],
  'filters.filter[geo].status-code': [GEO],
  'filters.filter[geo].block-message': [GEO],
  'filters.filter[geo].cache-ttl-secs': [t(INTEGRITY, "'geo cache-ttl-secs'")],
  'filters.filter[geo].client-ip-header': [t(TRUST, 'geo: client-ip-header is refused')],
  'filters.filter[cors].allow-origins': [CORS_PREFLIGHT, t(CORS, 'cors: wildcard subdomains match'), t(CORS, 'cors: allow-origins "*" without credentials answers *')],
  'filters.filter[cors].allow-methods': [CORS_PREFLIGHT, t(CORS, 'cors: preflights from a disallowed origin, or asking for a method or header outside the lists')],
  'filters.filter[cors].allow-headers': [CORS_PREFLIGHT, t(CORS, 'allow-headers "*" answers what was asked, except authorization')],
  'filters.filter[cors].expose-headers': [CORS_ACTUAL],
  'filters.filter[cors].allow-credentials': [CORS_PREFLIGHT, CORS_ACTUAL],
  'filters.filter[cors].max-age-secs': [CORS_PREFLIGHT],
  'filters.filter[ip-filter].allow': [IP_SOCKET, IP_V6, IP_XFF],
  'filters.filter[ip-filter].deny': [IP_SOCKET, IP_V6, IP_XFF],
  filter: [SHORTHANDS],

  plugins: [PLUGIN_BASICS],
  'plugins.plugin': [PLUGIN_BASICS],
  'plugins.plugin.path': [PLUGIN_BASICS],
  'plugins.plugin.isolation': [t('test/plugins/echo-e2e.test.ts', 'worker isolation: the plugin runs in a piscina worker')],
  'plugins.plugin.fuel': [t(RUNTIME, 'an infinite loop is stopped by fuel')],
  'plugins.plugin.memory-limit': [t(RUNTIME, 'a memory hog hits its cap')],
  'plugins.plugin.timeout-ms': [t('test/plugins/deadlines.test.ts', 'inline: a loop with a huge fuel budget ends at its deadline'), t(RUNTIME, 'worker isolation: an infinite loop is stopped by the deadline')],
  'plugins.plugin.pool-size': [t('test/plugins/deadlines.test.ts', 'a callout stuck when its client goes away is aborted')],
  'plugins.plugin.tick-ms': [t('test/plugins/on-tick.test.ts', 'on-tick runs every tick-ms and counts in the store; after a hot swap only the new version ticks')],
  'plugins.plugin.config': [PLUGIN_BASICS, SHORTHANDS],
  plugin: [SHORTHANDS],

  limits: [t(LIMITS, 'header section over max-header-bytes')],
  'limits.max-header-bytes': [t(LIMITS, 'header section over max-header-bytes → 431 and close')],
  'limits.max-header-count': [t(LIMITS, 'more headers than max-header-count → 431')],
  'limits.max-body-bytes': [t(LIMITS, 'body over max-body-bytes → 413, by Content-Length and by chunked stream')],
  'limits.max-request-line-bytes': [t(LIMITS, 'request line over max-request-line-bytes → 414')],
  'limits.header-timeout-ms': [t(LIMITS, 'headers not complete within header-timeout-ms → 408 and close')],
  'limits.request-timeout-ms': [t(LIMITS, 'body not complete within request-timeout-ms → 408')],
  'limits.keepalive-timeout-ms': [t(LIMITS, 'an idle keep-alive connection is closed after keepalive-timeout-ms')],
  'limits.max-requests-per-connection': [t(LIMITS, 'max-requests-per-connection: the last allowed response says close')],
  'limits.max-connections': [t(LIMITS, 'max-connections: connections over the cap are dropped'), t(INTEGRITY, '`limits max-connections` caps each listener')],
  'limits.websocket-idle-timeout-secs': [t(WS, 'an idle WebSocket is closed after websocket-idle-timeout-secs')],
  'limits.max-upstream-requests-per-client': [t(SLOW, 'limits max-upstream-requests-per-client: over the cap → 503 WEIR_ERR_CLIENT_LIMIT')],
  'limits.response-buffer-bytes': [t(SLOW, 'limits response-buffer-bytes ')],
  'limits.request-body-buffer-bytes': [t(SLOW, 'limits request-body-buffer-bytes ')],
  'limits.min-request-body-rate': [t(SLOW, 'limits min-request-body-rate: a body slower than the rate gets 408'), t(SLOW, 'limits min-request-body-rate on streamed bodies')],
  'limits.websocket-max-message-bytes': [t(WS, 'a message over websocket-max-message-bytes closes the connection with 1009')],
  'limits.http2': [H2_SETTINGS],
  'limits.http2.max-concurrent-streams': [H2_SETTINGS],
  'limits.http2.initial-window-size': [H2_SETTINGS],
  'limits.http2.connection-window-size': [H2_SETTINGS],
  'limits.http2.max-header-list-size': [H2_SETTINGS, t(LIMITS, 'HTTP/2 header list over the limit is refused')],
  'limits.http2.max-session-memory-mb': [t(EFFECTS, 'max-session-memory-mb: past it, new streams are refused')],

  observability: [t(INTEGRITY, 'metrics enabled #false')],
  'observability.metrics': [t(INTEGRITY, 'metrics enabled #false')],
  'observability.metrics.enabled': [t(INTEGRITY, 'metrics enabled #false: a metrics route or a metrics address is refused')],
  'observability.metrics.address': [t(EFFECTS, 'metrics address and path: a separate listener serves the metrics')],
  'observability.metrics.path': [t(EFFECTS, 'metrics address and path: a separate listener serves the metrics')],
  'observability.logging': [t(EFFECTS, 'logging level and format')],
  'observability.logging.level': [t(EFFECTS, 'logging level and format')],
  'observability.logging.format': [t(EFFECTS, 'logging level and format')],
  'observability.logging.audit-log': [t(ADMIN, 'audit-log: reloads (trigger, result, generation) and requests a filter denied'), ADMIN_AUTH],
  'observability.logging.access-log': [t(EFFECTS, 'access-log "file": one JSON line per request'), t('test/proxy/sinks.test.ts', 'an access-log path in a missing directory')],
  'observability.tracing': [t(TRACING, 'a request without traceparent starts a trace'), t(TRACING, 'a reload that adds the tracing block starts exporting')],
  'observability.tracing.enabled': [t(TRACING, 'enabled #false and no tracing block leave traceparent as the client sent it')],
  'observability.tracing.endpoint': [t(TRACING, 'a request without traceparent starts a trace'), t(TRACING, 'tracing config: refused and checked at load')],
  'observability.tracing.backend': [t(TRACING, 'Sentinel\'s spelling'), t(TRACING, 'tracing config: refused and checked at load')],
  'observability.tracing.backend.endpoint': [t(TRACING, 'Sentinel\'s spelling')],
  'observability.tracing.service-name': [t(TRACING, 'a request without traceparent starts a trace'), t(TRACING, 'Sentinel\'s spelling')],
  'observability.tracing.sample-ratio': [t(TRACING, 'sample-ratio 0 exports no new trace'), t(TRACING, 'sample-ratio 0.5 samples about half')],
  'observability.tracing.sampling-rate': [t(TRACING, 'Sentinel\'s spelling')],
  'observability.tracing.hook-span-threshold-ms': [t(TRACING, 'hook-span-threshold-ms: plugin hooks at or over it get a child span')],
  'observability.tracing.export-delay-ms': [t(TRACING, 'export-delay-ms sends batches while the proxy runs')],

  cache: [CACHE_FRESH],
  'cache.enabled': [t(CACHE, 'enabled #false turns it off')],
  'cache.backend': [CACHE_DISK],
  'cache.max-size': [t(CACHE, 'max-size evicts least recently used entries')],
  'cache.eviction-limit': [t(CACHE, 'max-size evicts least recently used entries')],
  'cache.lock-timeout': [t(CACHE, 'lock-timeout: a request waits that long for a slow fill')],
  'cache.disk-path': [CACHE_DISK],
  'cache.disk-shards': [CACHE_DISK],
  'cache.status-header': [t(CACHE, 'status-header renames X-Cache')],
  'cache.purge': [CACHE_PURGE],
  'cache.purge.allow': [CACHE_PURGE],
  'cache.purge.token': [CACHE_PURGE],

  waf: [WAF_TOP, WAF_SEED],
  'waf.enabled': [WAF_TOP],
  'waf.mode': [WAF_TOP],
  'waf.paranoia-level': [WAF_TOP],
  'waf.anomaly-threshold': [WAF_TOP],
  'waf.body-inspection': [WAF_SEED],
  'waf.body-inspection.inspect-request-body': [WAF_SEED],
  'waf.body-inspection.decompress': [WAF_SEED],
  'waf.body-inspection.max-decompression-ratio': [WAF_SEED],
  'waf.body-inspection.max-body-inspection-bytes': [WAF_SEED],
  'waf.body-inspection.content-types': [WAF_SEED],
  'waf.exclude': [WAF_TOP],
  'waf.exclude.rule=': [WAF_TOP],
  'waf.exclude.route=': [WAF_TOP],
  'waf.exclude.parameter=': [WAF_TOP],
  'filters.filter[waf].mode': [WAF_BLOCK, WAF_DETECT],
  'filters.filter[waf].paranoia-level': [WAF_LEVELS],
  'filters.filter[waf].anomaly-threshold': [WAF_LEVELS],
  'filters.filter[waf].body-inspection': [WAF_BODY],
  'filters.filter[waf].body-inspection.inspect-request-body': [WAF_BODY],
  'filters.filter[waf].body-inspection.decompress': [WAF_BODY],
  'filters.filter[waf].body-inspection.max-decompression-ratio': [WAF_BODY],
  'filters.filter[waf].body-inspection.max-body-inspection-bytes': [WAF_BODY],
  'filters.filter[waf].body-inspection.content-types': [WAF_BODY],
  'filters.filter[waf].exclude': [WAF_EXCLUDE],
  'filters.filter[waf].exclude.rule=': [WAF_EXCLUDE],
  'filters.filter[waf].exclude.route=': [WAF_EXCLUDE],
  'filters.filter[waf].exclude.parameter=': [WAF_EXCLUDE],
  'admin-api': [ADMIN_AUTH, ADMIN_REMOTE],
  'admin-api.enabled': [ADMIN_REMOTE],
  'admin-api.address': [ADMIN_AUTH, ADMIN_CONSTRAINTS],
  'admin-api.allow-remote': [ADMIN_REMOTE, ADMIN_CONSTRAINTS],
  'admin-api.persist': [ADMIN_PERSIST],
  'admin-api.drain-timeout-secs': [t(ADMIN, 'drain timeout: the call returns after timeout-ms with drained false')],
  'admin-api.tls': [ADMIN_TLS],
  'admin-api.tls.cert-file': [ADMIN_TLS],
  'admin-api.tls.key-file': [ADMIN_TLS],
  'admin-api.tls.ca-file': [ADMIN_TLS],
  'admin-api.auth': [ADMIN_AUTH, ADMIN_CONSTRAINTS],
  'admin-api.auth.type': [ADMIN_AUTH, ADMIN_TLS],
  'admin-api.auth.token': [ADMIN_AUTH],
  'admin-api.auth.read-only-token': [ADMIN_AUTH],
  'admin-api.auth.read-only-subjects': [ADMIN_TLS],
  // Sentinel spellings (test/config/sentinel.test.ts: each acts as its Weir key through the proxy).
  'listeners.listener.tls.cipher-suites': [t(SENTINEL, 'sentinel TLS cipher-suites: a client offering only a suite not listed is refused')],
  'listeners.listener.tls.ocsp-stapling': [SENT_REFUSED],
  'routes.route.retry-policy': [SENT_RETRY],
  'routes.route.websocket': [SENT_WS],
  'routes.route.policies.retry.backoff-base-ms': [SENT_RETRY],
  'routes.route.policies.retry.backoff-max-ms': [SENT_RETRY],
  'routes.route.policies.retry.retryable-status-codes': [SENT_RETRY],
  'upstreams.upstream.connection-pool.idle-timeout-secs': [SENT_POOL],
  'upstreams.upstream.connection-pool.max-lifetime-secs': [SENT_POOL],
  'upstreams.upstream.timeouts.connect-secs': [SENT_TIMEOUTS],
  'upstreams.upstream.timeouts.request-secs': [SENT_TIMEOUTS],
  'upstreams.upstream.timeouts.read-secs': [SENT_TIMEOUTS],
  'upstreams.upstream.timeouts.write-secs': [SENT_TIMEOUTS],
  'upstreams.upstream.tls.ca-cert': [SENT_UP_TLS],
  'filters.filter[rate-limit].redis-fallback-local': [SENT_RL],
  'limits.max-header-size-bytes': [SENT_LIMITS],
  'limits.max-header-size': [SENT_LIMITS],
  'limits.max-body-size-bytes': [SENT_LIMITS],
  'limits.max-body-size': [SENT_LIMITS],
  'system.pid-file': [SENT_PID],
  'system.daemon': [SENT_REFUSED],
  'system.user': [SENT_REFUSED],
  'system.group': [SENT_REFUSED],
  'system.working-directory': [SENT_REFUSED],
  'listeners.listener.max-concurrent-streams': [SENT_LISTENER],
  'listeners.listener.keepalive-max-requests': [SENT_LISTENER],
  'listeners.listener.default-route': [t(SENTINEL, 'sentinel listener default-route takes the requests no route matches')],
  'routes.route.service-type': [t(SENTINEL, 'sentinel route service-type picks the error reply format: HTML for web and static, JSON for api')],
  'routes.route.rewrite-path': [SENT_REWRITE],
  'routes.route.policies.rewrite-path': [SENT_REWRITE],
  ...Object.fromEntries(['request-headers', 'response-headers'].flatMap((b) => [
    [`routes.route.policies.${b}`, [SENT_HEADERS]],
    ...['set', 'add', 'remove', 'rename'].map((op) => [`routes.route.policies.${b}.${op}`, [SENT_HEADERS, HEADER_FILTERS]]),
  ])),
  'routes.route.policies.rate-limit': [SENT_RL_ROUTE],
  'routes.route.policies.rate-limit.requests-per-second': [SENT_RL_ROUTE],
  'routes.route.policies.rate-limit.redis-fallback-local': [SENT_RL_ROUTE, SENT_RL],
  'routes.route.policies.buffer-requests': [t(SENTINEL, 'sentinel policies buffer-requests reads the whole body before the upstream is called')],
  'routes.route.policies.buffer-responses': [SENT_REFUSED],
  'agents': [SENT_REFUSED],
  'limits.max-connections-per-client': [t(INTEGRITY, '`limits max-connections-per-client 1` caps the connections of one peer address over all listeners')],
  'limits.max-total-connections': [SYSTEM_CAP],
  'limits.max-in-flight-requests': [t(SENTINEL, 'sentinel limits max-in-flight-requests: one request more than the cap gets 503 WEIR_ERR_OVERLOADED')],
  'limits.max-decompression-ratio': [SENT_DECODE],
  'limits.max-decompressed-size-bytes': [SENT_DECODE],
  'observability.logging.error-log': [SENT_REFUSED],
};

/** A route's `policies { rate-limit }` is the rate-limit filter with the same keys: the filter's tests are its tests too. */
const ROUTE_RATE_LIMIT = Object.fromEntries(
  Object.entries(ROWS)
    .filter(([k]) => k.startsWith('filters.filter[rate-limit].') && k !== 'filters.filter[rate-limit].redis-fallback-local')
    .map(([k, refs]) => [k.replace('filters.filter[rate-limit].', 'routes.route.policies.rate-limit.'), [SENT_RL_ROUTE, ...refs]]),
);

export const KEY_COVERAGE: Readonly<Record<string, readonly Exercise[]>> = { ...ROWS, ...ROUTE_RATE_LIMIT };

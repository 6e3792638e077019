/**
 * The OpenAPI 3.1 document served at /api/v1/openapi.json. test/admin/openapi.test.ts
 * checks that its paths and methods are exactly the router's (api.ts ROUTES).
 */

const json = (schema: object): object => ({ content: { 'application/json': { schema } } });
const ref = (name: string): object => ({ $ref: `#/components/schemas/${name}` });
const ok = (description: string, schema: object = { type: 'object' }): object => ({ 200: { description, ...json(schema) } });
const errors = (...statuses: number[]): object => Object.fromEntries(statuses.map((s) => [s, { $ref: `#/components/responses/E${s}` }]));
const idParam = (what: string): object => ({ name: 'id', in: 'path', required: true, description: `The ${what}'s name in the config.`, schema: { type: 'string' } });
const body = (schema: object): object => ({ required: true, ...json(schema) });
const read = errors(401);
const write = errors(400, 401, 403, 409, 503);

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Weir admin API',
    version: '1',
    description: 'Served on `admin-api { address }`. Changes go through the reload transaction (every proxy thread or none); with `persist #false` the next reload of the config file replaces them.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: '`auth type "bearer"`: `token` (full access) or `read-only-token` (GET only).' },
      mtls: { type: 'mutualTLS', description: '`auth type "mtls"`: a client certificate signed by `tls ca-file`; `read-only-subjects` may only read.' },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'status', 'message'], properties: { code: { type: 'string', pattern: '^WEIR_ERR_' }, status: { type: 'integer' }, message: { type: 'string' }, detail: {} } } },
      },
      Target: { type: 'object', required: ['address'], additionalProperties: false, properties: { address: { type: 'string', example: '10.0.0.1:8080' }, weight: { type: 'integer', minimum: 0, maximum: 10000, default: 1 } } },
      Targets: { type: 'object', required: ['targets'], additionalProperties: false, properties: { targets: { type: 'array', items: ref('Target'), minItems: 1 } } },
      TargetState: {
        type: 'object',
        properties: {
          address: { type: 'string' }, weight: { type: 'integer' }, healthy: { type: 'boolean' }, ejected: { type: 'boolean' }, draining: { type: 'boolean' },
          ejections: { type: 'integer', description: '`outlier-detection` only: ejections so far.' }, ejectionReason: { type: 'string', description: '`outlier-detection` only: why it was last ejected.' },
          inFlight: { type: 'integer' }, requests: { type: 'integer' }, failures: { type: 'integer' },
        },
      },
      Applied: {
        type: 'object',
        properties: { applied: { type: 'boolean' }, generation: { type: 'integer' }, persisted: { type: 'boolean' }, note: { type: 'string', description: 'Present when the change is not persisted.' } },
      },
    },
    responses: {
      E400: { description: 'WEIR_ERR_ADMIN_BAD_REQUEST: the body is not what the call takes.', ...json(ref('Error')) },
      E401: { description: 'WEIR_ERR_ADMIN_UNAUTHORIZED: no valid credential.', ...json(ref('Error')) },
      E403: { description: 'WEIR_ERR_ADMIN_FORBIDDEN: a read-only credential on a write.', ...json(ref('Error')) },
      E404: { description: 'WEIR_ERR_ADMIN_NOT_FOUND: no such upstream, route, plugin or target.', ...json(ref('Error')) },
      E409: { description: 'WEIR_ERR_ADMIN_CONFLICT: the change would make the configuration invalid (detail: the diagnostics); nothing changed.', ...json(ref('Error')) },
      E503: { description: 'WEIR_ERR_ADMIN_UNAVAILABLE: a proxy thread could not apply the change; nothing changed.', ...json(ref('Error')) },
    },
  },
  security: [{ bearer: [] }, { mtls: [] }],
  paths: {
    '/api/v1/status': {
      get: { summary: 'Readiness, config generation, unhealthy targets, the last reloads', responses: { ...ok('Status'), ...read } },
    },
    '/api/v1/upstreams': {
      get: { summary: 'Upstreams with their targets: weight, health, ejection, draining, in-flight', responses: { ...ok('Upstreams', { type: 'object', properties: { upstreams: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, loadBalancing: { type: 'string' }, circuit: { type: 'string', enum: ['closed', 'open', 'half-open'], description: '`circuit-breaker` only.' }, panic: { type: 'boolean', description: '`outlier-detection` only: too few targets available, requests go to all.' }, targets: { type: 'array', items: ref('TargetState') } } } } } }), ...read } },
      post: {
        summary: 'Add an upstream',
        requestBody: body({ type: 'object', required: ['id', 'targets'], additionalProperties: false, properties: { id: { type: 'string' }, targets: { type: 'array', items: ref('Target'), minItems: 1 } } }),
        responses: { 201: { description: 'Added', ...json(ref('Applied')) }, ...write },
      },
    },
    '/api/v1/upstreams/{id}': {
      delete: { summary: 'Remove an upstream no route uses', parameters: [idParam('upstream')], responses: { ...ok('Removed', ref('Applied')), ...write, ...errors(404) } },
    },
    '/api/v1/upstreams/{id}/targets': {
      put: { summary: 'Replace the targets (addresses and weights)', parameters: [idParam('upstream')], requestBody: body(ref('Targets')), responses: { ...ok('Replaced', ref('Applied')), ...write, ...errors(404) } },
    },
    '/api/v1/upstreams/{id}/drain': {
      post: {
        summary: 'Drain a target (or every target): no new requests; returns when in-flight requests finished or after timeout-ms. `drain: false` sends traffic again.',
        parameters: [idParam('upstream')],
        requestBody: { required: false, ...json({ type: 'object', additionalProperties: false, properties: { target: { type: 'string' }, 'timeout-ms': { type: 'integer', minimum: 0 }, drain: { type: 'boolean', default: true } } }) },
        responses: { ...ok('Drain result', { type: 'object', properties: { upstream: { type: 'string' }, draining: { type: 'boolean' }, drained: { type: 'boolean' }, targets: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, drained: { type: 'boolean' }, inFlight: { type: 'integer' } } } } } }), ...errors(400, 401, 403, 404) },
      },
    },
    '/api/v1/routes': {
      get: { summary: 'Routes in match order with priority, enabled, upstream or builtin handler, filters', responses: { ...ok('Routes'), ...read } },
    },
    '/api/v1/routes/{id}/enabled': {
      put: { summary: 'Enable or disable a route (`enabled #false`)', parameters: [idParam('route')], requestBody: body({ type: 'object', required: ['enabled'], additionalProperties: false, properties: { enabled: { type: 'boolean' } } }), responses: { ...ok('Set', ref('Applied')), ...write, ...errors(404) } },
    },
    '/api/v1/config/reload': {
      post: { summary: 'Reload the config files (unpersisted API changes are discarded)', responses: { ...ok('Reloaded', { type: 'object', properties: { applied: { type: 'boolean' }, generation: { type: 'integer' }, discardedChanges: { type: 'boolean' } } }), ...errors(401, 403, 409) } },
    },
    '/api/v1/config/validate': {
      get: { summary: 'Validate the config files as they are on disk, without applying them', responses: { ...ok('Diagnostics', { type: 'object', properties: { valid: { type: 'boolean' }, diagnostics: { type: 'array', items: { type: 'object' } } } }), ...read, ...errors(409) } },
    },
    '/api/v1/config': {
      get: { summary: 'The running config text, file by file (API changes included)', responses: { ...ok('Files', { type: 'object', properties: { generation: { type: 'integer' }, files: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, text: { type: 'string' }, changedByApi: { type: 'boolean' } } } } } }), ...read } },
    },
    '/api/v1/plugins': {
      get: { summary: 'Plugins with per-hook calls, errors, fuel and latency', responses: { ...ok('Plugins'), ...read } },
    },
    '/api/v1/plugins/{id}/reload': {
      post: { summary: 'Load the plugin file again on every thread (a broken file keeps the old version)', parameters: [idParam('plugin')], responses: { ...ok('Reloaded'), ...errors(401, 403, 404, 409) } },
    },
    '/api/v1/cache/purge': {
      post: {
        summary: 'Remove cache entries: all, by tag, by URL prefix or one URL',
        requestBody: body({ oneOf: [
          { type: 'object', required: ['all'], properties: { all: { const: true } } },
          { type: 'object', required: ['tags'], properties: { tags: { type: 'array', items: { type: 'string' }, minItems: 1 } } },
          { type: 'object', required: ['prefix'], properties: { prefix: { type: 'string', format: 'uri' } } },
          { type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } },
        ] }),
        responses: { ...ok('Purged', { type: 'object', properties: { purged: { type: 'integer' } } }), ...errors(400, 401, 403) },
      },
    },
    '/api/v1/openapi.json': {
      get: { summary: 'This document', responses: { ...ok('OpenAPI 3.1'), ...read } },
    },
    '/api/v1/events': {
      get: { summary: 'Server-sent events, one `stats` event a second: per-route rate, error rate and latency percentiles, upstream targets, plugin hooks', responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...read } },
    },
  },
} as const;

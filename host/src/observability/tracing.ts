/**
 * OpenTelemetry tracing (`observability { tracing {} }`): one server span per request, one
 * client span per upstream attempt, a child span for each plugin hook slower than the
 * threshold. W3C trace context comes in on `traceparent`/`tracestate` and goes upstream with
 * the attempt's span as the parent. Spans are sampled parent-based (a sampled parent is
 * always continued, roots by `sample-ratio`) and exported by the SDK's BatchSpanProcessor as
 * OTLP/HTTP protobuf, so the request path only appends ended spans to a queue.
 */
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Counter, Registry } from 'prom-client';
import { tracingExportCounter } from './metrics.ts';
import type { TracingConfig } from '../config/types.ts';

/** A header map as the proxy keeps it (lower-case names). */
type Headers = Record<string, string | string[] | undefined>;

const getter: TextMapGetter<Headers> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};
const setter: TextMapSetter<Headers> = {
  set: (h, k, v) => {
    h[k] = v;
  },
};
const propagator = new W3CTraceContextPropagator();

/** What plugins and the pipeline may add to a request's trace (RequestContext.trace). */
export interface RequestSpan {
  /** The trace id (32 hex digits), for the access log and exemplars. */
  readonly traceId: string;
  /** True when this request's spans are exported. */
  readonly sampled: boolean;
  /** A plugin hook that ran `ms` from `start` (performance.now()); a child span when at least the threshold. */
  hook(plugin: string, hook: string, start: number, ms: number, error?: string): void;
  /** Sets an attribute on the request span. */
  setAttribute(key: string, value: string | number | boolean): void;
  /** Adds an event (a timestamped annotation) to the request span. */
  addEvent(name: string, attributes?: Attributes): void;
}

/** The request's spans; made by Tracing.startRequest, ended by `end`. */
export class RequestTrace implements RequestSpan {
  readonly traceId: string;
  readonly sampled: boolean;
  private readonly tracing: Tracing;
  private readonly span: Span;
  private readonly context: Context;
  private readonly method: string;
  private attempt: Span | undefined;

  constructor(tracing: Tracing, span: Span, context: Context, method: string) {
    this.tracing = tracing;
    this.method = method;
    this.span = span;
    this.context = context;
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.sampled = span.isRecording();
  }

  hook(plugin: string, hook: string, start: number, ms: number, error?: string): void {
    if (!this.sampled || ms < this.tracing.hookThresholdMs) return;
    const s = this.tracing.tracer.startSpan(`${hook} ${plugin}`, { kind: SpanKind.INTERNAL, startTime: start, attributes: { 'weir.plugin': plugin, 'weir.hook': hook } }, this.context);
    if (error !== undefined) {
      s.setAttribute('error.type', error);
      s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.end(start + ms);
  }

  setAttribute(key: string, value: string | number | boolean): void {
    this.span.setAttribute(key, value);
  }

  addEvent(name: string, attributes?: Attributes): void {
    this.span.addEvent(name, attributes);
  }

  /** Starts the client span of one upstream attempt (the previous one, if open, ends first). */
  startAttempt(method: string, upstream: string, host: string, port: number, resend: number): void {
    this.endAttempt(undefined, undefined);
    const attributes: Attributes = { 'http.request.method': method, 'server.address': host, 'server.port': port, 'weir.upstream': upstream };
    if (resend > 0) attributes['http.request.resend_count'] = resend;
    this.attempt = this.tracing.tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes }, this.context);
  }

  /** Writes traceparent/tracestate for the upstream: the attempt's span is the parent (the request's without one). */
  inject(headers: Headers): void {
    delete headers['traceparent'];
    delete headers['tracestate'];
    propagator.inject(this.attempt ? trace.setSpan(ROOT_CONTEXT, this.attempt) : this.context, headers, setter);
  }

  /** Ends the open attempt span with the upstream's status or the error that ended it. */
  endAttempt(status: number | undefined, errorType: string | undefined): void {
    const a = this.attempt;
    if (a === undefined) return;
    this.attempt = undefined;
    if (status !== undefined) a.setAttribute('http.response.status_code', status);
    if (errorType !== undefined || (status !== undefined && status >= 400)) {
      a.setAttribute('error.type', errorType ?? String(status));
      a.setStatus({ code: SpanStatusCode.ERROR });
    }
    a.end();
  }

  /** Ends the request span: the route, the status and the error code, if any. */
  end(route: string, upstream: string | undefined, status: number, errorCode: string | undefined, attemptError: string | undefined): void {
    this.endAttempt(undefined, attemptError);
    const s = this.span;
    if (!this.sampled) return s.end();
    if (route) {
      s.setAttribute('weir.route', route);
      s.updateName(`${this.method} ${route}`);
    }
    if (upstream !== undefined) s.setAttribute('weir.upstream', upstream);
    if (status > 0) s.setAttribute('http.response.status_code', status);
    // A server span is an error for 5xx only (a 4xx is the client's mistake, not the server's).
    if (errorCode !== undefined || status >= 500) {
      s.setAttribute('error.type', errorCode ?? String(status));
      if (status >= 500 || status === 0) s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.end();
  }
}

/** What the server span starts with, from the request head. */
export interface RequestInfo {
  readonly id: string;
  readonly method: string;
  readonly scheme: string;
  readonly path: string;
  readonly host: string;
  readonly client: string;
  readonly httpVersion: string;
  readonly headers: Headers;
  /** performance.now() when the request head arrived. */
  readonly start: number;
}

/** Counts exported and failed spans (a collector that is down must show on /metrics). */
class CountingExporter implements SpanExporter {
  private readonly inner: SpanExporter;
  private readonly counter: Counter<'result'>;

  constructor(inner: SpanExporter, counter: Counter<'result'>) {
    this.inner = inner;
    this.counter = counter;
  }

  export(spans: ReadableSpan[], done: (r: { code: number; error?: Error }) => void): void {
    this.inner.export(spans, (r) => {
      this.counter.labels(r.code === 0 ? 'ok' : 'error').inc(spans.length);
      done(r);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** The OTLP/HTTP traces URL: an endpoint without a path gets the standard `/v1/traces`. */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.toString();
}

/** One tracer provider and its exporter, for one `tracing` block (kept across reloads that do not change it). */
export class Tracing {
  readonly key: string;
  readonly tracer: ReturnType<TracerProvider['getTracer']>;
  readonly hookThresholdMs: number;
  private readonly provider: TracerProvider;

  constructor(cfg: TracingConfig, registry: Registry) {
    this.key = tracingKey(cfg);
    this.hookThresholdMs = cfg.hookSpanThresholdMs;
    const exporter = new CountingExporter(new OTLPTraceExporter({ url: tracesUrl(cfg.endpoint), timeoutMillis: 10_000 }), tracingExportCounter(registry));
    this.provider = new TracerProvider({
      // One instance per proxy thread (worker-threads): host, process and thread.
      resource: resourceFromAttributes({ 'service.name': cfg.serviceName, 'service.instance.id': `${hostname()}:${process.pid}:${threadId}` }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
      // Bounds what plugins can add to one span.
      spanLimits: { attributeValueLengthLimit: 4096, attributeCountLimit: 128, eventCountLimit: 128, attributePerEventCountLimit: 32 },
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: cfg.exportDelayMs })],
    });
    this.tracer = this.provider.getTracer('weir');
  }

  /** Continues the incoming W3C trace context (or starts a trace) with the request's server span. */
  startRequest(r: RequestInfo): RequestTrace {
    const parent = r.headers['traceparent'] === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, r.headers, getter);
    const span = this.tracer.startSpan(r.method, {
      kind: SpanKind.SERVER,
      startTime: r.start,
      attributes: {
        'http.request.method': r.method,
        'url.path': r.path,
        'url.scheme': r.scheme,
        'server.address': r.host,
        'client.address': r.client,
        'network.protocol.version': r.httpVersion,
        'weir.request_id': r.id,
      },
    }, parent);
    return new RequestTrace(this, span, trace.setSpan(parent, span), r.method);
  }

  /** Sends what is queued now (tests, and before a shutdown). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Flushes and stops the exporter. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** Two tracing blocks with the same key share one provider. */
export function tracingKey(cfg: TracingConfig): string {
  return JSON.stringify(cfg);
}

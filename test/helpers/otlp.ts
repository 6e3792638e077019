/**
 * An OTLP/HTTP trace receiver on loopback for tests: takes what Weir's exporter posts to
 * /v1/traces, decodes the protobuf body and keeps the spans. The message shapes below are
 * the OTLP trace schema's field numbers, written out for protobufjs's reflection (only the
 * fields the tests read).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

const kv = { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } };
const SCHEMA = {
  nested: {
    ExportTraceServiceRequest: { fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } } },
    ResourceSpans: { fields: { resource: { type: 'Resource', id: 1 }, scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 } } },
    Resource: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    ScopeSpans: { fields: { scope: { type: 'Scope', id: 1 }, spans: { rule: 'repeated', type: 'Span', id: 2 } } },
    Scope: { fields: { name: { type: 'string', id: 1 } } },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        parentSpanId: { type: 'bytes', id: 4 },
        name: { type: 'string', id: 5 },
        kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 },
        endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        events: { rule: 'repeated', type: 'Event', id: 11 },
        status: { type: 'Status', id: 15 },
      },
    },
    Event: { fields: { timeUnixNano: { type: 'fixed64', id: 1 }, name: { type: 'string', id: 2 }, attributes: { rule: 'repeated', type: 'KeyValue', id: 3 } } },
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
    KeyValue: kv,
    AnyValue: {
      oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue'] } },
      fields: { stringValue: { type: 'string', id: 1 }, boolValue: { type: 'bool', id: 2 }, intValue: { type: 'int64', id: 3 }, doubleValue: { type: 'double', id: 4 } },
    },
  },
};
const Request = protobuf.Root.fromJSON(SCHEMA).lookupType('ExportTraceServiceRequest');

/** OTLP span kinds. */
export const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
/** OTLP status codes. */
export const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Record<string, string | number | boolean>;
  readonly events: Array<{ name: string; attributes: Record<string, string | number | boolean> }>;
  readonly status: number;
  /** The resource's attributes (service.name …). */
  readonly resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Requests received, with their content type. */
  readonly posts: Array<{ path: string; contentType: string | undefined }>;
  /** Resolves once `pred` holds for the spans received (checked on each post). */
  until(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: { toString(): string } | number; doubleValue?: number };

function attrs(list: Array<{ key: string; value?: AnyValue }> | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of list ?? []) {
    const v = a.value ?? {};
    out[a.key] = v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue.toString()) : undefined) ?? v.doubleValue ?? '';
  }
  return out;
}

const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : '');

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const posts: OtlpReceiver['posts'] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', contentType: req.headers['content-type'] });
      const msg = Request.toObject(Request.decode(Buffer.concat(chunks)), { longs: String, defaults: false }) as {
        resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value?: AnyValue }> }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
      };
      for (const rs of msg.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hex(s['traceId'] as Uint8Array),
              spanId: hex(s['spanId'] as Uint8Array),
              parentSpanId: hex(s['parentSpanId'] as Uint8Array),
              traceState: (s['traceState'] as string | undefined) ?? '',
              name: s['name'] as string,
              kind: (s['kind'] as number | undefined) ?? 0,
              startNs: BigInt((s['startTimeUnixNano'] as string | undefined) ?? 0),
              endNs: BigInt((s['endTimeUnixNano'] as string | undefined) ?? 0),
              attributes: attrs(s['attributes'] as Array<{ key: string; value?: AnyValue }>),
              events: ((s['events'] as Array<{ name: string; attributes?: Array<{ key: string; value?: AnyValue }> }> | undefined) ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
              status: (s['status'] as { code?: number } | undefined)?.code ?? 0,
              resource,
            });
          }
        }
      }
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    posts,
    until: (pred, timeoutMs = 30_000) => new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(spans)) return;
        waiters.delete(check);
        clearTimeout(t);
        resolve(spans);
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`OTLP receiver: condition not met after ${timeoutMs} ms (${spans.length} spans: ${spans.map((s) => s.name).join(', ')})`));
      }, timeoutMs);
      waiters.add(check);
      check();
    }),
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

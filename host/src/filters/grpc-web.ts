/**
 * `type "grpc-web"`: lets browsers call gRPC services. A request with content-type
 * application/grpc-web[+proto] or application/grpc-web-text[+proto] goes upstream as gRPC
 * (application/grpc[+proto], `te: trailers`, the -text body base64-decoded); the response
 * goes back as gRPC-Web: its content-type, the body base64-encoded for -text, and the
 * trailers appended as a final frame (flag 0x80, `name:value\r\n` lines), because browsers
 * cannot read HTTP trailers. A trailers-only gRPC response keeps its status in the headers,
 * which gRPC-Web clients read the same way. Other requests pass through untouched.
 */
import type { FilterConfig } from '../config/types.ts';
import type { BodyChunk, HeaderMap, Phase, RequestContext } from '../pipeline/phases.ts';
import { responseTrailers } from '../pipeline/trailers.ts';

const STREAM = Object.freeze({ mode: 'stream' as const });
const GRPC_WEB = /^application\/grpc-web(-text)?(\+[a-z0-9.-]+)?\s*(;.*)?$/i;

interface State {
  text: boolean;
  /** +proto, +json, ... kept across the translation. */
  suffix: string;
  /** Undecoded base64 of the request (not a multiple of 4 yet). */
  inCarry: string;
  /** Response bytes not yet base64-encoded (not a multiple of 3 yet). */
  outCarry: Buffer;
}

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The trailer frame: 0x80, length, then `name:value\r\n` per trailer. */
export function trailerFrame(trailers: Record<string, string | string[] | undefined>): Buffer {
  let text = '';
  for (const k of Object.keys(trailers)) {
    const v = trailers[k];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) text += `${k.toLowerCase()}:${one}\r\n`;
  }
  const body = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export function grpcWebFilter(cfg: FilterConfig): Phase {
  const phase: Phase = {
    name: cfg.name,
    kind: 'builtin:grpc-web',
    failureMode: cfg.failureMode,
    requestBody: STREAM,
    responseBody: STREAM,
    onRequestHeaders(ctx: RequestContext) {
      const h = ctx.request.headers;
      const m = GRPC_WEB.exec(first(h, 'content-type') ?? '');
      if (!m) return;
      const st: State = { text: m[1] !== undefined, suffix: m[2] ?? '', inCarry: '', outCarry: Buffer.alloc(0) };
      ctx.filterState.set(phase, st);
      h['content-type'] = `application/grpc${st.suffix}`;
      h['te'] = 'trailers';
      if (st.text && h['content-length'] !== undefined) {
        // Decoding changes the length. Transfer-Encoding (hop-by-hop, never forwarded) keeps
        // telling the exchange that a body follows.
        delete h['content-length'];
        h['transfer-encoding'] = 'chunked';
      }
    },
    onRequestBody(ctx: RequestContext, chunk: BodyChunk) {
      const st = ctx.filterState.get(phase) as State | undefined;
      if (!st?.text) return;
      // Decode whole 4-character groups; keep the rest for the next chunk.
      const s = st.inCarry + Buffer.from(chunk.data).toString('latin1').replace(/[\r\n]/g, '');
      const n = chunk.end ? s.length : s.length - (s.length % 4);
      st.inCarry = s.slice(n);
      return Buffer.from(s.slice(0, n), 'base64');
    },
    onResponseHeaders(ctx: RequestContext) {
      const st = ctx.filterState.get(phase) as State | undefined;
      const res = ctx.response;
      if (!st || !res) return;
      // The client's own spelling (with or without +proto) comes back.
      res.headers['content-type'] = `application/grpc-web${st.text ? '-text' : ''}${st.suffix}`;
      delete res.headers['content-length'];
    },
    onResponseBody(ctx: RequestContext, chunk: BodyChunk) {
      const st = ctx.filterState.get(phase) as State | undefined;
      if (!st) return;
      let out = Buffer.from(chunk.data);
      if (chunk.end) {
        const t = responseTrailers(ctx);
        if (t && Object.keys(t).length > 0) out = Buffer.concat([out, trailerFrame(t)]);
      }
      if (!st.text) return out;
      // Base64 in whole 3-byte groups so the client sees one continuous encoding.
      const all = st.outCarry.length ? Buffer.concat([st.outCarry, out]) : out;
      const n = chunk.end ? all.length : all.length - (all.length % 3);
      st.outCarry = all.subarray(n);
      return Buffer.from(all.subarray(0, n).toString('base64'), 'latin1');
    },
  };
  return phase;
}

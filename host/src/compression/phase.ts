/**
 * Response compression as a host built-in Phase (a route's `policies { compression {} }`).
 * It sits before the cache in the chain, so on the response it runs after the cache: entries
 * are stored identity and compressed on the way out to each client.
 *
 *   on-response-headers: eligible (status, type, size, not already encoded, no `no-transform`,
 *     not HEAD) → `Vary: Accept-Encoding`; a negotiated encoding → Content-Encoding set,
 *     Content-Length dropped, a strong ETag weakened, Accept-Ranges removed.
 *   on-response-body: chunks go through a zlib stream; the exchange waits for each result
 *     (and for the client to drain), so a slow client slows the origin instead of filling memory.
 *   transformLocal: a local reply (cache hit, error) is compressed in one go.
 */
import type { Transform } from 'node:stream';
import type { BodyChunk, HeaderMap, Phase, RequestContext } from '../pipeline/phases.ts';
import { LOCAL_STREAM_PROPERTY } from '../pipeline/phases.ts';
import { compressSync, compressor, negotiate, type Encoding } from './negotiate.ts';
import type { CompressionSettings } from './settings.ts';

interface State {
  readonly encoding: Encoding;
  z: Transform | undefined;
  out: Buffer[];
  error: Error | undefined;
}

const STREAM = Object.freeze({ mode: 'stream' as const });
const NO_BODY = Object.freeze({ mode: 'none' as const });

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function typeMatches(contentType: string | undefined, patterns: readonly string[]): boolean {
  if (!contentType) return false;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return patterns.some((p) => (p.endsWith('/*') ? t.startsWith(p.slice(0, -1)) : t === p));
}

function addVary(h: HeaderMap): void {
  const v = first(h, 'vary');
  if (!v) h['vary'] = 'Accept-Encoding';
  else if (v.trim() !== '*' && !v.split(',').some((x) => x.trim().toLowerCase() === 'accept-encoding')) h['vary'] = `${v}, Accept-Encoding`;
}

/** Builds the compression phase of one route. */
export function compressionPhase(routeName: string, cs: CompressionSettings): Phase {
  /** Decides for the response head in ctx and rewrites it; the chosen encoding or undefined. */
  const decide = (ctx: RequestContext): Encoding | undefined => {
    const res = ctx.response;
    if (!res || ctx.request.method === 'HEAD' || ctx.properties.has(LOCAL_STREAM_PROPERTY)) return undefined;
    const s = res.status;
    if (s < 200 || s === 204 || s === 206 || s === 304) return undefined;
    const h = res.headers;
    const ce = first(h, 'content-encoding');
    if (ce && ce.trim().toLowerCase() !== 'identity') return undefined;
    if (/(^|,)\s*no-transform\s*(,|$)/i.test(first(h, 'cache-control') ?? '')) return undefined;
    if (!typeMatches(first(h, 'content-type'), cs.contentTypes)) return undefined;
    const len = first(h, 'content-length');
    if (len !== undefined && Number(len) < cs.minSize) return undefined;
    addVary(h);
    const enc = negotiate(first(ctx.request.headers, 'accept-encoding'), cs.encodings);
    if (!enc) return undefined;
    h['content-encoding'] = enc;
    delete h['content-length'];
    delete h['accept-ranges'];
    const etag = first(h, 'etag');
    if (etag && !etag.startsWith('W/')) h['etag'] = `W/${etag}`;
    return enc;
  };

  const phase: Phase = {
    name: `compression:${routeName}`,
    kind: 'builtin:compression',
    failureMode: 'closed',
    requestBody: NO_BODY,
    responseBody: STREAM,

    onResponseHeaders(ctx) {
      const enc = decide(ctx);
      if (enc) ctx.filterState.set(phase, { encoding: enc, z: undefined, out: [], error: undefined } satisfies State);
      return undefined;
    },

    onResponseBody(ctx, chunk: BodyChunk) {
      const st = ctx.filterState.get(phase) as State | undefined;
      if (!st) return undefined;
      if (!st.z) {
        const z = compressor(st.encoding, cs.levels);
        st.z = z;
        z.on('data', (c: Buffer) => st.out.push(c));
        z.on('error', (err: Error) => (st.error = err));
      }
      const z = st.z;
      const take = (): Buffer => {
        const b = st.out.length === 1 ? st.out[0]! : Buffer.concat(st.out);
        st.out = [];
        return b;
      };
      return new Promise<Uint8Array>((resolve, reject) => {
        const done = (): void => (st.error ? reject(st.error) : resolve(take()));
        if (chunk.end) {
          z.once('end', done);
          z.once('error', reject);
          z.end(chunk.data);
        } else if (chunk.data.length === 0) resolve(take());
        else z.write(chunk.data, done);
      });
    },

    transformLocal(ctx, body) {
      if (body.length === 0) return body;
      let st = ctx.filterState.get(phase) as State | undefined;
      if (!st) {
        const enc = decide(ctx);
        if (!enc) return body;
        st = { encoding: enc, z: undefined, out: [], error: undefined };
      }
      return compressSync(st.encoding, body, cs.levels);
    },

    onLog(ctx) {
      const st = ctx.filterState.get(phase) as State | undefined;
      // An exchange that ended early (client gone, upstream reset) leaves the stream open.
      if (st?.z && !st.z.writableFinished) st.z.destroy();
    },
  };
  return phase;
}

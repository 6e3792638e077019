/**
 * `static-files { root; index; fallback; precompressed; cache-control }`: a route answered from
 * a directory, as a host built-in Phase (last in the chain, so the route's filters run first).
 *
 * The request path is already normalised at the edge (no dot segments, no encoded slashes by
 * default); it is percent-decoded, joined to the root and resolved with realpath, and anything
 * that lands outside the root (a symlink pointing out, a NUL) is a 404. Files stream from disk
 * with ETag / Last-Modified, conditional GET (304), one byte range (206 / 416) and a MIME type
 * from `mime-types`; `precompressed` serves a `.br` / `.zst` / `.gz` sibling the client accepts.
 */
import { createReadStream, realpathSync, statSync, type Stats } from 'node:fs';
import { extname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import mime from 'mime-types';
import type { ConfigNode } from '../config/types.ts';
import type { HeaderMap, LocalReply, Phase, RequestContext } from '../pipeline/phases.ts';
import { arg, child, stringArg } from '../filters/settings.ts';
import { errorReply, errorStatus, type ErrorFormat } from '../error-body.ts';
import { multipart, notModified, notModifiedHeaders, selectRange } from '../representation/select.ts';
import { negotiate, type Encoding } from '../compression/negotiate.ts';

export interface StaticSettings {
  readonly root: string;
  readonly index: string;
  readonly fallback: string | undefined;
  readonly precompressed: boolean;
  readonly cacheControl: string | undefined;
  /** The route's `service-type` error format. */
  readonly errorFormat: ErrorFormat;
}

const SIBLINGS: Readonly<Record<Encoding, string>> = { br: '.br', zstd: '.zst', gzip: '.gz' };
const NO_BODY = Object.freeze({ mode: 'none' as const });

/** A route's `static-files` block, or undefined. */
export function staticSettings(routeNode: ConfigNode | undefined): StaticSettings | undefined {
  const n = routeNode ? child(routeNode, 'static-files') : undefined;
  if (!n) return undefined;
  return {
    root: stringArg(n, 'root') ?? '.',
    index: stringArg(n, 'index') ?? 'index.html',
    fallback: stringArg(n, 'fallback'),
    precompressed: arg(n, 'precompressed') === true,
    cacheControl: stringArg(n, 'cache-control'),
    errorFormat: ['web', 'static'].includes(stringArg(routeNode!, 'service-type') ?? '') ? 'html' : 'json',
  };
}

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function error(ctx: RequestContext, code: 'WEIR_ERR_FILE_NOT_FOUND' | 'WEIR_ERR_METHOD_NOT_ALLOWED', format: ErrorFormat, extra: Record<string, string> = {}): LocalReply {
  const { body, contentType } = errorReply(code, ctx.id, format);
  return { status: errorStatus(code), headers: { 'content-type': contentType, ...extra }, body };
}

/** Builds the static-files phase of one route. */
export function staticPhase(routeName: string, s: StaticSettings): Phase {
  // The root as the filesystem sees it (symlinks resolved once); every file must be inside it.
  const root = realpathSync(s.root);
  const inside = (p: string): boolean => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

  /** The real path of a regular file for a URL path, following `index`, or undefined. */
  const resolve = (urlPath: string): { file: string; stat: Stats } | undefined => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0') || decoded.split('/').includes('..')) return undefined;
    let candidate = join(root, decoded);
    try {
      let real = realpathSync(candidate);
      if (!inside(real)) return undefined;
      let st = statSync(real);
      if (st.isDirectory()) {
        candidate = join(real, s.index);
        real = realpathSync(candidate);
        if (!inside(real)) return undefined;
        st = statSync(real);
      }
      return st.isFile() ? { file: real, stat: st } : undefined;
    } catch {
      return undefined;
    }
  };

  const serve = (ctx: RequestContext, file: string, st: Stats): LocalReply => {
    const h: HeaderMap = {
      'content-type': mime.contentType(extname(file)) || 'application/octet-stream',
      etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
      'last-modified': st.mtime.toUTCString(),
      'accept-ranges': 'bytes',
    };
    if (s.cacheControl) h['cache-control'] = s.cacheControl;
    const req = ctx.request.headers;
    let path = file;
    let size = st.size;
    if (s.precompressed) {
      h['vary'] = 'Accept-Encoding';
      const offered = (Object.keys(SIBLINGS) as Encoding[]).filter((e) => {
        try {
          const sib = realpathSync(file + SIBLINGS[e]);
          return inside(sib) && statSync(sib).isFile();
        } catch {
          return false;
        }
      });
      const enc = negotiate(first(req, 'accept-encoding'), offered);
      if (enc) {
        path = file + SIBLINGS[enc];
        size = statSync(path).size;
        h['content-encoding'] = enc;
        h['etag'] = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}-${enc}"`;
      }
    }
    if (notModified(req, h)) return { status: 304, headers: notModifiedHeaders(h) as Record<string, string> };
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (ctx.request.method === 'GET') {
      const r = selectRange(req, h, size);
      if (r.kind === 'unsatisfiable') return { status: 416, headers: { 'content-range': `bytes */${size}` } };
      if (r.kind === 'multi') {
        const mp = multipart(r.ranges, size, h['content-type'] as string | undefined);
        h['content-type'] = mp.contentType;
        // The parts are read from the file one after the other, each streamed.
        const open = (): Readable => Readable.from((async function* () {
          for (const p of mp.parts) {
            yield p.head;
            yield* createReadStream(path, { start: p.start, end: p.end });
          }
          yield mp.tail;
        })());
        return { status: 206, headers: h as Record<string, string>, stream: { length: mp.length, open } };
      }
      if (r.kind === 'partial') {
        ({ start, end } = r);
        status = 206;
        h['content-range'] = `bytes ${start}-${end}/${size}`;
      }
    }
    const length = size === 0 ? 0 : end - start + 1;
    return { status, headers: h as Record<string, string>, stream: { length, open: () => createReadStream(path, length === 0 ? { start: 0, end: -1 } : { start, end }) } };
  };

  return {
    name: `static-files:${routeName}`,
    kind: 'builtin:static-files',
    failureMode: 'closed',
    requestBody: NO_BODY,
    responseBody: NO_BODY,
    onRequestHeaders(ctx) {
      const m = ctx.request.method;
      if (m !== 'GET' && m !== 'HEAD') return error(ctx, 'WEIR_ERR_METHOD_NOT_ALLOWED', s.errorFormat, { allow: 'GET, HEAD' });
      const found = resolve(ctx.request.path) ?? (s.fallback !== undefined ? resolve(`/${s.fallback}`) : undefined);
      if (!found) return error(ctx, 'WEIR_ERR_FILE_NOT_FOUND', s.errorFormat);
      return serve(ctx, found.file, found.stat);
    },
  };
}

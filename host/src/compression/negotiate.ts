/** Accept-Encoding negotiation (RFC 9110 §12.5.3) and the codecs Node's zlib provides. */
import zlib from 'node:zlib';

export const ENCODINGS = ['br', 'zstd', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/**
 * The encoding to use: the client's highest q-value among `offered`, ties going to the
 * earlier in `offered`; `*` stands for any encoding not named; q=0 refuses. Undefined = identity.
 */
export function negotiate(acceptEncoding: string | undefined, offered: readonly Encoding[]): Encoding | undefined {
  if (!acceptEncoding) return undefined;
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) weight = Math.min(1, Number(m[1]));
    }
    if (Number.isFinite(weight)) q.set(name === 'x-gzip' ? 'gzip' : name, weight);
  }
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const e of offered) {
    const w = q.get(e) ?? q.get('*') ?? 0;
    if (w > bestQ) {
      best = e;
      bestQ = w;
    }
  }
  return best;
}

export interface Levels {
  readonly gzip: number;
  readonly br: number;
  readonly zstd: number;
}

/** A streaming compressor for `e`. */
export function compressor(e: Encoding, levels: Levels): zlib.Gzip | zlib.BrotliCompress | zlib.ZstdCompress {
  switch (e) {
    case 'gzip':
      return zlib.createGzip({ level: levels.gzip });
    case 'br':
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: levels.br } });
    case 'zstd':
      return zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: levels.zstd } });
  }
}

/** Compresses a whole body at once (local replies, cache hits). */
export function compressSync(e: Encoding, body: Uint8Array, levels: Levels): Buffer {
  switch (e) {
    case 'gzip':
      return zlib.gzipSync(body, { level: levels.gzip });
    case 'br':
      return zlib.brotliCompressSync(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: levels.br, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
    case 'zstd':
      return zlib.zstdCompressSync(body, { params: { [zlib.constants.ZSTD_c_compressionLevel]: levels.zstd } });
  }
}

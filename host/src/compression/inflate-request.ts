/**
 * Request body decompression for inspection (body hooks, a WAF's body rules): undoes the
 * request's Content-Encoding (gzip, deflate, br, zstd, several in order) with two caps, so a
 * small body that inflates to gigabytes (a zip bomb) is refused instead of inflated:
 *
 *   - `maxBytes`: the inflated body may not exceed this;
 *   - `maxRatio`: nor this many times the bytes received.
 *
 * Each stage runs through node:zlib with `maxOutputLength` set to what is left of the
 * smaller cap, so zlib stops as soon as it is crossed: a 48 KB gzip of 50 MB of zeros under
 * a 1 MiB cap inflates at most ~1 MiB before it is refused. Refusals are WeirErrors:
 * WEIR_ERR_DECOMPRESSION_LIMIT (413) past a cap, WEIR_ERR_BODY_ENCODING (415) for an encoding
 * Weir does not decode or data that is not what it claims.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { WeirError } from '../errors.ts';

export interface InflateLimits {
  /** Largest inflated body, bytes. */
  readonly maxBytes: number;
  /** Largest inflated / received size ratio. */
  readonly maxRatio: number;
}

type Decoder = (buf: Uint8Array, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

const gunzip = promisify(zlib.gunzip) as Decoder;
const inflate = promisify(zlib.inflate) as Decoder;
const inflateRaw = promisify(zlib.inflateRaw) as Decoder;
const brotli = promisify(zlib.brotliDecompress) as Decoder;
const zstd = promisify(zlib.zstdDecompress) as Decoder;

/** `deflate` is the zlib format (RFC 9110 §8.4.1.2); some clients send raw deflate, which is accepted too. */
const deflate: Decoder = (buf, opts) => inflate(buf, opts).catch((err: NodeJS.ErrnoException) => (err.code === 'Z_DATA_ERROR' ? inflateRaw(buf, opts) : Promise.reject(err)));

const DECODERS: Record<string, Decoder> = { gzip: gunzip, 'x-gzip': gunzip, deflate, br: brotli, zstd };

/** The encodings of a Content-Encoding value, outermost last (as applied), `identity` dropped. */
export function contentCodings(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const list = (Array.isArray(value) ? value.join(',') : value).split(',');
  return list.map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
}

/** True when Weir can decode every coding of this Content-Encoding value. */
export function decodable(value: string | string[] | undefined): boolean {
  return contentCodings(value).every((c) => c in DECODERS);
}

/**
 * The body with its Content-Encoding undone, within `limits`. An empty list of codings
 * returns the body as it is.
 */
export async function inflateRequestBody(body: Uint8Array, contentEncoding: string | string[] | undefined, limits: InflateLimits): Promise<Buffer> {
  const codings = contentCodings(contentEncoding);
  let out = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (codings.length === 0) return out;
  const cap = Math.min(limits.maxBytes, Math.floor(body.byteLength * limits.maxRatio));
  for (const c of codings.reverse()) {
    const decode = DECODERS[c];
    if (!decode) throw new WeirError('WEIR_ERR_BODY_ENCODING', `request Content-Encoding "${c}" is not one Weir decodes (gzip, deflate, br, zstd)`);
    try {
      out = await decode(out, { maxOutputLength: Math.max(1, cap) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw new WeirError('WEIR_ERR_DECOMPRESSION_LIMIT', `request body inflates past ${cap} bytes (${body.byteLength} received; limits: ${limits.maxBytes} bytes, ratio ${limits.maxRatio})`);
      }
      throw new WeirError('WEIR_ERR_BODY_ENCODING', `request body is not valid ${c} data: ${(err as Error).message}`);
    }
  }
  return out;
}

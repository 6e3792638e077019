/**
 * The WIT interface `crypto` (wit/weir.wit): digests, HMAC, constant-time comparison,
 * base64url and JWS signature verification against a JWK, all by node:crypto (OpenSSL), and
 * password hashes (bcrypt by bcryptjs, SHA-crypt by unixcrypt), so plugins carry no
 * hand-written crypto. Stateless: one object serves every instance.
 * Fuel is charged per byte by deadline.ts like every host call.
 */
import { createHash, createHmac, createPublicKey, constants, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { HostImports } from '../../generated/codec.ts';
import type * as W from '../../generated/types.ts';

export type CryptoImports = Pick<HostImports, 'digest' | 'hmac' | 'constantTimeEqual' | 'base64urlEncode' | 'base64urlDecode' | 'verifySignature' | 'passwordVerify'>;

/** What each signature algorithm needs: the digest, the key type (and curve), the padding. */
const SIG: Record<W.SignatureAlgorithm, { hash: string | null; kty: string; crv?: string; pss?: boolean }> = {
  rs256: { hash: 'sha256', kty: 'RSA' },
  rs384: { hash: 'sha384', kty: 'RSA' },
  rs512: { hash: 'sha512', kty: 'RSA' },
  ps256: { hash: 'sha256', kty: 'RSA', pss: true },
  es256: { hash: 'sha256', kty: 'EC', crv: 'P-256' },
  es384: { hash: 'sha384', kty: 'EC', crv: 'P-384' },
  'ed-dsa': { hash: null, kty: 'OKP', crv: 'Ed25519' },
};

/** Parsed keys by JWK text: a plugin verifies against the same few keys again and again. */
const keys = new Map<string, KeyObject>();
const MAX_KEYS = 256;

function publicKey(jwk: string): KeyObject {
  let k = keys.get(jwk);
  if (k) return k;
  const parsed = JSON.parse(jwk) as JsonWebKey;
  if (parsed === null || typeof parsed !== 'object') throw new Error('the JWK is not a JSON object');
  // A private JWK also carries the public half; only that is kept.
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = parsed;
  k = createPublicKey({ key: pub, format: 'jwk' });
  if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value!);
  keys.set(jwk, k);
  return k;
}

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const SHA_CRYPT = /^\$([56])\$(?:rounds=(\d+)\$)?([^$]{0,16})\$([./A-Za-z0-9]+)$/;
/** SHA-crypt's `rounds=` allows 10^9; past this one hash would hold the proxy thread for seconds. */
export const SHA_CRYPT_MAX_ROUNDS = 100_000;

/**
 * password-verify: bcrypt through bcryptjs's asynchronous compare, which works in slices and
 * lets the event loop run between them (cost 10 is ≈ 100 ms of CPU here); SHA-crypt through
 * unixcrypt (5,000 rounds by default: a few ms), compared in constant time. The libraries
 * load on first use.
 */
async function passwordVerify(password: Uint8Array, hash: string): Promise<{ tag: 'ok'; val: boolean } | { tag: 'err'; val: string }> {
  const pw = Buffer.from(password.buffer, password.byteOffset, password.byteLength).toString('utf8');
  if (BCRYPT.test(hash)) {
    const bcrypt = (await import('bcryptjs')).default;
    return { tag: 'ok', val: await bcrypt.compare(pw, hash) };
  }
  const m = SHA_CRYPT.exec(hash);
  if (m) {
    if (m[2] !== undefined && Number(m[2]) > SHA_CRYPT_MAX_ROUNDS) return { tag: 'err', val: `SHA-crypt rounds=${m[2]} is more than ${SHA_CRYPT_MAX_ROUNDS}` };
    const { encrypt } = await import('unixcrypt');
    const want = Buffer.from(hash);
    const got = Buffer.from(encrypt(pw, hash.slice(0, hash.lastIndexOf('$'))));
    return { tag: 'ok', val: got.length === want.length && timingSafeEqual(got, want) };
  }
  return { tag: 'err', val: 'not a bcrypt ($2a$, $2b$, $2y$) or SHA-crypt ($5$, $6$) hash' };
}

export const hostCrypto: CryptoImports = {
  digest: (algorithm, data) => createHash(algorithm).update(data).digest(),
  hmac: (algorithm, key, data) => createHmac(algorithm, key).update(data).digest(),
  constantTimeEqual: (a, b) => a.length === b.length && timingSafeEqual(a, b),
  base64urlEncode: (data) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64url'),
  base64urlDecode: (text) => {
    // Node's decoder skips what is not base64; the WIT promises none for such text.
    if (!B64URL.test(text) || text.replace(/=+$/, '').length % 4 === 1) return undefined;
    return Buffer.from(text, 'base64url');
  },
  passwordVerify,
  verifySignature: (algorithm, jwk, data, signature) => {
    const s = SIG[algorithm];
    let key: KeyObject;
    try {
      key = publicKey(jwk);
    } catch (err) {
      return { tag: 'err', val: `not a usable JWK: ${(err as Error).message}` };
    }
    const kj = key.export({ format: 'jwk' });
    if (kj.kty !== s.kty || (s.crv !== undefined && kj.crv !== s.crv)) {
      return { tag: 'err', val: `${algorithm} needs a ${s.kty}${s.crv ? ` ${s.crv}` : ''} key, the JWK is ${kj.kty}${kj.crv ? ` ${kj.crv}` : ''}` };
    }
    try {
      const ok = verify(s.hash, data, s.pss
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : s.kty === 'EC' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
      return { tag: 'ok', val: ok };
    } catch {
      // A signature of the wrong length or shape does not verify.
      return { tag: 'ok', val: false };
    }
  },
};

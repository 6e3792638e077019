// Host cryptography (the WIT interface `crypto`): digests, HMAC, constant-time comparison,
// base64url, JWS signature verification against a JWK (the host's OpenSSL) and password hashes.
// Re-exported by the SDK's index, so `import { sha256, verifySignature } from "@weir/sdk-assemblyscript"`.

import * as abi from "./generated/abi";
import { HashAlgorithm, SignatureAlgorithm } from "./generated/abi";

export { HashAlgorithm, SignatureAlgorithm } from "./generated/abi";

/** The digest of `data` (SHA-256, -384 or -512). */
export function digest(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
  return abi.cryptoDigest(algorithm, data);
}

/** SHA-256 of `data` (32 bytes). */
export function sha256(data: Uint8Array): Uint8Array {
  return abi.cryptoDigest(HashAlgorithm.Sha256, data);
}

/** HMAC of `data` under `key`. */
export function hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array {
  return abi.cryptoHmac(algorithm, key, data);
}

/** HMAC-SHA-256 of `data` under `key` (32 bytes; JWS HS256). */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return abi.cryptoHmac(HashAlgorithm.Sha256, key, data);
}

/** Whether `a` and `b` are equal, in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): bool {
  return abi.cryptoConstantTimeEqual(a, b);
}

/** Base64url without padding. */
export function base64urlEncode(data: Uint8Array): string {
  return abi.cryptoBase64urlEncode(data);
}

/** The bytes of base64url text (padding optional); null if it is not base64url. */
export function base64urlDecode(text: string): Uint8Array | null {
  return abi.cryptoBase64urlDecode(text);
}

/** The answer of verifySignature: `valid`, or `error` when the key is unusable for the algorithm. */
export class Verification {
  constructor(public readonly valid: bool, public readonly error: string | null) {}
}

/**
 * Whether `signature` over `data` verifies with the public key `jwk` (one JWK as JSON text).
 * A signature that does not verify is `valid == false`; an unusable key sets `error`.
 */
export function verifySignature(algorithm: SignatureAlgorithm, jwk: string, data: Uint8Array, signature: Uint8Array): Verification {
  const r = abi.cryptoVerifySignature(algorithm, jwk, data, signature);
  return r.isErr ? new Verification(false, r.err) : new Verification(r.ok, null);
}

/**
 * Whether `password` matches `hash`, a bcrypt (`$2a$`, `$2b$`, `$2y$`) or SHA-crypt (`$5$`,
 * `$6$`) hash as htpasswd files hold them. The host hashes while the guest waits (suspended:
 * the plugin's hooks go through JSPI). An unknown hash form sets `error`.
 */
export function passwordVerify(password: Uint8Array, hash: string): Verification {
  const r = abi.cryptoPasswordVerify(password, hash);
  return r.isErr ? new Verification(false, r.err) : new Verification(r.ok, null);
}

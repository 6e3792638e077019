/**
 * Header names that look like another once `_` is read as `-` (CGI, WSGI, PHP and some
 * backends fold them): `Transfer_Encoding`, `Content_Length`, `X_Forwarded_For`. A backend
 * that folds would frame the body on, or believe, a header Weir never checked.
 */

/** Framing and connection headers: a look-alike of one makes the request refused (400). */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'keep-alive', 'proxy-connection']);

/** Headers Weir sets or believes: a look-alike of one is dropped before filters run. */
const MANAGED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip', 'x-request-id', 'via']);

function folded(name: string): string {
  return name.replace(/_/g, '-').toLowerCase();
}

/** True when `name` has a `_` and reads as a framing header with `_` → `-`. */
export function isFramingLookalike(name: string): boolean {
  return name.indexOf('_') !== -1 && FRAMING.has(folded(name));
}

/**
 * Removes look-alikes of the headers Weir manages and of `asserted` (headers filters assert)
 * from `headers` (lower-case names).
 */
export function dropManagedLookalikes(headers: Record<string, unknown>, asserted: readonly string[]): void {
  for (const k in headers) {
    if (k.indexOf('_') === -1) continue;
    const f = folded(k);
    if (MANAGED.has(f) || asserted.includes(f)) delete headers[k];
  }
}

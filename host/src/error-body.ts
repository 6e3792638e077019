/**
 * The body of every error reply Weir sends a client: the stable code, its status, the table's
 * short message and the request id. Nothing else: plugin trap text, fuel budgets, upstream
 * error strings, addresses and file paths stay in the log (WeirError.message and detail).
 */
import { ERRORS, type ErrorCode } from './errors.ts';

/** The status sent for `code` (500 for codes that never reach a client on their own). */
export function errorStatus(code: ErrorCode): number {
  return ERRORS[code].status || 500;
}

/** The short message a client is told for `code` (the table's, never the error's own). */
export function errorMessage(code: ErrorCode): string {
  return ERRORS[code].message;
}

/** How a route's error replies are written: JSON (the default), or HTML for `service-type "web"` / `"static"` routes. */
export type ErrorFormat = 'json' | 'html';

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/** The error reply for `code` in `format`: its body and content type (the same fields either way). */
export function errorReply(code: ErrorCode, requestId: string | undefined, format: ErrorFormat): { readonly contentType: string; readonly body: string } {
  if (format === 'json') return { contentType: 'application/json', body: errorBody(code, requestId) };
  const title = `${errorStatus(code)} ${escapeHtml(ERRORS[code].message)}`;
  // A client's X-Request-ID may be echoed here: it is escaped like everything else.
  const id = requestId ? `<p>Request ID: <code>${escapeHtml(requestId)}</code></p>` : '';
  return { contentType: 'text/html; charset=utf-8', body: `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p><code>${code}</code></p>${id}</body></html>\n` };
}

/** `{"error":{"code","status","message","request_id"}}` for `code`. */
export function errorBody(code: ErrorCode, requestId: string | undefined): string {
  return JSON.stringify({ error: { code, status: errorStatus(code), message: ERRORS[code].message, ...(requestId ? { request_id: requestId } : {}) } });
}

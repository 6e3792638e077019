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

/** `{"error":{"code","status","message","request_id"}}` for `code`. */
export function errorBody(code: ErrorCode, requestId: string | undefined): string {
  return JSON.stringify({ error: { code, status: errorStatus(code), message: ERRORS[code].message, ...(requestId ? { request_id: requestId } : {}) } });
}

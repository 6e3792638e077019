/**
 * Responses that end before the request body was all read (an origin answering 413 to an
 * upload without reading it). Nothing reads the rest of that body any more, so unless the
 * proxy ends the request side, the client stays blocked sending it until a timeout.
 *
 * - HTTP/1.1: the response carries `connection: close` (set when its head is written), and
 *   Node closes the connection once it is sent.
 * - HTTP/2 (one stream of a shared connection): the rest of the body is read and dropped,
 *   so the client can finish; if it is still sending after DISCARD_MS the stream is reset
 *   with NO_ERROR, which RFC 9113 §8.1 allows a server that has sent a complete response.
 */
import http2 from 'node:http2';
import type { Http2ServerRequest } from 'node:http2';
import type { IncomingMessage } from 'node:http';

/** How long an HTTP/2 client may go on sending a body nobody reads. */
const DISCARD_MS = 5_000;
/** Event-loop turns to wait for the END_STREAM frame to leave before resetting the stream. */
const MAX_FLUSH_TURNS = 100;

/** True when a response head written now must close an HTTP/1.1 connection. */
export function mustCloseH1(req: IncomingMessage | Http2ServerRequest, hasBody: boolean): boolean {
  return hasBody && req.httpVersionMajor === 1 && !req.complete;
}

/** After the response ended: let an HTTP/2 client finish (or stop) sending a body nobody reads. */
export function endUnreadH2Body(req: IncomingMessage | Http2ServerRequest): void {
  if (req.httpVersionMajor !== 2 || req.complete || req.destroyed) return;
  const stream = (req as Http2ServerRequest).stream;
  if (stream.destroyed || stream.closed) return;
  const timer = setTimeout(() => resetWhenSent(stream), DISCARD_MS).unref();
  stream.once('close', () => clearTimeout(timer));
  req.on('data', () => {});
  req.resume();
}

/**
 * Resets the stream with NO_ERROR, but only after our END_STREAM frame is out: a reset
 * submitted first would cut the response short.
 */
function resetWhenSent(stream: http2.ServerHttp2Stream, turns = 0): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.state.localClose !== 1 && turns < MAX_FLUSH_TURNS) return void setImmediate(() => resetWhenSent(stream, turns + 1));
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

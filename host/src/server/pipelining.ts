/**
 * HTTP/1.1 pipelining, one request at a time. Node's parser reads ahead and emits 'request'
 * for every pipelined request on a connection; dispatching each at once would send them to
 * the upstream concurrently (on separate pooled connections, out of order at the origin) and
 * let one client that never reads pin the whole pool. Like nginx and HAProxy, Weir starts a
 * request only once the responses before it are done, and stops reading the connection
 * while any request is held.
 *
 * Node already queues the responses of a connection: a response gets the socket (its
 * 'socket' event) when the one before it finished. A request whose response has no socket
 * yet is held until then, so a connection that does not pipeline pays nothing.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kHeld = Symbol('weir.pipelined-held');
/** `_paused` is Node's own flag for a connection it paused (too much unsent output). */
type HeldSocket = Socket & { [kHeld]?: number; _paused?: boolean };

/**
 * Runs `start` for this HTTP/1 request now if it is the connection's current one, else once
 * every response before it is done.
 */
export function inOrder(socket: Socket, res: ServerResponse, start: () => void): void {
  if (res.socket !== null) return start();
  const s = socket as HeldSocket;
  s[kHeld] = (s[kHeld] ?? 0) + 1;
  if (s[kHeld] === 1) s.pause();
  res.once('socket', () => {
    s[kHeld]! -= 1;
    if (s[kHeld] === 0 && !s.destroyed && !s._paused) s.resume();
    start();
  });
}

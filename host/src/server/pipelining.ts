/**
 * HTTP/1.1 pipelining, one request at a time. Node's parser reads ahead and emits 'request'
 * for every pipelined request on a connection; dispatching each at once would send them to
 * the upstream concurrently (on separate pooled connections, out of order at the origin) and
 * let one client that never reads pin the whole pool. Like nginx and HAProxy, Weir holds the
 * later requests of a connection until the response before them is done, and stops reading
 * the connection while any are held.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface Held {
  /** An exchange of this connection is in flight. */
  busy: boolean;
  readonly waiting: Array<() => void>;
  /** We paused the socket (and must resume it). */
  paused: boolean;
}

const kSerial = Symbol('weir.pipelining');
type SerialSocket = Socket & { [kSerial]?: Held };

/**
 * Runs `start` for this HTTP/1 request now if no earlier request of the same connection is
 * in flight, else once the earlier responses are done (finished or the response closed).
 */
export function inOrder(socket: Socket, res: ServerResponse, start: () => void): void {
  const s = socket as SerialSocket;
  const held = (s[kSerial] ??= { busy: false, waiting: [], paused: false });
  const run = (): void => {
    held.busy = true;
    let done = false;
    const next = (): void => {
      if (done) return;
      done = true;
      held.busy = false;
      // A closed connection answers none of its held requests: drop them unstarted.
      if (s.destroyed) held.waiting.length = 0;
      const f = held.waiting.shift();
      if (held.waiting.length === 0 && held.paused) {
        held.paused = false;
        if (!s.destroyed) s.resume();
      }
      if (f !== undefined) f();
    };
    res.once('finish', next);
    res.once('close', next);
    start();
  };
  if (!held.busy) return run();
  held.waiting.push(run);
  // Read no further while requests are held: the client must read its responses first.
  if (!held.paused) {
    held.paused = true;
    s.pause();
  }
}

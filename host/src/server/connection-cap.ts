/**
 * `system max-connections` (or its alias `server max-connections`): client connections open
 * at once over every listener of one Weir instance (one proxy thread). Node's per-server
 * `maxConnections` enforces `limits max-connections` on each listener; this caps their sum.
 * Over the cap a connection is closed at once, as Node does for its own cap.
 */
import type net from 'node:net';
import type { ProxyCore } from '../proxy/core.ts';

const open = new WeakMap<ProxyCore, { n: number }>();

/**
 * Counts `socket` against the instance's cap and returns true, or destroys it and returns
 * false when the cap (read from the current snapshot, so a reload applies) is reached.
 */
export function admitConnection(core: ProxyCore, socket: net.Socket): boolean {
  let count = open.get(core);
  if (!count) open.set(core, (count = { n: 0 }));
  if (count.n >= core.snapshot.config.system.maxConnections) {
    socket.destroy();
    return false;
  }
  count.n++;
  const c = count;
  socket.once('close', () => c.n--);
  return true;
}

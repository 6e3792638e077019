/**
 * `system max-connections` (or its alias `server max-connections`): client connections open
 * at once over every listener of one Weir instance (one proxy thread). Node's per-server
 * `maxConnections` enforces `limits max-connections` on each listener; this caps their sum.
 * `limits max-connections-per-client` caps the connections of one peer address the same way.
 * Over a cap a connection is closed at once, as Node does for its own cap.
 */
import type net from 'node:net';
import type { ProxyCore } from '../proxy/core.ts';

const open = new WeakMap<ProxyCore, { n: number; byPeer: Map<string, number> }>();

/**
 * Counts `socket` against the instance's cap and returns true, or destroys it and returns
 * false when the cap (read from the current snapshot, so a reload applies) is reached.
 */
export function admitConnection(core: ProxyCore, socket: net.Socket): boolean {
  let count = open.get(core);
  if (!count) open.set(core, (count = { n: 0, byPeer: new Map() }));
  const perPeer = core.snapshot.config.limits.maxConnectionsPerClient;
  const peer = socket.remoteAddress ?? '';
  const mine = count.byPeer.get(peer) ?? 0;
  if (count.n >= core.snapshot.config.system.maxConnections || (perPeer > 0 && mine >= perPeer)) {
    socket.destroy();
    return false;
  }
  count.n++;
  count.byPeer.set(peer, mine + 1);
  const c = count;
  socket.once('close', () => {
    c.n--;
    const left = (c.byPeer.get(peer) ?? 1) - 1;
    if (left > 0) c.byPeer.set(peer, left);
    else c.byPeer.delete(peer);
  });
  return true;
}

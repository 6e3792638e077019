/**
 * The real peer of an HTTP/2 session. Sessions sniffed on a shared h1/h2c port run over a
 * Duplex that has no remote address; the listener records the socket's peer on the session
 * and the exchange reads it back. It lives here so the proxy never imports the server.
 */
import type { Http2Session } from 'node:http2';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

const kPeer = Symbol.for('weir.peer');
type SessionWithPeer = Http2Session & { [kPeer]?: Peer };

/** Records the socket peer of a session handed over through a Duplex. */
export function setSessionPeer(session: Http2Session, peer: Peer): void {
  (session as SessionWithPeer)[kPeer] = peer;
}

/** The peer recorded by setSessionPeer, if any. */
export function sessionPeer(session: Http2Session | undefined): Peer | undefined {
  return (session as SessionWithPeer | undefined)?.[kPeer];
}

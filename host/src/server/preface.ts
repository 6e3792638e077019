/**
 * The HTTP/2 connection preface on the shared h1/h2c port. Bytes that begin like the
 * preface (`PRI `, a method HTTP/1.1 servers never accept, RFC 9113 §3.4) but are not it
 * are an HTTP/2 client with a broken preface: it gets a connection error in HTTP/2 terms,
 * GOAWAY(PROTOCOL_ERROR) (RFC 9113 §3.4, §5.4.1), not an HTTP/1.1 400 it cannot read.
 */

const PRI = Buffer.from('PRI ');

/** True when `buf` starts like the HTTP/2 preface (at least its first 4 bytes). */
export function looksLikePreface(buf: Buffer): boolean {
  return buf.length >= PRI.length && buf.subarray(0, PRI.length).equals(PRI);
}

/** A server preface (empty SETTINGS) then GOAWAY(last stream 0, PROTOCOL_ERROR). */
export function prefaceRefusal(): Buffer {
  const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
  const goaway = Buffer.alloc(9 + 8);
  goaway.writeUIntBE(8, 0, 3); // length
  goaway[3] = 0x7; // GOAWAY
  goaway.writeUInt32BE(0, 9); // last stream id
  goaway.writeUInt32BE(0x1, 13); // PROTOCOL_ERROR
  return Buffer.concat([settings, goaway]);
}

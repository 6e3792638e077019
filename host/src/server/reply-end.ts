/**
 * Where an HTTP/1.1 response relayed as raw bytes ends: the reply to a WebSocket upgrade the
 * origin refused (any status but 101) is passed to the client as the origin wrote it, and
 * the tunnel closes both connections at its end. Waiting for the origin to close instead
 * held the client and the target slot for as long as the origin kept the connection alive.
 */

/** Follows a response body's framing (Content-Length, chunked, or until close) from its head. */
export class ReplyEnd {
  private mode: 'done' | 'length' | 'chunked' | 'close';
  private left = 0;
  private chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';

  constructor(head: Buffer, status: number) {
    const text = head.toString('latin1');
    const te = /\r\ntransfer-encoding:[ \t]*([^\r\n]*)/i.exec(text)?.[1];
    const cl = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/i.exec(text)?.[1];
    if ((status >= 100 && status < 200) || status === 204 || status === 304) this.mode = 'done';
    else if (te && /(^|,)[ \t]*chunked[ \t]*$/i.test(te)) this.mode = 'chunked';
    else if (te) this.mode = 'close';
    else if (cl !== undefined) {
      this.left = Number(cl);
      this.mode = this.left === 0 ? 'done' : 'length';
    } else this.mode = 'close';
  }

  /** True once the whole body has been seen. */
  get done(): boolean {
    return this.mode === 'done';
  }

  /** Feeds body bytes as they are relayed; returns `done`. */
  push(chunk: Buffer): boolean {
    if (this.mode === 'length') {
      this.left -= chunk.length;
      if (this.left <= 0) this.mode = 'done';
    } else if (this.mode === 'chunked') {
      this.chunked(chunk);
    }
    return this.done;
  }

  private chunked(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.mode === 'chunked') {
      if (this.chunkState === 'data') {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n;
        i += n;
        if (this.left === 0) this.chunkState = 'data-end';
        continue;
      }
      // Size lines, the CRLF after data and trailer lines: read a line at a time.
      const nl = chunk.indexOf(10, i);
      if (nl === -1) {
        this.line += chunk.toString('latin1', i);
        if (this.line.length > 8192) this.mode = 'close'; // not chunked framing we can follow
        return;
      }
      const line = (this.line + chunk.toString('latin1', i, nl)).replace(/\r$/, '');
      this.line = '';
      i = nl + 1;
      if (this.chunkState === 'data-end') {
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size)) {
          this.mode = 'close';
        } else if (size === 0) {
          this.chunkState = 'trailer';
        } else {
          this.left = size;
          this.chunkState = 'data';
        }
      } else if (line === '') {
        this.mode = 'done';
      }
    }
  }
}

// Byte-level reading and writing of the wasm binary format (LEB128 and friends).

export class MeteringError extends Error {
  override name = 'MeteringError';
}

export class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  eof(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) throw new MeteringError(`unexpected end of data at offset ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new MeteringError(`LEB128 too long at offset ${this.pos}`);
    }
    return result;
  }

  // Signed LEBs are only skipped: instructions are copied verbatim.
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    throw new MeteringError(`LEB128 too long at offset ${this.pos}`);
  }

  // s33 block type: 0x40, a one-byte value type, or a type index.
  skipBlockType(): void {
    this.skipLeb(5);
  }

  skip(n: number): void {
    if (this.pos + n > this.end) throw new MeteringError(`unexpected end of data at offset ${this.pos}`);
    this.pos += n;
  }

  name(): string {
    const len = this.u32();
    const start = this.pos;
    this.skip(len);
    return new TextDecoder().decode(this.buf.subarray(start, start + len));
  }
}

export class Writer {
  private chunks: Uint8Array[] = [];
  private cur: number[] = [];
  length = 0;

  byte(b: number): this {
    this.cur.push(b);
    this.length++;
    return this;
  }

  u32(v: number): this {
    do {
      let b = v & 0x7f;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }

  s64(v: bigint): this {
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  bytes(data: Uint8Array): this {
    if (data.length === 0) return this;
    this.flush();
    this.chunks.push(data);
    this.length += data.length;
    return this;
  }

  name(s: string): this {
    const enc = new TextEncoder().encode(s);
    return this.u32(enc.length).bytes(enc);
  }

  private flush(): void {
    if (this.cur.length) {
      this.chunks.push(Uint8Array.from(this.cur));
      this.cur = [];
    }
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

export function u32Bytes(v: number): Uint8Array {
  return new Writer().u32(v).finish();
}

// A small JSON reader (RFC 8259) for JWT headers, claims and JWKS documents. Each value keeps
// the span of text it was read from, so a JWK can be handed to the host as written.

export const enum Kind { Null, Bool, Number, String, Array, Object }

export class Json {
  kind: Kind = Kind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Json[] = [];
  keys: string[] = [];
  values: Json[] = [];
  /** The text this value was read from. */
  start: i32 = 0;
  end: i32 = 0;

  /** Member `key` of an object; null if absent or not an object. */
  get(key: string): Json | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.values[i];
    return null;
  }

  /** Member `key` if it is a string, else null. */
  getString(key: string): string | null {
    const v = this.get(key);
    return v !== null && v.kind == Kind.String ? v.str : null;
  }
}

/** Nesting deeper than this is refused (a token or JWKS has no use for it). */
const MAX_DEPTH = 32;

class Reader {
  pos: i32 = 0;
  failed: bool = false;
  constructor(public text: string) {}

  fail(): Json {
    this.failed = true;
    return new Json();
  }

  space(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.pos++;
    }
  }

  value(depth: i32): Json {
    if (depth > MAX_DEPTH) return this.fail();
    this.space();
    if (this.pos >= this.text.length) return this.fail();
    const start = this.pos;
    const c = this.text.charCodeAt(this.pos);
    let v: Json;
    if (c == 123) v = this.object(depth);
    else if (c == 91) v = this.array(depth);
    else if (c == 34) {
      v = new Json();
      v.kind = Kind.String;
      v.str = this.string();
    } else if (c == 116 && this.word("true")) {
      v = new Json();
      v.kind = Kind.Bool;
      v.bool = true;
    } else if (c == 102 && this.word("false")) {
      v = new Json();
      v.kind = Kind.Bool;
    } else if (c == 110 && this.word("null")) {
      v = new Json();
    } else v = this.number();
    v.start = start;
    v.end = this.pos;
    return v;
  }

  word(w: string): bool {
    if (this.text.substr(this.pos, w.length) != w) return false;
    this.pos += w.length;
    return true;
  }

  number(): Json {
    const start = this.pos;
    const t = this.text;
    if (this.pos < t.length && t.charCodeAt(this.pos) == 45) this.pos++;
    const digits0 = this.pos;
    while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
    if (this.pos == digits0 || (t.charCodeAt(digits0) == 48 && this.pos - digits0 > 1)) return this.fail();
    if (this.pos < t.length && t.charCodeAt(this.pos) == 46) {
      this.pos++;
      const f = this.pos;
      while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
      if (this.pos == f) return this.fail();
    }
    if (this.pos < t.length && (t.charCodeAt(this.pos) == 101 || t.charCodeAt(this.pos) == 69)) {
      this.pos++;
      if (this.pos < t.length && (t.charCodeAt(this.pos) == 43 || t.charCodeAt(this.pos) == 45)) this.pos++;
      const e = this.pos;
      while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
      if (this.pos == e) return this.fail();
    }
    const v = new Json();
    v.kind = Kind.Number;
    v.num = parseFloat(t.slice(start, this.pos));
    return v;
  }

  string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = "";
    let run = this.pos;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 34) {
        out += t.slice(run, this.pos);
        this.pos++;
        return out;
      }
      if (c < 32) break;
      if (c != 92) {
        this.pos++;
        continue;
      }
      out += t.slice(run, this.pos);
      this.pos++;
      if (this.pos >= t.length) break;
      const e = t.charCodeAt(this.pos++);
      if (e == 34) out += "\"";
      else if (e == 92) out += "\\";
      else if (e == 47) out += "/";
      else if (e == 98) out += "\b";
      else if (e == 102) out += "\f";
      else if (e == 110) out += "\n";
      else if (e == 114) out += "\r";
      else if (e == 116) out += "\t";
      else if (e == 117) {
        if (this.pos + 4 > t.length) break;
        const code = I32.parseInt(t.substr(this.pos, 4), 16);
        if (isNaN(<f64>code) || !isHex4(t, this.pos)) break;
        out += String.fromCharCode(code);
        this.pos += 4;
      } else break;
      run = this.pos;
    }
    this.failed = true;
    return "";
  }

  array(depth: i32): Json {
    const v = new Json();
    v.kind = Kind.Array;
    this.pos++;
    this.space();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 93) {
      this.pos++;
      return v;
    }
    while (!this.failed) {
      v.items.push(this.value(depth + 1));
      this.space();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 93) return v;
      if (c != 44) return this.fail();
    }
    return v;
  }

  object(depth: i32): Json {
    const v = new Json();
    v.kind = Kind.Object;
    this.pos++;
    this.space();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 125) {
      this.pos++;
      return v;
    }
    while (!this.failed) {
      this.space();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 34) return this.fail();
      const key = this.string();
      this.space();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos++) != 58) return this.fail();
      // A repeated member name is ambiguous (which one did the issuer sign?): refused.
      if (v.keys.includes(key)) return this.fail();
      v.keys.push(key);
      v.values.push(this.value(depth + 1));
      this.space();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 125) return v;
      if (c != 44) return this.fail();
    }
    return v;
  }
}

function isDigit(c: i32): bool {
  return c >= 48 && c <= 57;
}

function isHex4(t: string, at: i32): bool {
  for (let i = at; i < at + 4; i++) {
    const c = t.charCodeAt(i);
    if (!(isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** The JSON value `text` holds, or null if it is not exactly one JSON value. */
export function parseJson(text: string): Json | null {
  const r = new Reader(text);
  const v = r.value(0);
  r.space();
  return r.failed || r.pos != text.length ? null : v;
}

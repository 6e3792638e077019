// Request parts as named parameters: query and form fields, cookies, JSON keys and string
// values (by key path), multipart fields. Names are what exclusions match (`query:q`,
// `body:user.bio`, `cookie:session`).
import { fullyDecode, isSpace } from "./text";

export class Param {
  /** `path`, `query:NAME`, `body:NAME`, `header:NAME`, `cookie:NAME`. */
  constructor(public name: string, public value: string, public isName: bool = false) {}
}

/** Set by a parser when the body is not what its content type says. */
export let parseError: string = "";

export function resetParseError(): void {
  parseError = "";
}

/** `a=1&b=2` into `prefix:NAME` parameters, decoded (with `+` as space); names are inspected too. */
export function parseUrlEncoded(text: string, prefix: string, out: Param[]): void {
  if (text.length == 0) return;
  const pairs = text.split("&");
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i];
    if (p.length == 0) continue;
    const eq = p.indexOf("=");
    const rawName = eq < 0 ? p : p.substring(0, eq);
    const name = fullyDecode(rawName, true);
    const value = eq < 0 ? "" : fullyDecode(p.substring(eq + 1), true);
    out.push(new Param(prefix + name, value));
    out.push(new Param(prefix + name, name, true));
  }
}

/** `Cookie: a=1; b=2` into `cookie:NAME` parameters (values percent-decoded). */
export function parseCookies(header: string, out: Param[]): void {
  const parts = header.split(";");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    if (p.length == 0) continue;
    const eq = p.indexOf("=");
    const name = eq < 0 ? p : p.substring(0, eq).trim();
    let value = eq < 0 ? "" : p.substring(eq + 1).trim();
    if (value.length >= 2 && value.charCodeAt(0) == 0x22 && value.charCodeAt(value.length - 1) == 0x22) value = value.substring(1, value.length - 1);
    out.push(new Param("cookie:" + name, fullyDecode(value, false)));
    out.push(new Param("cookie:" + name, name, true));
  }
}

// ---- JSON ----

const MAX_DEPTH = 64;

class JsonReader {
  i: i32 = 0;
  constructor(public s: string, public out: Param[]) {}

  fail(why: string): bool {
    if (parseError.length == 0) parseError = why + " at offset " + this.i.toString();
    return false;
  }

  ws(): void {
    while (this.i < this.s.length && isSpace(this.s.charCodeAt(this.i))) this.i++;
  }

  /** A string literal at `i` (the opening quote), unescaped; null if malformed. */
  str(): string | null {
    const s = this.s;
    const n = s.length;
    this.i++;
    // Most strings have no escape: one substring, no parts.
    let j = this.i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c == 0x22 || c == 0x5c) break;
      j++;
    }
    if (j < n && s.charCodeAt(j) == 0x22) {
      const v = s.substring(this.i, j);
      this.i = j + 1;
      return v;
    }
    const parts = new Array<string>(0);
    let start = this.i;
    while (this.i < n) {
      const c = s.charCodeAt(this.i);
      if (c == 0x22) {
        parts.push(s.substring(start, this.i));
        this.i++;
        return parts.join("");
      }
      if (c == 0x5c) {
        parts.push(s.substring(start, this.i));
        if (this.i + 1 >= n) return null;
        const e = s.charCodeAt(this.i + 1);
        if (e == 0x75) {
          if (this.i + 5 >= n) return null;
          const hex = s.substring(this.i + 2, this.i + 6);
          const v = <i32>parseInt(hex, 16);
          if (isNaN(<f64>parseInt(hex, 16))) return null;
          parts.push(String.fromCharCode(v));
          this.i += 6;
        } else {
          let ch = "";
          if (e == 0x6e) ch = "\n";
          else if (e == 0x74) ch = "\t";
          else if (e == 0x72) ch = "\r";
          else if (e == 0x62) ch = "\b";
          else if (e == 0x66) ch = "\f";
          else if (e == 0x22 || e == 0x5c || e == 0x2f) ch = String.fromCharCode(e);
          else return null;
          parts.push(ch);
          this.i += 2;
        }
        start = this.i;
        continue;
      }
      this.i++;
    }
    return null;
  }

  value(path: string, depth: i32): bool {
    if (depth > MAX_DEPTH) return this.fail("JSON nested deeper than " + MAX_DEPTH.toString());
    this.ws();
    const s = this.s;
    if (this.i >= s.length) return this.fail("JSON ends early");
    const c = s.charCodeAt(this.i);
    if (c == 0x7b) {
      this.i++;
      this.ws();
      if (this.i < s.length && s.charCodeAt(this.i) == 0x7d) {
        this.i++;
        return true;
      }
      while (true) {
        this.ws();
        if (this.i >= s.length || s.charCodeAt(this.i) != 0x22) return this.fail("JSON object key expected");
        const key = this.str();
        if (key === null) return this.fail("bad JSON string");
        const p = path.length == 0 ? key : path + "." + key;
        this.out.push(new Param("body:" + p, fullyDecode(key, false), true));
        this.ws();
        if (this.i >= s.length || s.charCodeAt(this.i) != 0x3a) return this.fail("JSON `:` expected");
        this.i++;
        if (!this.value(p, depth + 1)) return false;
        this.ws();
        if (this.i < s.length && s.charCodeAt(this.i) == 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < s.length && s.charCodeAt(this.i) == 0x7d) {
          this.i++;
          return true;
        }
        return this.fail("JSON `,` or `}` expected");
      }
    }
    if (c == 0x5b) {
      this.i++;
      this.ws();
      if (this.i < s.length && s.charCodeAt(this.i) == 0x5d) {
        this.i++;
        return true;
      }
      while (true) {
        if (!this.value(path, depth + 1)) return false;
        this.ws();
        if (this.i < s.length && s.charCodeAt(this.i) == 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < s.length && s.charCodeAt(this.i) == 0x5d) {
          this.i++;
          return true;
        }
        return this.fail("JSON `,` or `]` expected");
      }
    }
    if (c == 0x22) {
      const v = this.str();
      if (v === null) return this.fail("bad JSON string");
      // Applications often percent-decode what they read: match what they would see.
      this.out.push(new Param("body:" + path, fullyDecode(v, false)));
      return true;
    }
    // Numbers, true, false, null: nothing an injection can hide in.
    const start = this.i;
    while (this.i < s.length) {
      const d = s.charCodeAt(this.i);
      if ((d >= 0x30 && d <= 0x39) || d == 0x2d || d == 0x2b || d == 0x2e || d == 0x65 || d == 0x45 || (d >= 0x61 && d <= 0x7a)) this.i++;
      else break;
    }
    const word = s.substring(start, this.i);
    if (word.length == 0) return this.fail("JSON value expected");
    if (word == "true" || word == "false" || word == "null") return true;
    const f = parseFloat(word);
    if (isNaN(f)) return this.fail("bad JSON literal");
    return true;
  }
}

/** A JSON body's keys and string values as `body:PATH` parameters; false if it is not JSON. */
export function parseJson(text: string, out: Param[]): bool {
  const r = new JsonReader(text, out);
  if (!r.value("", 0)) return false;
  r.ws();
  if (r.i < text.length) return r.fail("data after the JSON value");
  return true;
}

// ---- multipart ----

/** The `boundary` parameter of a multipart content type, or "". */
export function boundaryOf(contentType: string): string {
  const lc = contentType.toLowerCase();
  const at = lc.indexOf("boundary=");
  if (at < 0) return "";
  let b = contentType.substring(at + 9);
  const semi = b.indexOf(";");
  if (semi >= 0) b = b.substring(0, semi);
  b = b.trim();
  if (b.length >= 2 && b.charCodeAt(0) == 0x22 && b.charCodeAt(b.length - 1) == 0x22) b = b.substring(1, b.length - 1);
  return b;
}

function dispositionParam(header: string, key: string): string | null {
  const lc = header.toLowerCase();
  let from = 0;
  while (true) {
    const at = lc.indexOf(key + "=", from);
    if (at < 0) return null;
    const before = at > 0 ? lc.charCodeAt(at - 1) : 0x3b;
    if (before == 0x3b || before == 0x20 || before == 0x09) {
      let v = header.substring(at + key.length + 1);
      if (v.startsWith("\"")) {
        const e = v.indexOf("\"", 1);
        return e < 0 ? v.substring(1) : v.substring(1, e);
      }
      const semi = v.indexOf(";");
      return (semi < 0 ? v : v.substring(0, semi)).trim();
    }
    from = at + 1;
  }
}

/**
 * multipart/form-data: each field's value as `body:NAME` (file parts: their file name, not
 * their content); false if the parts are not delimited by the boundary.
 */
export function parseMultipart(text: string, boundary: string, out: Param[]): bool {
  if (boundary.length == 0 || boundary.length > 200) {
    parseError = "multipart body without a usable boundary";
    return false;
  }
  const delim = "--" + boundary;
  let at = text.indexOf(delim);
  if (at < 0) {
    parseError = "multipart body without its boundary";
    return false;
  }
  let parts = 0;
  while (true) {
    let start = at + delim.length;
    if (text.startsWith("--", start)) return true;
    if (text.startsWith("\r\n", start)) start += 2;
    else if (text.startsWith("\n", start)) start += 1;
    const next = text.indexOf(delim, start);
    if (next < 0) {
      parseError = "multipart body ends without its closing boundary";
      return false;
    }
    let part = text.substring(start, next);
    if (part.endsWith("\r\n")) part = part.substring(0, part.length - 2);
    else if (part.endsWith("\n")) part = part.substring(0, part.length - 1);
    let headEnd = part.indexOf("\r\n\r\n");
    let sep = 4;
    if (headEnd < 0) {
      headEnd = part.indexOf("\n\n");
      sep = 2;
    }
    if (headEnd < 0) {
      parseError = "multipart part without headers";
      return false;
    }
    const head = part.substring(0, headEnd);
    const body = part.substring(headEnd + sep);
    const lines = head.split("\n");
    let name: string | null = null;
    let filename: string | null = null;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line.toLowerCase().startsWith("content-disposition:")) {
        name = dispositionParam(line, "name");
        filename = dispositionParam(line, "filename");
      }
    }
    const field = name === null ? "" : name;
    out.push(new Param("body:" + field, field, true));
    if (filename !== null) out.push(new Param("body:" + field, fullyDecode(filename, false)));
    else out.push(new Param("body:" + field, fullyDecode(body, false)));
    parts++;
    at = next;
  }
}

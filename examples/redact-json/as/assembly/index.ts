// redact-json: replaces the values of configured fields in JSON request bodies with
// "[redacted]", at any depth. Bodies that are not JSON pass unchanged. Bodies over `limit`
// get a 413 (see the README: the host enforces its own, larger, buffering limit too).
//
//   config {
//       fields "password" "card_number"  // at least one
//       limit 65536                      // optional, bytes (default 1 MiB, at most 8 MiB)
//   }
import {
  BodyDecision, BodyMode, Config, ConfigError, Hook, HttpContext, LogLevel, RootContext, header, log, registerPlugin, utf8,
} from "@weir/sdk-assemblyscript";

const DEFAULT_LIMIT: i64 = 1024 * 1024;
// The buffering limit declared to the host. `describe` runs before `configure`, so it
// cannot follow the config; `limit` is checked by the plugin below this ceiling.
const MAX_LIMIT: i64 = 8 * 1024 * 1024;
// Deeper documents are treated as not JSON (bounded recursion on a small wasm stack).
const MAX_DEPTH: i32 = 128;
const REDACTED = utf8("\"[redacted]\"");

function isHex(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** A validating JSON scanner that records the byte ranges of values to redact. */
class Scan {
  i: i32 = 0;
  ok: bool = true;
  starts: i32[] = [];
  ends: i32[] = [];
  constructor(private s: Uint8Array, private fields: Uint8Array[]) {}

  /** The byte at the cursor, or -1 at the end. */
  peek(): i32 {
    return this.i < this.s.length ? <i32>this.s[this.i] : -1;
  }
  ws(): void {
    let c = this.peek();
    while (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) {
      this.i++;
      c = this.peek();
    }
  }
  eat(b: i32): bool {
    if (this.peek() != b) return false;
    this.i++;
    return true;
  }
  digits(): i32 {
    const start = this.i;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.i++;
    return this.i - start;
  }
  fail(): bool {
    this.ok = false;
    return false;
  }
  /** A string starting at `"`; sets keyStart/keyEnd to the raw bytes between the quotes. */
  keyStart: i32 = 0;
  keyEnd: i32 = 0;
  string(): bool {
    if (!this.eat(0x22)) return this.fail();
    const start = this.i;
    while (true) {
      const c = this.peek();
      if (c < 0) return this.fail();
      if (c == 0x22) {
        this.keyStart = start;
        this.keyEnd = this.i;
        this.i++;
        return true;
      }
      if (c == 0x5c) {
        this.i++;
        const e = this.peek();
        if (e == 0x75) {
          this.i++;
          for (let k = 0; k < 4; k++) {
            if (!isHex(this.peek())) return this.fail();
            this.i++;
          }
        } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
          this.i++;
        } else return this.fail();
      } else if (c < 0x20) return this.fail();
      else this.i++;
    }
  }
  number(): bool {
    this.eat(0x2d);
    if (!this.eat(0x30) && this.digits() == 0) return this.fail();
    if (this.eat(0x2e) && this.digits() == 0) return this.fail();
    if (this.eat(0x65) || this.eat(0x45)) {
      if (!this.eat(0x2b)) this.eat(0x2d);
      if (this.digits() == 0) return this.fail();
    }
    return true;
  }
  literal(word: string): bool {
    for (let k = 0; k < word.length; k++) if (!this.eat(word.charCodeAt(k))) return this.fail();
    return true;
  }
  value(depth: i32): bool {
    if (depth > MAX_DEPTH) return this.fail();
    this.ws();
    const c = this.peek();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) {
      this.i++;
      this.ws();
      if (this.eat(0x5d)) return true;
      while (true) {
        if (!this.value(depth + 1)) return false;
        this.ws();
        if (this.eat(0x5d)) return true;
        if (!this.eat(0x2c)) return this.fail();
      }
    }
    if (c == 0x22) return this.string();
    if (c == 0x74) return this.literal("true");
    if (c == 0x66) return this.literal("false");
    if (c == 0x6e) return this.literal("null");
    if (c < 0) return this.fail();
    return this.number();
  }
  /** Keys compare raw (escapes are not decoded). */
  isField(start: i32, end: i32): bool {
    for (let f = 0; f < this.fields.length; f++) {
      const name = this.fields[f];
      if (name.length != end - start) continue;
      let same = true;
      for (let k = 0; k < name.length; k++) if (name[k] != this.s[start + k]) { same = false; break; }
      if (same) return true;
    }
    return false;
  }
  object(depth: i32): bool {
    this.i++;
    this.ws();
    if (this.eat(0x7d)) return true;
    while (true) {
      this.ws();
      if (!this.string()) return false;
      const hit = this.isField(this.keyStart, this.keyEnd);
      this.ws();
      if (!this.eat(0x3a)) return this.fail();
      this.ws();
      const start = this.i;
      const before = this.starts.length;
      if (!this.value(depth + 1)) return false;
      if (hit) {
        // The whole value goes: forget redactions found inside it.
        this.starts.length = before;
        this.ends.length = before;
        this.starts.push(start);
        this.ends.push(this.i);
      }
      this.ws();
      if (this.eat(0x7d)) return true;
      if (!this.eat(0x2c)) return this.fail();
    }
  }
}

/** The body with matching values replaced, or null when it is not JSON or nothing matched. */
function redact(body: Uint8Array, fields: Uint8Array[]): Uint8Array | null {
  const scan = new Scan(body, fields);
  if (!scan.value(0)) return null;
  scan.ws();
  const n = scan.starts.length;
  if (scan.i != body.length || n == 0) return null;
  let size = body.length;
  for (let k = 0; k < n; k++) size += REDACTED.length - (scan.ends[k] - scan.starts[k]);
  const out = new Uint8Array(size);
  let at = 0;
  let o = 0;
  for (let k = 0; k < n; k++) {
    out.set(body.subarray(at, scan.starts[k]), o);
    o += scan.starts[k] - at;
    out.set(REDACTED, o);
    o += REDACTED.length;
    at = scan.ends[k];
  }
  out.set(body.subarray(at), o);
  log(LogLevel.Debug, "redacted " + n.toString() + " value(s)");
  return out;
}

class RedactJson extends RootContext {
  fields: Uint8Array[] = [];
  limit: i64 = DEFAULT_LIMIT;

  constructor() {
    super("redact-json", "0.1.0");
    // Unlike the Rust SDK, a body mode does not add the hook: list it.
    this.hooks = [Hook.OnRequestBody];
    this.requestBody = BodyMode.buffered(<u32>MAX_LIMIT);
  }

  configure(config: Config): ConfigError | null {
    const l = config.child("limit");
    if (l !== null) {
      const v = config.getInt("limit", 0);
      if (v < 1 || v > MAX_LIMIT) return new ConfigError("`limit` must be an integer from 1 to 8388608 (bytes)", l.index);
      this.limit = v;
    }
    const fields = config.child("fields");
    if (fields === null) return new ConfigError("redact-json: `fields` is required");
    for (let i = 0; i < fields.args.length; i++) {
      const f = fields.args[i].asText;
      if (f === null || f.length == 0) return new ConfigError("`fields` arguments must be non-empty strings", fields.index);
      this.fields.push(utf8(f));
    }
    if (this.fields.length == 0) return new ConfigError("`fields` needs at least one field name", fields.index);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Redact(id, this);
  }
}

class Redact extends HttpContext {
  constructor(id: u64, private root: RedactJson) {
    super(id);
  }

  onRequestBody(chunk: Uint8Array, end: bool): BodyDecision {
    // Buffered: the whole body arrives in one call.
    if (<i64>chunk.length > this.root.limit) {
      return BodyDecision.respond(413, "{\"error\":\"body too large\",\"limit\":" + this.root.limit.toString() + "}", [header("content-type", "application/json")]);
    }
    const out = redact(chunk, this.root.fields);
    return out === null ? BodyDecision.continue() : BodyDecision.replace(out);
  }
}

registerPlugin(new RedactJson());

export * from "@weir/sdk-assemblyscript/exports";

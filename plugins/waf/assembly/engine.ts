// The inspection engine, independent of the proxy: parameters in, matches and a score out.
// index.ts feeds it the request; the same code is what the corpus measures.
import { Param } from "./parse";
import { Rule, commandInjection, hiddenFile, knownRule as ruleExists, osFile, rfi, rule, scannerAgent, scannerHeader, scriptingAgent, sqlMetaCount, sqlWord, traversal } from "./rules";
import { sqliShape } from "./sqli";
import {
  C_AT, C_BACKSLASH, C_COLON, C_DASH, C_DOLLAR, C_DOT, C_EQ, C_HASH, C_LT, C_NUL, C_PAREN, C_PIPE, C_PLUS, C_QUOTE, C_SEMI, C_SLASH,
  C_UNDERSCORE, C_AMP, badEncoding, charMask, fullyDecode, lower, percentDecode, resetBadEncoding, setOf, truncate,
} from "./text";
import { xss } from "./xss";

/** Longest matched data an audit entry or log line carries. */
export const DATA_MAX = 64;

export class Match {
  constructor(public rule: Rule, public param: string, public data: string) {}
}

/** `exclude rule=… route=… parameter=…`: each field empty (or 0) = any. */
export class Exclusion {
  constructor(public ruleId: i32, public cls: string, public route: string, public param: string) {}

  covers(m: Match, route: string): bool {
    if (this.ruleId != 0 && m.rule.id != this.ruleId) return false;
    if (this.cls.length > 0 && m.rule.cls != this.cls) return false;
    if (this.route.length > 0 && this.route != route) return false;
    if (this.param.length > 0) {
      if (this.param.endsWith("*")) return m.param.startsWith(this.param.substring(0, this.param.length - 1));
      return m.param == this.param;
    }
    return true;
  }

  /** An exclusion with only a route: the WAF is off there. */
  get wholeRoute(): bool {
    return this.ruleId == 0 && this.cls.length == 0 && this.param.length == 0 && this.route.length > 0;
  }
}

export const CLASSES: string[] = ["sqli", "xss", "traversal", "rfi", "rce", "protocol", "scanner"];

/** Headers whose values are structured by the protocol (inspected only for NUL). */
const STRUCTURED_HEADERS: string[] = [
  "accept", "accept-encoding", "accept-language", "accept-charset", "content-type", "content-length", "content-encoding", "host", "connection",
  "authorization", "cookie", "if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "cache-control", "pragma",
  "x-request-id", "traceparent", "tracestate", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua",
  "sec-ch-ua-mobile", "sec-ch-ua-platform", "upgrade-insecure-requests", "dnt", "te", "range", "origin", "x-forwarded-for",
  "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded", "via", "user-agent", "referer", "keep-alive", "transfer-encoding",
  "priority", "x-weir-trace",
];

const METHODS: string[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const STRUCTURED = setOf(STRUCTURED_HEADERS);

/** Characters without which no SQL injection shape exists (the word-only ones are checked by word). */
const SQL_CHARS: u32 = C_QUOTE | C_PAREN | C_SEMI | C_EQ | C_HASH | C_AT | C_DASH | C_SLASH;
/** Characters an XSS needs: markup, a script URL, an attribute breakout, a sink call or concatenation, an encoding. */
const XSS_CHARS: u32 = C_LT | C_COLON | C_QUOTE | C_PAREN | C_EQ | C_PLUS | C_SEMI | C_AMP | C_BACKSLASH | C_PIPE;
const CMD_CHARS: u32 = C_SEMI | C_PIPE | C_QUOTE | C_DOLLAR | C_SLASH | C_PAREN | C_DASH | C_DOT;

export class Inspection {
  matches: Match[] = [];
  score: i32 = 0;

  constructor(public pl: i32, public route: string, public exclusions: Exclusion[]) {}

  add(id: i32, param: string, data: string): void {
    const r = rule(id);
    if (r.pl > this.pl) return;
    for (let i = 0; i < this.matches.length; i++) {
      const m = this.matches[i];
      if (m.rule.id == id && m.param == param) return;
    }
    const m = new Match(r, param, truncate(data, DATA_MAX));
    for (let i = 0; i < this.exclusions.length; i++) if (this.exclusions[i].covers(m, this.route)) return;
    this.matches.push(m);
    this.score += r.severity;
  }

  /** The injection rules on one value (query or body field, cookie, header, name). */
  value(p: Param, host: string): void {
    const v = lower(p.value);
    if (v.length < 2) {
      if (v.length == 1 && v.charCodeAt(0) == 0) this.add(1001, p.name, "NUL");
      return;
    }
    // Each rule family runs only when the value holds a character it needs.
    const m = charMask(v);
    if ((m & C_NUL) != 0) this.add(1001, p.name, "NUL");
    const pl = this.pl;
    if ((m & SQL_CHARS) != 0 || v.indexOf("union") >= 0 || (pl >= 2 && v.length >= 10)) {
      const sq = sqliShape(v, pl);
      if (sq != 0) this.add(sq, p.name, v);
    }
    if ((m & (C_UNDERSCORE | C_AT)) != 0 || v.indexOf("sys") >= 0 || v.indexOf("sql") >= 0 || v.indexOf("into ") >= 0 || v.indexOf("waitfor") >= 0 || v.indexOf("load data") >= 0 || v.indexOf("/*!") >= 0) {
      const word = sqlWord(v);
      if (word.length > 0) this.add(7002, p.name, word);
    }
    if (pl >= 3 && sqlMetaCount(v) >= 6) this.add(7020, p.name, v);
    if (pl >= 4 && sqlMetaCount(v) >= 1) this.add(7021, p.name, v);
    if ((m & XSS_CHARS) != 0) {
      const x = xss(v, pl);
      if (x.rule != 0) this.add(x.rule, p.name, x.data);
    }
    if ((m & C_DOT) != 0 && (m & C_SLASH) != 0) {
      const t = traversal(v);
      if (t.length > 0) this.add(3001, p.name, t);
    }
    if ((m & C_SLASH) != 0 || ((m & (C_DOT | C_UNDERSCORE)) != 0 && (v.indexOf(".ini") >= 0 || v.indexOf(".ht") >= 0 || v.indexOf("id_rsa") >= 0 || v.indexOf("authorized_keys") >= 0 || v.indexOf("config") >= 0 || v.indexOf(".bash_") >= 0))) {
      const f = osFile(v);
      if (f.length > 0) this.add(3002, p.name, f);
    }
    if ((m & CMD_CHARS) != 0 || v.indexOf("net ") >= 0) {
      const c = commandInjection(v, pl, m);
      if (c.rule != 0) this.add(c.rule, p.name, c.data);
    }
    if (!p.isName) {
      if ((m & C_COLON) != 0 || v.startsWith("//")) {
        const colon = p.name.indexOf(":");
        const r = rfi(v.trim(), lower(colon >= 0 ? p.name.substring(colon + 1) : p.name), host, pl);
        if (r != 0) this.add(r, p.name, v);
      }
      if (pl >= 3 && v.length > 4096) this.add(1008, p.name, v.length.toString() + " characters");
    }
  }

  values(params: Param[], host: string): void {
    if (params.length > 255 * 2) this.add(1007, "body", params.length.toString() + " parameters");
    // A parameter seen with the same value (array items, repeated keys) cannot match anything new.
    const seen = new Set<string>();
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      const key = p.name + (p.isName ? "\u0001" : "\u0002") + p.value;
      if (seen.has(key)) continue;
      seen.add(key);
      this.value(p, host);
    }
  }

  /** The path (percent-decoded as the upstream would), the method. */
  head(method: string, rawPath: string): void {
    if (!METHODS.includes(method)) this.add(1004, "method", method);
    resetBadEncoding();
    const path = lower(fullyDecode(rawPath, false));
    if (badEncoding) this.add(1003, "path", rawPath);
    if (path.indexOf("\u0000") >= 0) this.add(1001, "path", "NUL");
    const t = traversal(path);
    if (t.length > 0) this.add(3001, "path", t);
    const f = osFile(path);
    if (f.length > 0) this.add(3002, "path", f);
    const h = hiddenFile(path);
    if (h.length > 0) this.add(3003, "path", h);
    const x = xss(path, this.pl);
    if (x.rule != 0 && x.rule != 6020) this.add(x.rule, "path", x.data);
    if (this.pl >= 2) {
      const sq = sqliShape(path, this.pl);
      if (sq != 0) this.add(sq, "path", path);
    }
  }

  /** A header: scanners by user agent and header name; user-agent and referer values as values; every other header at PL2. */
  header(name: string, value: string, host: string): void {
    if (value.indexOf("\u0000") >= 0) this.add(1001, "header:" + name, "NUL");
    if (scannerHeader(name)) this.add(2002, "header:" + name, name);
    if (name == "user-agent") {
      const ua = lower(value);
      const s = scannerAgent(ua);
      if (s.length > 0) this.add(2001, "header:user-agent", s);
      const c = scriptingAgent(ua);
      if (c.length > 0) this.add(2003, "header:user-agent", c);
      // Shellshock: a function definition in a header.
      if (ua.trim().startsWith("() {")) this.add(5003, "header:user-agent", "() {");
    }
    if (name == "user-agent" || name == "referer" || (this.pl >= 2 && !STRUCTURED.has(name))) {
      if (value.trim().startsWith("() {")) this.add(5003, "header:" + name, "() {");
      this.value(new Param("header:" + name, name == "referer" ? percentDecode(value, false) : value), host);
    }
  }
}

/** Whether a rule id names a rule (config check). */
export function knownRule(id: i32): bool {
  return ruleExists(id);
}

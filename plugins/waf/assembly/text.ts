// Decoding and character helpers shared by the rules: values are matched as an attacker's
// target would read them (percent-decoded twice, `+` as space, HTML entities undone for XSS).

export function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

export function isAlpha(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

export function isWordChar(c: i32): bool {
  return isAlpha(c) || isDigit(c) || c == 0x5f || c == 0x24 || c >= 0x80;
}

export function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x0b || c == 0x0c || c == 0xa0;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The words of `list` as a set (a hash lookup instead of a scan of the list). */
export function setOf(list: string[]): Set<string> {
  const s = new Set<string>();
  for (let i = 0; i < list.length; i++) s.add(list[i]);
  return s;
}

// Bits of charMask: which characters rules need are in a value (skips rules that cannot match).
export const C_QUOTE: u32 = 1; // ' " `
export const C_LT: u32 = 2; // <
export const C_PAREN: u32 = 4; // ( )
export const C_SEMI: u32 = 8; // ;
export const C_EQ: u32 = 16; // =
export const C_HASH: u32 = 32; // #
export const C_AT: u32 = 64; // @
export const C_DASH: u32 = 128; // -
export const C_SLASH: u32 = 256; // / \
export const C_DOT: u32 = 512; // .
export const C_COLON: u32 = 1024; // :
export const C_PIPE: u32 = 2048; // | & newline
export const C_DOLLAR: u32 = 4096; // $
export const C_UNDERSCORE: u32 = 8192; // _
export const C_PLUS: u32 = 16384; // + * ]
export const C_AMP: u32 = 32768; // & (HTML references)
export const C_BACKSLASH: u32 = 65536; // \ (escapes)
export const C_NUL: u32 = 131072;

/** The character classes present in `s` (one pass). */
export function charMask(s: string): u32 {
  let m: u32 = 0;
  for (let i = 0, n = s.length; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) continue;
    if (c == 0x27 || c == 0x22 || c == 0x60) m |= C_QUOTE;
    else if (c == 0x3c) m |= C_LT;
    else if (c == 0x28 || c == 0x29) m |= C_PAREN;
    else if (c == 0x3b) m |= C_SEMI;
    else if (c == 0x3d) m |= C_EQ;
    else if (c == 0x23) m |= C_HASH;
    else if (c == 0x40) m |= C_AT;
    else if (c == 0x2d) m |= C_DASH;
    else if (c == 0x2f) m |= C_SLASH;
    else if (c == 0x5c) m |= C_SLASH | C_BACKSLASH;
    else if (c == 0x2e) m |= C_DOT;
    else if (c == 0x3a) m |= C_COLON;
    else if (c == 0x7c || c == 0x0a) m |= C_PIPE;
    else if (c == 0x26) m |= C_PIPE | C_AMP;
    else if (c == 0x24) m |= C_DOLLAR;
    else if (c == 0x5f) m |= C_UNDERSCORE;
    else if (c == 0x2b || c == 0x2a || c == 0x5d) m |= C_PLUS;
    else if (c == 0) m |= C_NUL;
  }
  return m;
}

/** ASCII lower case (non-ASCII left as is: keywords and markup are ASCII). */
export function lower(s: string): string {
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
    i++;
  }
  if (i == n) return s;
  const parts = new Array<string>(0);
  parts.push(s.substring(0, i));
  let start = i;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      if (i > start) parts.push(s.substring(start, i));
      parts.push(String.fromCharCode(c + 32));
      start = i + 1;
    }
  }
  if (start < n) parts.push(s.substring(start));
  return parts.join("");
}

/** Set by percentDecode: the input had a `%` not followed by two hex digits (resetBadEncoding clears it). */
export let badEncoding: bool = false;

export function resetBadEncoding(): void {
  badEncoding = false;
}

/**
 * Percent-decoding as a lenient server does it: `%XX` bytes (UTF-8, overlong forms such as
 * `%c0%af` read as the character they spell), IIS `%uXXXX`, and `+` as a space when `plus`.
 */
export function percentDecode(s: string, plus: bool): string {
  if (s.indexOf("%") < 0 && (!plus || s.indexOf("+") < 0)) return s;
  const bytes = new Array<i32>(0);
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x25) {
      if (i + 5 < n && (s.charCodeAt(i + 1) == 0x75 || s.charCodeAt(i + 1) == 0x55)) {
        const a = hexValue(s.charCodeAt(i + 2)), b = hexValue(s.charCodeAt(i + 3)), d = hexValue(s.charCodeAt(i + 4)), e = hexValue(s.charCodeAt(i + 5));
        if (a >= 0 && b >= 0 && d >= 0 && e >= 0) {
          pushCodePoint(bytes, (a << 12) | (b << 8) | (d << 4) | e);
          i += 5;
          continue;
        }
      }
      if (i + 2 < n) {
        const h = hexValue(s.charCodeAt(i + 1)), l = hexValue(s.charCodeAt(i + 2));
        if (h >= 0 && l >= 0) {
          bytes.push((h << 4) | l);
          i += 2;
          continue;
        }
      }
      badEncoding = true;
      bytes.push(c);
    } else if (c == 0x2b && plus) {
      bytes.push(0x20);
    } else {
      pushCodePoint(bytes, c);
    }
  }
  return utf8Lenient(bytes);
}

function pushCodePoint(bytes: Array<i32>, c: i32): void {
  if (c < 0x80) bytes.push(c);
  else if (c < 0x800) {
    bytes.push(0xc0 | (c >> 6));
    bytes.push(0x80 | (c & 0x3f));
  } else {
    bytes.push(0xe0 | (c >> 12));
    bytes.push(0x80 | ((c >> 6) & 0x3f));
    bytes.push(0x80 | (c & 0x3f));
  }
}

/** UTF-8 to a string, accepting overlong forms; a byte that starts nothing stands for itself. */
function utf8Lenient(b: Array<i32>): string {
  const out = new Array<string>(0);
  const n = b.length;
  let run = new Array<i32>(0);
  for (let i = 0; i < n; i++) {
    const c = b[i];
    let cp = c;
    if (c >= 0xc0 && c < 0xe0 && i + 1 < n && (b[i + 1] & 0xc0) == 0x80) {
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      i += 1;
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < n && (b[i + 1] & 0xc0) == 0x80 && (b[i + 2] & 0xc0) == 0x80) {
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      i += 2;
    } else if (c >= 0xf0 && c < 0xf8 && i + 3 < n && (b[i + 1] & 0xc0) == 0x80 && (b[i + 2] & 0xc0) == 0x80 && (b[i + 3] & 0xc0) == 0x80) {
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
      i += 3;
    }
    run.push(slashLike(cp));
    if (run.length >= 1024) {
      out.push(fromCodePoints(run));
      run = new Array<i32>(0);
    }
  }
  if (run.length > 0) out.push(fromCodePoints(run));
  return out.join("");
}

/** Look-alikes some servers fold to ASCII (`%u2215` for `/`): read as the ASCII they become. */
function slashLike(cp: i32): i32 {
  if (cp < 0x2000) return cp;
  if (cp == 0x2215 || cp == 0x2044 || cp == 0xff0f) return 0x2f;
  if (cp == 0x2216 || cp == 0xff3c) return 0x5c;
  if (cp == 0xff0e) return 0x2e;
  if (cp == 0xff1c) return 0x3c;
  if (cp == 0xff1e) return 0x3e;
  return cp;
}

function fromCodePoints(cps: Array<i32>): string {
  const parts = new Array<string>(cps.length);
  for (let i = 0; i < cps.length; i++) parts[i] = String.fromCodePoint(cps[i]);
  return parts.join("");
}

/** Decoded once, then again while `%XX` is left (double encoding), at most three times. */
export function fullyDecode(s: string, plus: bool): string {
  let v = percentDecode(s, plus);
  for (let i = 0; i < 2; i++) {
    if (v.indexOf("%") < 0) break;
    const w = percentDecode(v, false);
    if (w == v) break;
    v = w;
  }
  return v;
}

const ENTITY_NAMES: string[] = ["lt", "gt", "quot", "apos", "amp", "colon", "tab", "newline", "lpar", "rpar", "sol", "bsol", "nbsp", "equals", "grave", "semi", "comma", "period", "excl", "num", "lbrace", "rbrace"];
const ENTITY_CHARS: i32[] = [0x3c, 0x3e, 0x22, 0x27, 0x26, 0x3a, 0x09, 0x0a, 0x28, 0x29, 0x2f, 0x5c, 0x20, 0x3d, 0x60, 0x3b, 0x2c, 0x2e, 0x21, 0x23, 0x7b, 0x7d];

/** HTML character references undone (`&lt;`, `&#60;`, `&#x3c;`, the `;` optional), as a browser reads them. */
export function htmlDecode(s: string): string {
  if (s.indexOf("&") < 0) return s;
  const out = new Array<string>(0);
  const n = s.length;
  let start = 0;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) != 0x26) continue;
    let j = i + 1;
    let cp = -1;
    if (j < n && s.charCodeAt(j) == 0x23) {
      j++;
      let hex = false;
      if (j < n && (s.charCodeAt(j) == 0x78 || s.charCodeAt(j) == 0x58)) {
        hex = true;
        j++;
      }
      let v = 0;
      const d0 = j;
      while (j < n && j - d0 < 8) {
        const h = hexValue(s.charCodeAt(j));
        if (h < 0 || (!hex && h > 9)) break;
        v = v * (hex ? 16 : 10) + h;
        j++;
      }
      if (j > d0 && v > 0 && v < 0x110000) cp = v;
    } else {
      let k = j;
      while (k < n && k - j < 8 && isAlpha(s.charCodeAt(k))) k++;
      const name = lower(s.substring(j, k));
      const idx = ENTITY_NAMES.indexOf(name);
      if (idx >= 0) {
        cp = ENTITY_CHARS[idx];
        j = k;
      }
    }
    if (cp < 0) continue;
    if (j < n && s.charCodeAt(j) == 0x3b) j++;
    out.push(s.substring(start, i));
    out.push(String.fromCodePoint(cp));
    start = j;
    i = j - 1;
  }
  out.push(s.substring(start));
  return out.join("");
}

/** The value with `\` escapes and JS `\xHH` / `\uHHHH` escapes undone (JSON strings are decoded by the parser). */
export function jsUnescape(s: string): string {
  if (s.indexOf("\\") < 0) return s;
  const out = new Array<string>(0);
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x5c && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if ((d == 0x78) && i + 3 < n) {
        const h = hexValue(s.charCodeAt(i + 2)), l = hexValue(s.charCodeAt(i + 3));
        if (h >= 0 && l >= 0) {
          out.push(String.fromCharCode((h << 4) | l));
          i += 3;
          continue;
        }
      }
      if (d == 0x75 && i + 5 < n) {
        const a = hexValue(s.charCodeAt(i + 2)), b = hexValue(s.charCodeAt(i + 3)), e = hexValue(s.charCodeAt(i + 4)), f = hexValue(s.charCodeAt(i + 5));
        if (a >= 0 && b >= 0 && e >= 0 && f >= 0) {
          out.push(String.fromCharCode((a << 12) | (b << 8) | (e << 4) | f));
          i += 5;
          continue;
        }
      }
      out.push(String.fromCharCode(d));
      i++;
      continue;
    }
    out.push(String.fromCharCode(c));
  }
  return out.join("");
}

/** Whether `s` contains `word` with no word character on either side. */
export function hasWord(s: string, word: string): bool {
  let from = 0;
  while (true) {
    const i = s.indexOf(word, from);
    if (i < 0) return false;
    const before = i == 0 ? 0x20 : s.charCodeAt(i - 1);
    const j = i + word.length;
    const after = j >= s.length ? 0x20 : s.charCodeAt(j);
    if (!isWordChar(before) && !isWordChar(after)) return true;
    from = i + 1;
  }
}

/** The first `max` characters of `s` (audit entries carry matched data truncated). */
export function truncate(s: string, max: i32): string {
  return s.length <= max ? s : s.substring(0, max) + "…";
}

// Cross-site scripting by tokenizing the value as HTML the way a browser's tokenizer reads
// it: tags with their names and attributes, and the attribute context a value lands in when
// it closes a quote (`" onmouseover="…`). Script-capable tags, event-handler attributes and
// script URLs are what an injection needs; a `<` or `>` in prose or code is not.
import { htmlDecode, isAlpha, isSpace, jsUnescape } from "./text";

/** Tags that run script or load active content by themselves. */
const SCRIPT_TAGS: string[] = ["script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "meta", "link", "svg", "math", "portal", "xss", "import", "vmlframe", "xml", "isindex", "template", "noembed", "handler", "listener"];
/** Attributes that take a URL, where `javascript:` runs. */
const URL_ATTRS: string[] = ["href", "src", "action", "formaction", "data", "xlink:href", "background", "lowsrc", "dynsrc", "poster", "codebase", "srcdoc", "content", "to", "from", "values", "by"];
/** Script sinks worth a match on their own. */
const SINKS: string[] = ["document.cookie", "document.domain", "document.write", "fromcharcode", "window.location", "document.location", "location.href", "innerhtml", ".constructor(", "settimeout(", "setinterval(", "new function(", "import("];
const CALLS: string[] = ["alert", "prompt", "confirm", "eval", "atob"];

export class XssResult {
  constructor(public rule: i32, public data: string) {}
}

const NONE = new XssResult(0, "");

/** Removes what a browser ignores inside a URL scheme: whitespace and control characters. */
function squeeze(s: string): string {
  const parts = new Array<string>(0);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20) continue;
    parts.push(String.fromCharCode(c));
  }
  return parts.join("");
}

/** `javascript:`, `vbscript:`, `livescript:` or `data:text/html` at the start of `v` (after what browsers skip). */
export function scriptUrl(v: string): bool {
  const s = squeeze(v.substring(0, 64));
  return s.startsWith("javascript:") || s.startsWith("vbscript:") || s.startsWith("livescript:") || s.startsWith("data:text/html") || s.startsWith("data:image/svg+xml") || s.startsWith("data:application/x-javascript") || s.startsWith("data:text/javascript");
}

function isTagNameChar(c: i32): bool {
  return isAlpha(c) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x3a || c == 0x5f;
}

/** Reads the attributes of a tag from `i` (after its name); a match's rule, or 0. */
function attributes(s: string, i: i32, tag: string): XssResult {
  const n = s.length;
  while (i < n) {
    let c = s.charCodeAt(i);
    if (c == 0x3e) return NONE;
    if (isSpace(c) || c == 0x2f || c == 0x22 || c == 0x27) {
      i++;
      continue;
    }
    let j = i;
    while (j < n) {
      c = s.charCodeAt(j);
      if (isSpace(c) || c == 0x3d || c == 0x3e || c == 0x2f) break;
      j++;
    }
    const name = s.substring(i, j);
    while (j < n && isSpace(s.charCodeAt(j))) j++;
    let value = "";
    if (j < n && s.charCodeAt(j) == 0x3d) {
      j++;
      while (j < n && isSpace(s.charCodeAt(j))) j++;
      if (j < n && (s.charCodeAt(j) == 0x22 || s.charCodeAt(j) == 0x27 || s.charCodeAt(j) == 0x60)) {
        const q = s.charCodeAt(j);
        let e = s.indexOf(String.fromCharCode(q), j + 1);
        if (e < 0) e = n;
        value = s.substring(j + 1, e);
        j = e + 1;
      } else {
        let e = j;
        while (e < n && !isSpace(s.charCodeAt(e)) && s.charCodeAt(e) != 0x3e) e++;
        value = s.substring(j, e);
        j = e;
      }
      if (isHandler(name, tag.length > 0)) return new XssResult(6002, "<" + tag + " " + name + "=");
      if (URL_ATTRS.includes(name) && scriptUrl(htmlDecode(value))) return new XssResult(6003, "<" + tag + " " + name + "=" + value);
      if (name == "style" && cssScript(value)) return new XssResult(6005, "<" + tag + " style=");
    }
    if (j <= i) j = i + 1;
    i = j;
  }
  return NONE;
}

/** Event handler names a breakout uses; inside a tag any `on…` attribute counts. */
const HANDLERS: string[] = [
  "onload", "onerror", "onclick", "ondblclick", "onmouse", "onkey", "onfocus", "onblur", "onchange", "onsubmit", "onreset", "onselect",
  "oninput", "oninvalid", "ondrag", "ondrop", "onscroll", "onresize", "onwheel", "oncopy", "oncut", "onpaste", "onanimation",
  "ontransition", "onpointer", "ontouch", "onplay", "onpause", "onended", "onbegin", "onend", "onstart", "onfinish", "onbefore",
  "onafter", "onhashchange", "onmessage", "onpage", "onpopstate", "onstorage", "onunload", "ontoggle", "onshow", "oncontextmenu",
  "onauxclick", "onformdata", "onsearch", "oncanplay", "onreadystatechange", "onactivate", "onfilterchange", "onpropertychange",
  "onmove", "onwebkit", "onbounce", "onsecuritypolicyviolation", "onvolumechange", "ontimeupdate", "onprogress", "onwaiting",
];

function isHandler(name: string, inTag: bool): bool {
  if (name.length < 5 || !name.startsWith("on") || !isAlpha(name.charCodeAt(2))) return false;
  if (inTag) return true;
  for (let i = 0; i < HANDLERS.length; i++) if (name.startsWith(HANDLERS[i])) return true;
  return false;
}

function cssScript(v: string): bool {
  const s = squeeze(v);
  return s.indexOf("expression(") >= 0 || s.indexOf("-moz-binding") >= 0 || s.indexOf("behavior:url") >= 0 || s.indexOf("javascript:") >= 0 || s.indexOf("@import") >= 0;
}

/**
 * The XSS rule `v` (decoded, lower case) matches at paranoia level `pl`, with the data
 * matched: 6001 a script-capable tag, 6002 an event handler attribute (in a tag, or after a
 * closing quote), 6003 a script URL, 6004 a script sink, 6005 script in CSS (PL1);
 * 6010 any HTML tag, 6011 a call of alert/prompt/eval… (PL2); 6020 a `<` opening markup (PL3).
 */
export function xss(raw: string, pl: i32): XssResult {
  const s = jsUnescape(htmlDecode(raw));
  const n = s.length;
  if (n < 3) return NONE;
  // A value that is itself a script URL (lands in an href).
  if (scriptUrl(s)) return new XssResult(6003, s);
  let anyTag = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x3c) {
      let j = i + 1;
      if (j < n && s.charCodeAt(j) == 0x2f) j++;
      // `<!--` and `<![CDATA[` hide nothing: the scan goes on past them.
      if (j < n && s.charCodeAt(j) == 0x21) continue;
      const start = j;
      while (j < n && isTagNameChar(s.charCodeAt(j))) j++;
      if (j == start || !isAlpha(s.charCodeAt(start))) continue;
      const tag = s.substring(start, j);
      // A tag name is followed by whitespace, `/`, `>` or the end.
      if (j < n && !(isSpace(s.charCodeAt(j)) || s.charCodeAt(j) == 0x2f || s.charCodeAt(j) == 0x3e)) continue;
      if (SCRIPT_TAGS.includes(tag) && (tag != "script" || scriptRuns(s, j))) return new XssResult(6001, s.substring(i, j < n ? j + 1 : n));
      const a = attributes(s, j, tag);
      if (a.rule != 0) return a;
      if (j < n && s.indexOf(">", j) >= 0) anyTag = true;
      else if (j >= n || s.charCodeAt(j) == 0x3e) anyTag = true;
    } else if ((c == 0x22 || c == 0x27 || c == 0x60) && i + 1 < n) {
      // An attribute context broken out of: `" onfocus="x`, `' autofocus onfocus=`.
      const a = attributes(s.substring(i + 1, min(n, i + 129)), 0, "");
      if (a.rule == 6002 || a.rule == 6003) return a;
    }
  }
  for (let k = 0; k < SINKS.length; k++) {
    const sink = SINKS[k];
    const at = s.indexOf(sink);
    if (at < 0) continue;
    // `document.cookie` alone is prose; followed by an access, concatenation or assignment it is code.
    const after = at + sink.length < n ? s.charCodeAt(at + sink.length) : 0;
    if (sink.endsWith("(") || after == 0x29 || after == 0x2b || after == 0x3b || after == 0x3d || after == 0x2e || after == 0x5d || after == 0x28) return new XssResult(6004, sink);
  }
  if (pl >= 2) {
    if (anyTag) return new XssResult(6010, truncateTag(s));
    for (let k = 0; k < CALLS.length; k++) {
      const name = CALLS[k];
      let at = s.indexOf(name);
      while (at >= 0) {
        let e = at + name.length;
        while (e < n && isSpace(s.charCodeAt(e))) e++;
        const before = at > 0 ? s.charCodeAt(at - 1) : 0x20;
        if (e < n && (s.charCodeAt(e) == 0x28 || s.charCodeAt(e) == 0x60) && !isAlpha(before)) return new XssResult(6011, s.substring(at, e + 1));
        at = s.indexOf(name, at + 1);
      }
    }
  }
  if (pl >= 3) {
    for (let i = 0; i + 1 < n; i++) {
      if (s.charCodeAt(i) != 0x3c) continue;
      const d = s.charCodeAt(i + 1);
      if (isAlpha(d) || d == 0x2f || d == 0x21 || d == 0x3f) return new XssResult(6020, s.substring(i, i + 2));
    }
  }
  return NONE;
}

/**
 * A `<script` tag runs something: it has attributes (`src=`), or code follows it (a call,
 * an assignment, a template) or its closing tag. `what is <script> in html` names the tag.
 */
function scriptRuns(s: string, j: i32): bool {
  const n = s.length;
  if (j < n && s.charCodeAt(j) != 0x3e) return true;
  const rest = s.substring(j + 1, min(n, j + 257));
  return rest.indexOf("(") >= 0 || rest.indexOf("=") >= 0 || rest.indexOf("`") >= 0 || rest.indexOf("</script") >= 0 || rest.indexOf(";") >= 0;
}

function truncateTag(s: string): string {
  const i = s.indexOf("<");
  return i < 0 ? s : s.substring(i, i + 32);
}

// SQL injection by tokenizing: a value is read as SQL would read it — as it is, and as if it
// continued a string literal opened by the query (after a `'` or a `"`) — into typed tokens,
// and the shape of the first tokens (the fingerprint) is compared with shapes only an
// injection has: a string closed then a tautology, a stacked statement, UNION SELECT,
// a comment cutting off the rest of the query. Ordinary text rarely has those shapes.
import { isDigit, isSpace, isWordChar, setOf } from "./text";

// Token types (one character each, so a fingerprint is a short string).
export const T_STRING = "s";
export const T_NUMBER = "n";
export const T_VAR = "v";
export const T_COMMENT = "c";
export const T_OP = "o";
export const T_LOGIC = "&";
export const T_LPAREN = "(";
export const T_RPAREN = ")";
export const T_COMMA = ",";
export const T_SEMI = ";";
export const T_KEYWORD = "k";
export const T_STATEMENT = "E";
export const T_UNION = "U";
export const T_FUNCTION = "f";
export const T_WORD = "b";

export class Token {
  constructor(public type: string, public text: string) {}
}

const STATEMENTS: string[] = ["select", "insert", "update", "delete", "drop", "create", "alter", "truncate", "exec", "execute", "declare", "grant", "revoke", "shutdown", "rename", "replace", "merge", "call", "load", "handler"];
const KEYWORDS: string[] = [
  "from", "where", "having", "group", "order", "by", "limit", "offset", "into", "values", "set", "table", "database", "schema",
  "procedure", "as", "on", "join", "inner", "outer", "left", "right", "cross", "case", "when", "then", "else", "end", "distinct",
  "all", "top", "asc", "desc", "exists", "between", "outfile", "dumpfile", "delay", "waitfor", "index", "view", "column", "user",
  "function", "trigger", "returns", "begin", "commit", "rollback", "collate", "escape", "analyse", "natural", "straight_join", "in",
];
const LOGIC: string[] = ["and", "or", "xor"];
const WORD_OPS: string[] = ["like", "rlike", "regexp", "is", "not", "div", "mod", "sounds", "glob", "match", "against"];
const LITERALS: string[] = ["null", "true", "false"];
/** Functions an injection uses (time delays, file reads, error-based extraction, string building). */
export const SQL_FUNCTIONS: string[] = [
  "sleep", "benchmark", "pg_sleep", "char", "chr", "nchar", "concat", "concat_ws", "group_concat", "substring", "substr", "mid", "ascii",
  "ord", "hex", "unhex", "version", "current_user", "system_user", "session_user", "database", "schema", "load_file", "extractvalue",
  "updatexml", "count", "length", "cast", "convert", "if", "ifnull", "isnull", "coalesce", "md5", "sha1", "rand", "floor", "exp",
  "name_const", "randomblob", "sqlite_version", "user", "make_set", "elt", "iif", "string_agg", "xmltype", "dbms_pipe.receive_message",
  "utl_inaddr.get_host_address", "utl_http.request", "sys_eval", "sys_exec", "json_keys", "row", "polygon", "multipoint", "geometrycollection",
  "pg_read_file", "lo_import", "quote_literal", "to_char", "get_lock", "master_pos_wait", "instr", "locate", "position", "reverse",
];

/** Functions whose call is an injection on its own (delays, file access, error-based extraction). */
export const DANGEROUS_FUNCTIONS: string[] = [
  "sleep", "benchmark", "pg_sleep", "load_file", "extractvalue", "updatexml", "dbms_pipe.receive_message", "utl_inaddr.get_host_address",
  "utl_http.request", "sys_eval", "sys_exec", "name_const", "pg_read_file", "lo_import", "get_lock", "master_pos_wait", "randomblob",
];

/** Identifiers of database catalogs and procedures that only a query names. */
export const SQL_CATALOG: string[] = [
  "information_schema", "sysobjects", "syscolumns", "sys.objects", "sys.tables", "sys.columns", "pg_catalog", "pg_shadow", "pg_user",
  "mysql.user", "sqlite_master", "sqlite_schema", "xp_cmdshell", "sp_executesql", "sp_oacreate", "sp_makewebtask", "xp_regread",
  "msysobjects", "all_tables", "user_tables", "dba_users", "v$version", "sys.user$", "master..sysdatabases", "xp_dirtree",
];

function wordTypes(): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < KEYWORDS.length; i++) m.set(KEYWORDS[i], T_KEYWORD);
  for (let i = 0; i < LITERALS.length; i++) m.set(LITERALS[i], T_NUMBER);
  for (let i = 0; i < WORD_OPS.length; i++) m.set(WORD_OPS[i], T_OP);
  for (let i = 0; i < LOGIC.length; i++) m.set(LOGIC[i], T_LOGIC);
  for (let i = 0; i < STATEMENTS.length; i++) m.set(STATEMENTS[i], T_STATEMENT);
  m.set("union", T_UNION);
  return m;
}

const WORD_TYPES = wordTypes();
const FUNCTION_SET = setOf(SQL_FUNCTIONS);
const DANGEROUS_SET = setOf(DANGEROUS_FUNCTIONS);

function wordType(w: string): string {
  return WORD_TYPES.has(w) ? WORD_TYPES.get(w) : T_WORD;
}

/**
 * Tokens of `s` (lower case) read from `start`; `quote` > 0: the text first continues a string
 * literal closed by that quote character. At most `max` tokens (the fingerprint's length).
 */
export function tokenize(s: string, quote: i32, max: i32): Token[] {
  const out = new Array<Token>(0);
  const n = s.length;
  let i = 0;
  if (quote > 0) {
    const end = closeQuote(s, 0, quote);
    out.push(new Token(T_STRING, s.substring(0, end < 0 ? n : end)));
    i = end < 0 ? n : end + 1;
  }
  while (i < n && out.length < max + 4) {
    const c = s.charCodeAt(i);
    if (isSpace(c) || c == 0) {
      i++;
      continue;
    }
    // Quoted strings ('…', "…"); backticks quote identifiers.
    if (c == 0x27 || c == 0x22) {
      const end = closeQuote(s, i + 1, c);
      out.push(new Token(T_STRING, s.substring(i + 1, end < 0 ? n : end)));
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c == 0x60) {
      const end = s.indexOf("`", i + 1);
      out.push(new Token(T_WORD, s.substring(i + 1, end < 0 ? n : end)));
      i = end < 0 ? n : end + 1;
      continue;
    }
    // Comments: `-- `, `#`, `/* */` (MySQL's `/*! */` runs its content: read it as code).
    if (c == 0x2d && i + 1 < n && s.charCodeAt(i + 1) == 0x2d) {
      const nl = s.indexOf("\n", i);
      out.push(new Token(T_COMMENT, "--"));
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c == 0x23) {
      const nl = s.indexOf("\n", i);
      out.push(new Token(T_COMMENT, "#"));
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c == 0x2f && i + 1 < n && s.charCodeAt(i + 1) == 0x2a) {
      if (i + 2 < n && s.charCodeAt(i + 2) == 0x21) {
        i += 3;
        while (i < n && isDigit(s.charCodeAt(i))) i++;
        continue;
      }
      const end = s.indexOf("*/", i + 2);
      out.push(new Token(T_COMMENT, "/*"));
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c == 0x2a && i + 1 < n && s.charCodeAt(i + 1) == 0x2f) {
      // The end of an executable comment.
      i += 2;
      continue;
    }
    // Numbers (a sign counts when an operand is expected).
    const prev = out.length > 0 ? out[out.length - 1].type : "";
    const signed = (c == 0x2d || c == 0x2b) && i + 1 < n && isDigit(s.charCodeAt(i + 1)) && (prev == "" || prev == T_OP || prev == T_LOGIC || prev == T_LPAREN || prev == T_COMMA || prev == T_KEYWORD || prev == T_STATEMENT);
    if (isDigit(c) || signed || (c == 0x2e && i + 1 < n && isDigit(s.charCodeAt(i + 1)))) {
      let j = signed ? i + 1 : i;
      if (s.charCodeAt(j) == 0x30 && j + 1 < n && (s.charCodeAt(j + 1) == 0x78 || s.charCodeAt(j + 1) == 0x62)) j += 2;
      while (j < n && (isWordChar(s.charCodeAt(j)) || s.charCodeAt(j) == 0x2e)) j++;
      const text = s.substring(i, j);
      // `1abc` is a word in SQL, unless it is a hex/binary literal or has an exponent.
      out.push(new Token(looksNumeric(text) ? T_NUMBER : T_WORD, text));
      i = j;
      continue;
    }
    if (c == 0x40) {
      let j = i + 1;
      if (j < n && s.charCodeAt(j) == 0x40) j++;
      while (j < n && (isWordChar(s.charCodeAt(j)) || s.charCodeAt(j) == 0x2e)) j++;
      out.push(new Token(T_VAR, s.substring(i, j)));
      i = j;
      continue;
    }
    if (isWordChar(c)) {
      let j = i;
      while (j < n && (isWordChar(s.charCodeAt(j)) || (s.charCodeAt(j) == 0x2e && j + 1 < n && isWordChar(s.charCodeAt(j + 1))))) j++;
      const w = s.substring(i, j);
      let k = j;
      while (k < n && isSpace(s.charCodeAt(k))) k++;
      let type = wordType(w);
      if (k < n && s.charCodeAt(k) == 0x28 && FUNCTION_SET.has(w)) type = T_FUNCTION;
      out.push(new Token(type, w));
      i = j;
      continue;
    }
    if (c == 0x28) { out.push(new Token(T_LPAREN, "(")); i++; continue; }
    if (c == 0x29) { out.push(new Token(T_RPAREN, ")")); i++; continue; }
    if (c == 0x2c) { out.push(new Token(T_COMMA, ",")); i++; continue; }
    if (c == 0x3b) { out.push(new Token(T_SEMI, ";")); i++; continue; }
    if ((c == 0x7c && i + 1 < n && s.charCodeAt(i + 1) == 0x7c) || (c == 0x26 && i + 1 < n && s.charCodeAt(i + 1) == 0x26)) {
      out.push(new Token(T_LOGIC, s.substring(i, i + 2)));
      i += 2;
      continue;
    }
    if (c == 0x3d || c == 0x3c || c == 0x3e || c == 0x21 || c == 0x7c || c == 0x26 || c == 0x5e || c == 0x7e || c == 0x2b || c == 0x2d || c == 0x2a || c == 0x2f || c == 0x25 || c == 0x3a) {
      let j = i + 1;
      while (j < n && j - i < 3) {
        const d = s.charCodeAt(j);
        if (d == 0x3d || d == 0x3c || d == 0x3e) j++;
        else break;
      }
      out.push(new Token(T_OP, s.substring(i, j)));
      i = j;
      continue;
    }
    // Anything else (`.`, `[`, `{`, `?`, `\`...) counts as a word character of its own.
    out.push(new Token(T_WORD, s.substring(i, i + 1)));
    i++;
  }
  return fold(out, max);
}

function looksNumeric(t: string): bool {
  let i = 0;
  const n = t.length;
  if (i < n && (t.charCodeAt(i) == 0x2d || t.charCodeAt(i) == 0x2b)) i++;
  if (i + 1 < n && t.charCodeAt(i) == 0x30 && (t.charCodeAt(i + 1) == 0x78 || t.charCodeAt(i + 1) == 0x62)) {
    for (let j = i + 2; j < n; j++) {
      const c = t.charCodeAt(j);
      if (!(isDigit(c) || (c >= 0x61 && c <= 0x66))) return false;
    }
    return true;
  }
  for (let j = i; j < n; j++) {
    const c = t.charCodeAt(j);
    if (isDigit(c) || c == 0x2e) continue;
    if (c == 0x65 && j > i) continue;
    return false;
  }
  return true;
}

/** Where the string literal opened before `from` ends (`''` and `\'` do not end it), or -1. */
function closeQuote(s: string, from: i32, q: i32): i32 {
  const n = s.length;
  for (let i = from; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x5c) {
      i++;
      continue;
    }
    if (c == q) {
      if (i + 1 < n && s.charCodeAt(i + 1) == q) {
        i++;
        continue;
      }
      return i;
    }
  }
  return -1;
}

/**
 * Merges what SQL reads as one unit: an inline comment between tokens is whitespace (and
 * `UN/**\/ION` one keyword), `union all` is `union`, `order by` / `group by` one keyword,
 * `is not` / `not like` one operator, adjacent strings one string. A comment is kept last.
 */
function fold(tokens: Token[], max: i32): Token[] {
  const out = new Array<Token>(0);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const last = out.length > 0 ? out[out.length - 1] : null;
    if (t.type == T_COMMENT) {
      if (i == tokens.length - 1) {
        if (last === null || last.type != T_COMMENT) out.push(t);
        continue;
      }
      // Inline: glue words it splits when they make a keyword.
      if (last !== null && i + 1 < tokens.length) {
        const next = tokens[i + 1];
        const glued = last.text + next.text;
        const type = wordType(glued);
        if ((last.type == T_WORD || last.type == T_KEYWORD || last.type == T_STATEMENT) && (next.type == T_WORD || next.type == T_KEYWORD) && type != T_WORD) {
          out[out.length - 1] = new Token(type, glued);
          i++;
        }
      }
      continue;
    }
    if (last !== null) {
      if (last.type == T_UNION && (t.text == "all" || t.text == "distinct")) continue;
      if ((last.text == "order" || last.text == "group") && t.text == "by") {
        out[out.length - 1] = new Token(T_KEYWORD, last.text + " by");
        continue;
      }
      if (last.text == "waitfor" && t.text == "delay") {
        out[out.length - 1] = new Token(T_KEYWORD, "waitfor delay");
        continue;
      }
      if (last.type == T_OP && t.type == T_OP) {
        out[out.length - 1] = new Token(T_OP, last.text + " " + t.text);
        continue;
      }
      if (last.type == T_STRING && t.type == T_STRING) continue;
    }
    out.push(t);
    if (out.length >= max) break;
  }
  return out;
}

/** The fingerprint: each token's type, in order. */
export function fingerprint(tokens: Token[]): string {
  const parts = new Array<string>(tokens.length);
  for (let i = 0; i < tokens.length; i++) parts[i] = tokens[i].type;
  return parts.join("");
}

// ---- shapes ----

function isOperand(t: string): bool {
  return t == T_STRING || t == T_NUMBER || t == T_VAR || t == T_WORD;
}

function isValue(t: string): bool {
  return t == T_STRING || t == T_NUMBER || t == T_VAR;
}

/** Keywords that continue a query after a broken-out operand (`' order by 1--`). */
function isClauseKeyword(t: Token): bool {
  return t.type == T_KEYWORD && (t.text == "order by" || t.text == "group by" || t.text == "having" || t.text == "limit" || t.text == "procedure" || t.text == "into" || t.text == "where");
}

function isComparison(t: Token): bool {
  return t.type == T_OP && (t.text == "=" || t.text == "==" || t.text == "<>" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=" || t.text == "<=>" || t.text == "like" || t.text == "rlike" || t.text == "regexp" || t.text == "is" || t.text.startsWith("not") || t.text.startsWith("is "));
}

/**
 * A statement an injection stacks or starts: `drop table`, `delete from`, `insert into`,
 * `update … set`, `select … from` (operands, `*` and commas between), `exec xp_…`,
 * `declare @…`, `waitfor delay`, `shutdown`.
 */
export function statementAt(t: Token[], i: i32): bool {
  if (i >= t.length) return false;
  const a = t[i];
  const b = i + 1 < t.length ? t[i + 1] : null;
  if (a.type == T_KEYWORD && a.text == "waitfor delay") return true;
  if (a.type != T_STATEMENT) return false;
  const w = a.text;
  if (w == "shutdown") return b === null || b.type == T_COMMENT || b.type == T_SEMI;
  if (b === null) return false;
  if (w == "drop" || w == "truncate" || w == "alter" || w == "create" || w == "rename") return b.type == T_KEYWORD && (b.text == "table" || b.text == "database" || b.text == "schema" || b.text == "procedure" || b.text == "function" || b.text == "view" || b.text == "index" || b.text == "user" || b.text == "trigger");
  if (w == "delete") return b.type == T_KEYWORD && b.text == "from";
  if (w == "insert" || w == "replace") return b.type == T_KEYWORD && b.text == "into";
  if (w == "update") return b.type == T_WORD && i + 2 < t.length && t[i + 2].text == "set";
  if (w == "exec" || w == "execute") return b.type == T_WORD && (b.text.startsWith("xp_") || b.text.startsWith("sp_") || b.text.startsWith("master.")) || b.type == T_LPAREN || b.type == T_VAR;
  if (w == "declare") return b.type == T_VAR;
  if (w == "select") {
    if (b.type == T_OP && b.text == "*") return true;
    if (b.type == T_FUNCTION || b.type == T_VAR || b.type == T_NUMBER || b.type == T_STRING) return true;
    // select a, b from t / select a from t
    for (let j = i + 1; j < t.length && j < i + 8; j++) {
      const x = t[j];
      if (x.type == T_KEYWORD && x.text == "from") return j > i + 1 && t[j - 1].type != T_COMMA && (t[i + 2].type == T_COMMA || t[i + 2].type == T_KEYWORD) && j + 1 < t.length && (t[j + 1].type == T_WORD || t[j + 1].type == T_KEYWORD || t[j + 1].type == T_LPAREN);
      if (!(x.type == T_WORD || x.type == T_COMMA || x.type == T_OP || x.type == T_NUMBER)) return false;
    }
  }
  return false;
}

/**
 * A statement that starts the value reads as SQL, not prose, when what follows its target
 * ends it or is a clause: `drop table users`, `delete from t where …` (not `delete from the cart`).
 */
function completeStatement(t: Token[]): bool {
  for (let j = 2; j < t.length; j++) {
    const x = t[j];
    if (x.type == T_SEMI || x.type == T_COMMENT || x.type == T_LPAREN || x.type == T_OP) return true;
    if (x.type == T_KEYWORD && (x.text == "where" || x.text == "set" || x.text == "values" || x.text == "from" || x.text == "limit" || x.text == "order by")) return j > 2 || t[0].text == "select";
    if (x.type != T_WORD && x.type != T_KEYWORD && x.type != T_COMMA) return true;
    if (x.type == T_WORD && j >= 3 && t[j - 1].type == T_WORD) return false;
  }
  return true;
}

/** What an operand sequence after a breakout looks like: `1=1`, `'a'='a'`, `x like y`. */
function comparisonAt(t: Token[], i: i32): bool {
  return i + 2 < t.length + 0 && isOperand(t[i].type) && isComparison(t[i + 1]) && (isOperand(t[i + 2].type) || t[i + 2].type == T_LPAREN || t[i + 2].type == T_FUNCTION);
}

function dangerousCallAt(t: Token[], i: i32): bool {
  return i + 1 < t.length && t[i].type == T_FUNCTION && t[i + 1].type == T_LPAREN && DANGEROUS_SET.has(t[i].text);
}

/** `union select` with a select list after it (not `union select committee`). */
function unionSelectAt(t: Token[], i: i32): bool {
  if (i + 1 >= t.length || t[i].type != T_UNION) return false;
  let j = i + 1;
  if (t[j].type == T_LPAREN) j++;
  if (j >= t.length || t[j].type != T_STATEMENT || t[j].text != "select") return false;
  if (j + 1 >= t.length) return true;
  const x = t[j + 1];
  if (x.type == T_NUMBER || x.type == T_VAR || x.type == T_STRING || x.type == T_FUNCTION || x.type == T_OP || x.type == T_LPAREN || x.type == T_COMMENT) return true;
  return x.type == T_WORD && j + 2 < t.length && (t[j + 2].type == T_COMMA || t[j + 2].type == T_KEYWORD || t[j + 2].type == T_COMMENT);
}

/**
 * After an operand the query made (the string the value closed, or a number): does the rest
 * read as injected SQL? `or 1=1`, `and sleep(5)`, `; drop table`, `union select`,
 * `order by 3--`, `) or (`, a comment that cuts the query.
 */
function breakoutAt(t: Token[], i: i32, quoted: bool): bool {
  const n = t.length;
  if (i >= n) return false;
  const a = t[i];
  if (a.type == T_RPAREN) {
    // `') or ('1'='1`, `')--`, `'); drop …`
    if (i + 1 >= n) return false;
    const b = t[i + 1];
    if (b.type == T_COMMENT) return quoted;
    return breakoutAt(t, i + 1, quoted) || (b.type == T_RPAREN && breakoutAt(t, i + 2, quoted));
  }
  if (a.type == T_COMMENT) return quoted && a.text != "/*";
  if (a.type == T_SEMI) return statementAt(t, i + 1) || (i + 1 < n && t[i + 1].type == T_STATEMENT && i + 2 < n);
  if (a.type == T_UNION) return unionSelectAt(t, i);
  if (isClauseKeyword(a)) {
    if (i + 1 >= n) return false;
    const b = t[i + 1];
    return b.type == T_NUMBER || b.type == T_COMMENT || (b.type == T_WORD && (i + 2 >= n || t[i + 2].type == T_COMMENT || t[i + 2].type == T_SEMI)) || b.type == T_LPAREN;
  }
  if (a.type == T_LOGIC) {
    if (i + 1 >= n) return false;
    const b = t[i + 1];
    if (comparisonAt(t, i + 1)) return true;
    if (dangerousCallAt(t, i + 1)) return true;
    if (b.type == T_FUNCTION && i + 2 < n && t[i + 2].type == T_LPAREN) return true;
    if (b.type == T_LPAREN) {
      let j = i + 1;
      while (j < n && t[j].type == T_LPAREN) j++;
      if (j < n && (t[j].type == T_STATEMENT || comparisonAt(t, j))) return true;
    }
    if (isValue(b.type) && (i + 2 >= n ? quoted && b.type == T_NUMBER : t[i + 2].type == T_COMMENT || t[i + 2].type == T_SEMI)) return true;
    if (b.type == T_OP && b.text == "not" && i + 2 < n && isValue(t[i + 2].type)) return true;
    return false;
  }
  if (a.type == T_OP && quoted) {
    // `'+sleep(5)+'`, `'||pg_sleep(5)--`, `'=''or'`
    if (dangerousCallAt(t, i + 1)) return true;
    if (i + 1 < n && t[i + 1].type == T_LPAREN && i + 2 < n && t[i + 2].type == T_STATEMENT) return true;
    if (i + 2 < n && isOperand(t[i + 1].type) && (breakoutAt(t, i + 2, quoted))) return isComparison(a);
  }
  return false;
}

/**
 * The rule that matches `v` (already decoded and lower case) at paranoia level `pl`:
 * 7001 (injection shape, PL1), 7010 (weaker shapes, PL2), or 0.
 */
export function sqliShape(v: string, pl: i32): i32 {
  if (v.length < 2) return 0;
  const hasSingle = v.indexOf("'") >= 0;
  const hasDouble = v.indexOf("\"") >= 0;
  // Every context the value may be pasted into: as is (a number, a bare word), inside '…', inside "…".
  for (let ctx = 0; ctx < 3; ctx++) {
    if (ctx == 1 && !hasSingle) continue;
    if (ctx == 2 && !hasDouble) continue;
    const t = tokenize(v, ctx == 0 ? 0 : ctx == 1 ? 0x27 : 0x22, 10);
    if (t.length == 0) continue;
    const quoted = ctx > 0;
    if (quoted) {
      if (breakoutAt(t, 1, true)) return 7001;
      // `admin' --`
      if (t.length >= 2 && t[1].type == T_COMMENT && t[1].text != "/*") return 7001;
    } else {
      if (t[0].type == T_NUMBER && breakoutAt(t, 1, false)) return 7001;
      if (t[0].type == T_SEMI && statementAt(t, 1)) return 7001;
      if (t[0].type == T_LPAREN && statementAt(t, 1)) return 7001;
    }
    for (let i = 0; i < t.length; i++) {
      const x = t[i];
      if (x.type == T_UNION && unionSelectAt(t, i)) return 7001;
      if (x.type == T_SEMI && i > 0 && statementAt(t, i + 1)) return 7001;
      if (dangerousCallAt(t, i) && i + 2 < t.length && (isValue(t[i + 2].type) || t[i + 2].type == T_RPAREN || t[i + 2].type == T_LPAREN || t[i + 2].type == T_FUNCTION)) return 7001;
      if (x.type == T_LOGIC && i + 3 < t.length + 0 && tautologyAt(t, i + 1)) return 7001;
      if (x.type == T_OP && (x.text == "=" || x.text == "in") && i + 2 < t.length && t[i + 1].type == T_LPAREN && t[i + 2].type == T_STATEMENT && statementAt(t, i + 2)) return 7001;
      if (x.type == T_LOGIC && i + 2 < t.length && t[i + 1].type == T_LPAREN && t[i + 2].type == T_STATEMENT && statementAt(t, i + 2)) return 7001;
    }
    if (pl >= 2) {
      if (!quoted && statementAt(t, 0) && completeStatement(t)) return 7010;
      if (!quoted && t.length >= 2 && t[0].type == T_NUMBER && t[1].type == T_COMMENT) return 7010;
      for (let i = 0; i < t.length; i++) {
        const x = t[i];
        if (x.type == T_LOGIC && i + 2 < t.length && comparisonAt(t, i + 1) && (t[i + 2].text == "=" || t[i + 2].text == "<>" || t[i + 2].text == "!=") && (i == 0 || isOperand(t[i - 1].type) || t[i - 1].type == T_RPAREN)) return 7010;
        if (x.type == T_LPAREN && i + 1 < t.length && t[i + 1].type == T_STATEMENT && statementAt(t, i + 1)) return 7010;
        if (x.type == T_FUNCTION && i + 1 < t.length && t[i + 1].type == T_LPAREN && i + 2 < t.length && (t[i + 2].type == T_NUMBER || t[i + 2].type == T_VAR || t[i + 2].type == T_STATEMENT)) return 7010;
        if (x.type == T_VAR && x.text.startsWith("@@")) return 7010;
      }
    }
  }
  return 0;
}

function isEquality(t: Token): bool {
  return t.type == T_OP && (t.text == "=" || t.text == "==" || t.text == "<>" || t.text == "!=" || t.text == "<=>" || t.text == "like" || t.text == "is" || t.text.startsWith("is ") || t.text.startsWith("not"));
}

/** `1=1`, `'a'='a'`, `x=x`, `1=2`: an equality of two literals the query did not need — always true or always false. */
function tautologyAt(t: Token[], i: i32): bool {
  if (i + 2 >= t.length) return false;
  const a = t[i], op = t[i + 1], b = t[i + 2];
  if (!isOperand(a.type) || !isOperand(b.type) || !isComparison(op)) return false;
  if (!isEquality(op)) return false;
  if (a.text == b.text && a.type == b.type) return true;
  return a.type == T_NUMBER && b.type == T_NUMBER;
}

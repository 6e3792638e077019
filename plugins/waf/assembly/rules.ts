// The rule table (ids, classes, severities, paranoia levels) and the rules that are not
// tokenizers: path traversal, remote file inclusion, command injection, scanners.
import { C_DOLLAR, C_PAREN, C_PIPE, C_QUOTE, C_SEMI, C_SLASH, hasWord, isAlpha, isDigit, isSpace, isWordChar, setOf } from "./text";

export const CRITICAL: i32 = 5;
export const ERROR: i32 = 4;
export const WARNING: i32 = 3;
export const NOTICE: i32 = 2;

export class Rule {
  constructor(public id: i32, public cls: string, public severity: i32, public pl: i32, public name: string) {}
}

/** Every rule; docs/waf.md lists the same table. */
export const RULES: Rule[] = [
  new Rule(1001, "protocol", CRITICAL, 1, "NUL byte in the request"),
  new Rule(1002, "protocol", CRITICAL, 1, "body that does not parse as its content type"),
  new Rule(1003, "protocol", WARNING, 1, "invalid percent-encoding"),
  new Rule(1004, "protocol", WARNING, 2, "unusual method"),
  new Rule(1005, "protocol", NOTICE, 2, "body of a content type not inspected"),
  new Rule(1006, "protocol", WARNING, 1, "encoded body not inspected"),
  new Rule(1007, "protocol", WARNING, 2, "too many parameters"),
  new Rule(1008, "protocol", NOTICE, 3, "very long parameter"),
  new Rule(2001, "scanner", CRITICAL, 1, "security scanner user agent"),
  new Rule(2002, "scanner", CRITICAL, 1, "security scanner header"),
  new Rule(2003, "scanner", NOTICE, 2, "scripting client or empty user agent"),
  new Rule(3001, "traversal", CRITICAL, 1, "path traversal sequence"),
  new Rule(3002, "traversal", CRITICAL, 1, "operating system file"),
  new Rule(3003, "traversal", WARNING, 2, "hidden or backup file"),
  new Rule(4001, "rfi", CRITICAL, 1, "stream wrapper or dangerous URL scheme"),
  new Rule(4002, "rfi", CRITICAL, 1, "URL to an IP address"),
  new Rule(4003, "rfi", CRITICAL, 1, "URL with a trailing question mark or NUL"),
  new Rule(4004, "rfi", CRITICAL, 1, "URL in an include-style parameter"),
  new Rule(4005, "rfi", WARNING, 3, "URL to another host"),
  new Rule(5001, "rce", CRITICAL, 1, "shell command after a command separator"),
  new Rule(5002, "rce", CRITICAL, 1, "shell command substitution or $IFS"),
  new Rule(5003, "rce", CRITICAL, 1, "shell, interpreter or reverse shell invocation"),
  new Rule(5010, "rce", WARNING, 2, "command name after a command separator"),
  new Rule(6001, "xss", CRITICAL, 1, "script-capable HTML tag"),
  new Rule(6002, "xss", CRITICAL, 1, "event handler attribute"),
  new Rule(6003, "xss", CRITICAL, 1, "script URL"),
  new Rule(6004, "xss", CRITICAL, 1, "script sink"),
  new Rule(6005, "xss", CRITICAL, 1, "script in CSS"),
  new Rule(6010, "xss", WARNING, 2, "HTML tag"),
  new Rule(6011, "xss", ERROR, 2, "script dialog or eval call"),
  new Rule(6020, "xss", NOTICE, 3, "markup opening"),
  new Rule(7001, "sqli", CRITICAL, 1, "SQL injection token shape"),
  new Rule(7002, "sqli", CRITICAL, 1, "SQL catalog, system variable or executable comment"),
  new Rule(7010, "sqli", CRITICAL, 2, "SQL statement or weaker injection shape"),
  new Rule(7020, "sqli", WARNING, 3, "many SQL metacharacters"),
  new Rule(7021, "sqli", NOTICE, 4, "SQL metacharacter"),
];

function byId(): Map<i32, Rule> {
  const m = new Map<i32, Rule>();
  for (let i = 0; i < RULES.length; i++) m.set(RULES[i].id, RULES[i]);
  return m;
}

const BY_ID = byId();

export function rule(id: i32): Rule {
  return BY_ID.get(id);
}

export function knownRule(id: i32): bool {
  return BY_ID.has(id);
}

// ---- traversal ----

/** `../x` or `..\x` (not `.../`, an ellipsis, nor `../` ending a word), after decoding; the match or "". */
export function traversal(v: string): string {
  let from = 0;
  while (true) {
    const i = v.indexOf("..", from);
    if (i < 0) return "";
    const before = i > 0 ? v.charCodeAt(i - 1) : 0x2f;
    const after = i + 2 < v.length ? v.charCodeAt(i + 2) : 0;
    const next = i + 3 < v.length ? v.charCodeAt(i + 3) : 0x20;
    if (before != 0x2e && (after == 0x2f || after == 0x5c) && !isSpace(next) && (before == 0x2f || before == 0x5c || before == 0x3d || isSpace(before) || i == 0 || before == 0x3a || before == 0x22 || before == 0x27)) return v.substring(i, min(v.length, i + 24));
    from = i + 2;
  }
}

const OS_FILES: string[] = [
  "etc/passwd", "etc/shadow", "etc/group", "etc/sudoers", "etc/crontab", "proc/self/", "proc/version",
  "proc/cpuinfo", "/var/log/", "boot.ini", "win.ini", "system.ini", "windows/system32", "windows\\system32", "winnt/", "\\windows\\",
  ".htpasswd", ".htaccess", "/.ssh/", "id_rsa", "authorized_keys", "web.config", "wp-config.php", "/.git/", ".bash_history",
  "/root/", "etc/mysql/my.cnf", "etc/nginx/", "/etc/apache2/", "c:\\", "c:/windows", "/usr/local/etc",
];

export function osFile(v: string): string {
  for (let i = 0; i < OS_FILES.length; i++) {
    const f = OS_FILES[i];
    const at = v.indexOf(f);
    if (at < 0) continue;
    // A drive letter alone must start the value ("c:\…"), or it is prose.
    if (f == "c:\\" && at != 0) continue;
    if (f == "/root/" && at != 0) continue;
    return f;
  }
  return "";
}

const HIDDEN: string[] = ["/.env", "/.git", "/.svn", "/.hg", "/.ds_store", "/.idea", ".bak", ".old", ".swp", "~", ".sql", "/.aws/", ".orig"];

export function hiddenFile(path: string): string {
  for (let i = 0; i < HIDDEN.length; i++) {
    const h = HIDDEN[i];
    if (h.length <= 1 || h == ".bak" || h == ".old" || h == ".swp" || h == ".sql" || h == ".orig") {
      if (path.endsWith(h)) return h;
    } else if (path.indexOf(h) >= 0) return h;
  }
  return "";
}

// ---- remote file inclusion ----

const WRAPPERS: string[] = ["php://", "phar://", "zip://", "expect://", "data://", "glob://", "file://", "jar:", "gopher://", "dict://", "ldap://", "compress.zlib://", "compress.bzip2://", "ogg://", "rar://", "ssh2.", "tftp://"];
const INCLUDE_PARAMS: string[] = ["file", "page", "include", "inc", "path", "template", "tpl", "doc", "document", "folder", "dir", "lang", "language", "module", "mod", "conf", "config", "style", "load", "read", "show", "view", "site", "theme", "layout", "pg", "cat", "filename", "skin", "content"];

function startsWithUrl(v: string): i32 {
  if (v.startsWith("http://")) return 7;
  if (v.startsWith("https://")) return 8;
  if (v.startsWith("ftp://") || v.startsWith("ftps://")) return v.charCodeAt(3) == 0x73 ? 7 : 6;
  if (v.startsWith("//") && v.length > 2 && isWordChar(v.charCodeAt(2))) return 2;
  return 0;
}

/** The host of the URL `v` starts with (scheme length `at`), without port or credentials. */
function urlHost(v: string, at: i32): string {
  let e = at;
  while (e < v.length) {
    const c = v.charCodeAt(e);
    if (c == 0x2f || c == 0x3f || c == 0x23 || c == 0x5c) break;
    e++;
  }
  let host = v.substring(at, e);
  const cred = host.lastIndexOf("@");
  if (cred >= 0) host = host.substring(cred + 1);
  if (host.startsWith("[")) return host;
  const colon = host.indexOf(":");
  return colon >= 0 ? host.substring(0, colon) : host;
}

function isIpHost(h: string): bool {
  if (h.startsWith("[")) return true;
  if (h.length == 0) return false;
  // Dotted quads, a decimal or hex integer (http://2130706433/), octal parts.
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    if (!(isDigit(c) || c == 0x2e || c == 0x78 || (c >= 0x61 && c <= 0x66))) return false;
  }
  return isDigit(h.charCodeAt(0));
}

/** The RFI rule `v` (trimmed, lower case) matches for a parameter called `name`, or 0. */
export function rfi(v: string, name: string, requestHost: string, pl: i32): i32 {
  for (let i = 0; i < WRAPPERS.length; i++) if (v.startsWith(WRAPPERS[i])) return 4001;
  const at = startsWithUrl(v);
  if (at == 0) return 0;
  const rest = v.substring(at);
  if (v.endsWith("?") || v.indexOf("\u0000") >= 0 || v.endsWith("%00") || rest.indexOf(".txt?") >= 0 || rest.indexOf(".php?") >= 0 && v.endsWith("?")) return 4003;
  let base = name;
  const dot = base.lastIndexOf(".");
  if (dot >= 0) base = base.substring(dot + 1);
  const br = base.indexOf("[");
  if (br >= 0) base = base.substring(0, br);
  if (INCLUDE_PARAMS.includes(base)) return 4004;
  const host = urlHost(v, at);
  if (isIpHost(host)) return 4002;
  if (pl >= 3 && host.length > 0 && host != requestHost) return 4005;
  return 0;
}

// ---- command injection ----

const COMMANDS: string[] = [
  "cat", "ls", "id", "whoami", "uname", "wget", "curl", "nc", "ncat", "netcat", "bash", "sh", "zsh", "dash", "ksh", "python", "python3",
  "perl", "ruby", "php", "ping", "nslookup", "dig", "host", "chmod", "chown", "rm", "echo", "sleep", "ifconfig", "ipconfig", "net", "cmd",
  "powershell", "pwsh", "type", "dir", "systeminfo", "tasklist", "busybox", "telnet", "socat", "base64", "env", "printenv", "passwd",
  "useradd", "crontab", "kill", "pkill", "head", "tail", "more", "less", "find", "grep", "awk", "sed", "xargs", "tftp", "scp", "ssh",
  "nohup", "sudo", "su", "mkfifo", "mknod", "touch", "cp", "mv", "tar", "unzip", "gcc", "whoami.exe", "certutil", "bitsadmin", "wmic",
  "reg", "net.exe", "cscript", "wscript", "mshta", "rundll32", "regsvr32", "timeout", "hostname", "pwd", "set", "export", "od", "xxd",
  "nmap", "lua", "node", "java", "expr", "eval", "exec", "sort", "uniq", "wc", "w", "who", "last", "ps", "netstat", "ss", "lsof", "uptime",
];
const COMMAND_SET = setOf(COMMANDS);

/** Commands that are ordinary English words: they need an argument that looks like a shell's. */
const WORDY: string[] = ["cat", "type", "host", "set", "find", "more", "less", "head", "tail", "sort", "touch", "kill", "dir", "net", "last", "who", "w", "sleep", "echo", "export", "timeout", "env", "eval", "exec", "expr", "id", "ps", "ss", "su", "cp", "mv", "dig", "reg", "java", "node", "lua", "od", "wc", "uniq", "pwd", "hostname", "uptime"];
const WORDY_SET = setOf(WORDY);

/** Whether the text at `i` looks like a shell argument: an option, a path, a variable, a redirection, a number, or nothing. */
function shellArgument(v: string, i: i32): bool {
  while (i < v.length && (v.charCodeAt(i) == 0x20 || v.charCodeAt(i) == 0x09)) i++;
  if (i >= v.length) return true;
  const c = v.charCodeAt(i);
  if (c == 0x2d || c == 0x2b || c == 0x2f || c == 0x24 || c == 0x7e || c == 0x3e || c == 0x3c || c == 0x7c || c == 0x3b || c == 0x26 || c == 0x60 || c == 0x22 || c == 0x27 || c == 0x5c || c == 0x29 || c == 0x0a || c == 0x2a) return true;
  if (driveLetter(v, i)) return true;
  // Another command (`busybox nc …`).
  const other = commandAt(v, i);
  if (other.length > 0 && !WORDY_SET.has(other)) return true;
  if (c == 0x2e && i + 1 < v.length && (v.charCodeAt(i + 1) == 0x2f || v.charCodeAt(i + 1) == 0x2e)) return true;
  if (isDigit(c)) {
    // `sleep 5`, `ping -c 1`, but `cat 3 lives` is prose: a lone number ends the value or the command.
    let j = i;
    while (j < v.length && (isDigit(v.charCodeAt(j)) || v.charCodeAt(j) == 0x2e)) j++;
    return j >= v.length || v.charCodeAt(j) == 0x3b || v.charCodeAt(j) == 0x7c || v.charCodeAt(j) == 0x26 || v.charCodeAt(j) == 0x60 || v.charCodeAt(j) == 0x0a;
  }
  // An IP address (`ping 10.0.0.1`), a host (`nslookup evil.example`) or a URL.
  let j = i;
  let dots = 0;
  while (j < v.length && !isSpace(v.charCodeAt(j))) {
    const d = v.charCodeAt(j);
    if (d == 0x2e) dots++;
    else if (d == 0x3a && j + 2 < v.length && v.charCodeAt(j + 1) == 0x2f) return true;
    else if (!(isAlpha(d) || isDigit(d) || d == 0x2d)) return false;
    j++;
  }
  return dots >= 1 && j - i > 3 && v.charCodeAt(j - 1) != 0x2e;
}

/** The command word at `i` (a path prefix such as `/bin/` or `/usr/bin/` is skipped), or "". */
function commandAt(v: string, i: i32): string {
  while (i < v.length && (isSpace(v.charCodeAt(i)) || v.charCodeAt(i) == 0x28 || v.charCodeAt(i) == 0x7b)) i++;
  let j = i;
  while (j < v.length && (isWordChar(v.charCodeAt(j)) || v.charCodeAt(j) == 0x2f || v.charCodeAt(j) == 0x2e || v.charCodeAt(j) == 0x5c)) j++;
  let w = v.substring(i, j);
  const slash = max(w.lastIndexOf("/"), w.lastIndexOf("\\"));
  if (slash >= 0) w = w.substring(slash + 1);
  if (w.endsWith(".exe")) w = w.substring(0, w.length - 4);
  return COMMAND_SET.has(w) ? w : "";
}

function commandEnd(v: string, i: i32): i32 {
  while (i < v.length && (isSpace(v.charCodeAt(i)) || v.charCodeAt(i) == 0x28 || v.charCodeAt(i) == 0x7b)) i++;
  while (i < v.length && (isWordChar(v.charCodeAt(i)) || v.charCodeAt(i) == 0x2f || v.charCodeAt(i) == 0x2e || v.charCodeAt(i) == 0x5c)) i++;
  return i;
}

export class CmdResult {
  constructor(public rule: i32, public data: string) {}
}

const NO_CMD = new CmdResult(0, "");

const SHELLS: string[] = ["/bin/sh", "/bin/bash", "/bin/zsh", "/bin/dash", "/usr/bin/env ", "cmd.exe", "cmd /c", "powershell -", "powershell.exe", "nc -e", "ncat -e", "bash -i", "sh -i", "bash -c", "sh -c", "python -c", "perl -e", "php -r", "ruby -e", "iex(", "invoke-expression", "downloadstring(", "net user", "net localgroup", "whoami /"];

function shellInvocation(v: string): string {
  for (let k = 0; k < SHELLS.length; k++) {
    const at = v.indexOf(SHELLS[k]);
    if (at < 0) continue;
    const before = at > 0 ? v.charCodeAt(at - 1) : 0x20;
    if (!isAlpha(before)) return SHELLS[k];
  }
  return "";
}

/** The command injection rule `v` (decoded, lower case; `mask` its charMask) matches, or rule 0. */
export function commandInjection(v: string, pl: i32, mask: u32): CmdResult {
  const n = v.length;
  if ((mask & C_DOLLAR) != 0 && (v.indexOf("${ifs") >= 0 || v.indexOf("$ifs") >= 0)) return new CmdResult(5002, "$IFS");
  if ((mask & C_SLASH) != 0 && (v.indexOf("/dev/tcp/") >= 0 || v.indexOf("/dev/udp/") >= 0)) return new CmdResult(5003, "/dev/tcp/");
  // Every invocation in SHELLS has a `/`, `(`, `.exe`, ` -` or `net `.
  if ((mask & (C_SLASH | C_PAREN)) != 0 || v.indexOf(" -") >= 0 || v.indexOf(".exe") >= 0 || v.indexOf("net ") >= 0) {
    const at = shellInvocation(v);
    if (at.length > 0) return new CmdResult(5003, at);
  }
  if ((mask & (C_SEMI | C_PIPE | C_QUOTE | C_DOLLAR)) == 0) return NO_CMD;
  let weak: CmdResult = NO_CMD;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    let after = -1;
    if (c == 0x3b || c == 0x0a || c == 0x7c || c == 0x26) after = i + 1;
    else if (c == 0x60) {
      // A markdown fence or inline code (```sh, ``) is not a substitution; one needs its closing backtick.
      if ((i + 1 < n && v.charCodeAt(i + 1) == 0x60) || (i > 0 && v.charCodeAt(i - 1) == 0x60) || v.indexOf("`", i + 1) < 0) continue;
      after = i + 1;
    }
    else if (c == 0x24 && i + 1 < n && v.charCodeAt(i + 1) == 0x28) after = i + 2;
    if (after < 0) continue;
    if (after < n && (v.charCodeAt(after) == 0x7c || v.charCodeAt(after) == 0x26)) after++;
    const cmd = commandAt(v, after);
    if (cmd.length == 0) continue;
    const end = commandEnd(v, after);
    const data = v.substring(i, min(n, end + 16));
    // Substitution: `id` or $(id …) is a command whatever follows.
    if (c == 0x60 || c == 0x24) {
      if (!WORDY_SET.has(cmd) || shellArgument(v, end) || (end < n && (v.charCodeAt(end) == 0x60 || v.charCodeAt(end) == 0x29))) return new CmdResult(5002, data);
      continue;
    }
    // `&` in prose is an ampersand ("Tom & Jerry"); as a separator it is followed by a command and its arguments.
    if (shellArgument(v, end) && (!WORDY_SET.has(cmd) || end >= n || argumentLooksShell(v, end))) return new CmdResult(5001, data);
    if (pl >= 2 && weak.rule == 0) weak = new CmdResult(5010, data);
  }
  return weak;
}

/** `c:\` or `c:/` at `i`. */
function driveLetter(v: string, i: i32): bool {
  return i + 2 < v.length && isAlpha(v.charCodeAt(i)) && v.charCodeAt(i + 1) == 0x3a && (v.charCodeAt(i + 2) == 0x5c || v.charCodeAt(i + 2) == 0x2f);
}

/** Stronger than shellArgument, for command names that are English words: an option, a path or a variable. */
function argumentLooksShell(v: string, i: i32): bool {
  while (i < v.length && (v.charCodeAt(i) == 0x20 || v.charCodeAt(i) == 0x09)) i++;
  if (i >= v.length) return true;
  const c = v.charCodeAt(i);
  if (c == 0x2d || c == 0x2f || c == 0x24 || c == 0x7e || c == 0x3e || c == 0x7c || c == 0x3b || c == 0x60 || c == 0x26 || c == 0x0a || c == 0x5c) return true;
  if (driveLetter(v, i)) return true;
  if (c == 0x2e && i + 1 < v.length && (v.charCodeAt(i + 1) == 0x2f || v.charCodeAt(i + 1) == 0x2e)) return true;
  return isDigit(c) && shellArgument(v, i);
}

// ---- scanners ----

const SCANNERS: string[] = [
  "sqlmap", "nikto", "nmap", "masscan", "dirbuster", "gobuster", "wpscan", "acunetix", "nessus", "openvas", "w3af", "zgrab", "nuclei",
  "havij", "netsparker", "appscan", "arachni", "skipfish", "whatweb", "wfuzz", "ffuf", "feroxbuster", "jaeles", "commix", "xsstrike",
  "fimap", "paros", "webinspect", "zmeu", "morfeus", "hydra", "jorgee", "brutus", "burpcollaborator", "qualys", "detectify", "joomscan",
  "dirb/", "grabber", "bsqlbf", "mysqloit", "pangolin", "sqlninja", "absinthe", "webshag", "vega/", "zap/", "owasp zap", "nuclei -",
  "cgichk", "metis", "n-stealth", "httprint", "dotdotpwn", "wapiti", "xenu", "blackwidow", "webvulnscan", "sitelockspider", "crimscanner",
];
const CLIENTS: string[] = ["python-requests", "python-urllib", "go-http-client", "libwww-perl", "curl/", "wget/", "java/", "okhttp", "httpclient", "aiohttp", "node-fetch", "axios/", "ruby", "php/", "powershell"];
const SCANNER_HEADERS: string[] = ["acunetix-aspect", "acunetix-aspect-password", "acunetix-aspect-queries", "x-scanner", "x-wipp", "x-request-memo", "x-arachni-scan-seed", "x-ratproxy-loop", "bugbounty", "x-bug-bounty"];

export function scannerAgent(ua: string): string {
  for (let i = 0; i < SCANNERS.length; i++) if (ua.indexOf(SCANNERS[i]) >= 0) return SCANNERS[i];
  return "";
}

export function scriptingAgent(ua: string): string {
  if (ua.length == 0) return "(empty)";
  for (let i = 0; i < CLIENTS.length; i++) if (ua.indexOf(CLIENTS[i]) >= 0) return CLIENTS[i];
  return "";
}

export function scannerHeader(name: string): bool {
  return SCANNER_HEADERS.includes(name);
}

// ---- SQL extras ----

const SQL_WORDS: string[] = [
  "information_schema", "sysobjects", "syscolumns", "pg_catalog", "pg_shadow", "sqlite_master", "sqlite_schema", "xp_cmdshell",
  "sp_executesql", "sp_oacreate", "sp_makewebtask", "xp_regread", "xp_dirtree", "msysobjects", "mysql.user", "sys.objects", "sys.tables",
  "all_tables", "dba_users", "master..sysdatabases", "into outfile", "into dumpfile", "load data infile", "@@version", "@@datadir",
  "@@hostname", "@@basedir", "@@servername", "waitfor delay", "utl_inaddr", "dbms_pipe", "pg_read_file",
];

/** SQL catalogs, system variables and executable comments (rule 7002), or "". */
export function sqlWord(v: string): string {
  if (v.indexOf("/*!") >= 0) return "/*!";
  for (let i = 0; i < SQL_WORDS.length; i++) {
    const w = SQL_WORDS[i];
    if (w.charCodeAt(0) == 0x40 || w.indexOf(" ") > 0 || w.endsWith(")")) {
      if (v.indexOf(w) >= 0) return w;
    } else if (hasWord(v, w)) return w;
  }
  return "";
}

/** How many SQL metacharacters `v` holds (quotes, comments, `;`, `=`, parentheses). */
export function sqlMetaCount(v: string): i32 {
  let count = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c == 0x27 || c == 0x22 || c == 0x3b || c == 0x3d || c == 0x28 || c == 0x29 || c == 0x23 || c == 0x60) count++;
    else if (c == 0x2d && i + 1 < v.length && v.charCodeAt(i + 1) == 0x2d) count++;
    else if (c == 0x2f && i + 1 < v.length && v.charCodeAt(i + 1) == 0x2a) count++;
  }
  return count;
}

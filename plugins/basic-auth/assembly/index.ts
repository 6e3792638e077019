// Weir's first-party basic-auth filter: `Authorization: Basic` checked against an htpasswd
// file of bcrypt ($2a$/$2b$/$2y$) or SHA-crypt ($5$/$6$) hashes. The host does the hashing
// (crypto password-verify); the user becomes the request's `auth.subject`.
//
//   filter "basic" { type "basic-auth"; htpasswd "users.htpasswd"; realm "api"; }
import {
  Config, ConfigError, Decision, Hook, HttpContext, MetricKind, Request, RootContext,
  base64urlDecode, constantTimeEqual, defineMetric, fromUtf8, hmacSha256, passwordVerify, randomU64,
  recordMetric, registerPlugin,
} from "@weir/sdk-assemblyscript";
import { dataLines, fileText, jsonString, unauthorized } from "../../shared/auth";

const SCHEMA = '{"type":"object","additionalProperties":false,"required":["htpasswd"],"properties":{'
  + '"htpasswd":{"type":"object","additionalProperties":false,"required":["args","text"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string"}},"text":{"type":"string"}}},'
  + '"realm":{"type":"string","minLength":1,"pattern":"^[^\\"\\\\\\\\]*$"},'
  + '"strip":{"type":"boolean"},'
  + '"filter-name":{"type":"string"}}}';

/** Checked when the user is unknown, so an unknown user costs what a wrong password does. */
const NO_SUCH_USER = "$2b$10$Xs1/LvKMF8TEGJSkbquU9OR7QpRNxURO8D5vsMaa2LC82J.wRBLy2";
/** Users whose last good password is remembered (as an HMAC under a per-instance key). */
const MAX_REMEMBERED = 1024;
const MAX_ROUNDS: i64 = 100000;

/** Why `hash` cannot be checked, or null when it is a bcrypt or SHA-crypt hash. */
function unsupported(hash: string): string | null {
  if (hash.startsWith("$2a$") || hash.startsWith("$2b$") || hash.startsWith("$2y$")) {
    return hash.length == 60 ? null : "a bcrypt hash is 60 characters";
  }
  if (hash.startsWith("$5$") || hash.startsWith("$6$")) {
    if (hash.startsWith("rounds=", 3)) {
      const end = hash.indexOf("$", 10);
      const rounds = end < 0 ? -1 : I64.parseInt(hash.slice(10, end));
      if (rounds <= 0 || rounds > MAX_ROUNDS) return "SHA-crypt rounds must be between 1 and 100000";
    }
    return hash.split("$").length >= 4 ? null : "a SHA-crypt hash is $5$SALT$HASH or $6$SALT$HASH";
  }
  if (hash.startsWith("$apr1$")) return "$apr1$ (Apache MD5) hashes are not accepted; re-create the entry with htpasswd -B (bcrypt)";
  if (hash.startsWith("{SHA}")) return "{SHA} (unsalted SHA-1) hashes are not accepted; re-create the entry with htpasswd -B (bcrypt)";
  return "not a bcrypt ($2y$…) or SHA-crypt ($5$…, $6$…) hash; plain-text and crypt(3) DES entries are not accepted";
}

class BasicAuth extends RootContext {
  users: Map<string, string> = new Map<string, string>();
  realm: string = "weir";
  strip: bool = true;
  challenge: string = "";
  filter: string = "";
  decisions: u32 = 0;
  /** Key of the remembered-password HMACs; new per instance. */
  key: Uint8Array = new Uint8Array(32);
  remembered: Map<string, Uint8Array> = new Map<string, Uint8Array>();

  constructor() {
    super("basic-auth", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
    this.configSchema = SCHEMA;
  }

  configure(config: Config): ConfigError | null {
    this.realm = config.getString("realm", "weir");
    this.strip = config.getBool("strip", true);
    this.filter = config.getString("filter-name", "basic-auth");
    const text = fileText(config, "htpasswd");
    if (text !== null) {
      const node = config.child("htpasswd")!;
      const lines = dataLines(text);
      for (let i = 0; i < lines.length; i++) {
        const where = "htpasswd entry " + (i + 1).toString() + ": ";
        const colon = lines[i].indexOf(":");
        if (colon <= 0) {
          node.error(where + "expected `USER:HASH`");
          continue;
        }
        const user = lines[i].slice(0, colon);
        const hash = lines[i].slice(colon + 1).trim();
        const why = unsupported(hash);
        if (why !== null) node.error(where + "user " + jsonString(user) + ": " + why);
        else if (this.users.has(user)) node.error(where + "user " + jsonString(user) + " is listed twice");
        else this.users.set(user, hash);
      }
      if (this.users.size == 0) node.error("the htpasswd file lists no users");
    }
    this.challenge = "Basic realm=" + jsonString(this.realm) + ", charset=\"UTF-8\"";
    for (let i = 0; i < 4; i++) {
      const r = randomU64();
      for (let j = 0; j < 8; j++) this.key[i * 8 + j] = <u8>(r >> (j * 8));
    }
    this.decisions = defineMetric("basic_auth_decisions_total", MetricKind.Counter, "Basic-auth filter decisions", ["filter", "decision"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }

  /** Whether `password` is `user`'s: a remembered HMAC, else the host's hash check. */
  verify(user: string, password: Uint8Array): bool {
    const known = this.users.has(user);
    const mac = hmacSha256(this.key, password);
    if (known && this.remembered.has(user) && constantTimeEqual(mac, this.remembered.get(user))) return true;
    const v = passwordVerify(password, known ? this.users.get(user) : NO_SUCH_USER);
    if (!known || !v.valid) return false;
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
    this.remembered.set(user, mac);
    return true;
  }
}

/** Standard base64 (RFC 4648 §4) through the host's base64url decoder; null if not base64. */
function base64Decode(s: string): Uint8Array | null {
  let t = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 43) t += "-";
    else if (c == 47) t += "_";
    else if (c == 45 || c == 95) return null;
    else t += String.fromCharCode(c);
  }
  return base64urlDecode(t);
}

class Check extends HttpContext {
  constructor(id: u64, private root: BasicAuth) {
    super(id);
  }

  deny(code: string, message: string, decision: string): Decision {
    recordMetric(this.root.decisions, 1, [this.root.filter, decision]);
    return unauthorized(code, message, this.root.challenge);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const auth = request.header("authorization");
    if (auth === null || auth.length < 6 || auth.slice(0, 6).toLowerCase() != "basic ") {
      return this.deny("WEIR_ERR_AUTH_MISSING", "no basic-auth credentials", "missing");
    }
    const raw = base64Decode(auth.slice(6).trim());
    let colon = -1;
    if (raw !== null) {
      for (let i = 0; i < raw.length; i++) {
        if (raw[i] == 58) {
          colon = i;
          break;
        }
      }
    }
    if (raw === null || colon < 0) return this.deny("WEIR_ERR_AUTH_INVALID", "malformed basic-auth credentials", "invalid");
    const user = fromUtf8(raw.subarray(0, colon));
    if (!root.verify(user, raw.slice(colon + 1))) return this.deny("WEIR_ERR_AUTH_INVALID", "wrong user or password", "invalid");
    if (root.strip) request.removeHeader("authorization");
    request.setProperty("auth.subject", user);
    request.setProperty("auth.method", "basic");
    recordMetric(root.decisions, 1, [root.filter, "allowed"]);
    return Decision.continue();
  }
}

registerPlugin(new BasicAuth());

export * from "@weir/sdk-assemblyscript/exports";

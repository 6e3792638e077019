// Weir's first-party API-key filter: the key a client sends in a header must be one of the
// configured keys (or match a salted SHA-256 of one); the key's label becomes the request's
// `auth.subject`, for later filters (`rate-limit key "property:auth.subject"`) and the access log.
//
//   filter "keys" { type "api-key"; header "x-api-key"; keys-file "keys.txt"; strip #true; }
import {
  Config, ConfigError, Decision, Hook, HttpContext, MetricKind, Request, RootContext,
  constantTimeEqual, defineMetric, recordMetric, registerPlugin, sha256, utf8,
} from "@weir/sdk-assemblyscript";
import { dataLines, fileText, fromHex, unauthorized } from "../../shared/auth";

const KEY_NODE = '{"type":"object","additionalProperties":false,"required":["args","label"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string","minLength":1}},"label":{"type":"string","minLength":1}}}';
const SCHEMA = '{"type":"object","additionalProperties":false,"properties":{'
  + '"header":{"type":"string","minLength":1},'
  + '"keys-file":{"type":"object","additionalProperties":false,"required":["args","text"],"properties":{"args":{"type":"array","minItems":1,"maxItems":1,"items":{"type":"string"}},"text":{"type":"string"}}},'
  + '"key":{"anyOf":[' + KEY_NODE + ',{"type":"array","items":' + KEY_NODE + '}]},'
  + '"strip":{"type":"boolean"},'
  + '"filter-name":{"type":"string"}}}';

/** One accepted key: SHA-256 of the key (salt null) or of salt ‖ key. */
class Entry {
  constructor(public label: string, public salt: Uint8Array | null, public digest: Uint8Array) {}
}

function validLabel(label: string): bool {
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 95 || c == 58 || c == 64;
    if (!ok) return false;
  }
  return label.length > 0;
}

class ApiKey extends RootContext {
  header: string = "x-api-key";
  strip: bool = true;
  entries: Entry[] = [];
  filter: string = "";
  decisions: u32 = 0;
  challenge: string = "";

  constructor() {
    super("api-key", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
    this.configSchema = SCHEMA;
  }

  /** Adds `secret` (a key, or `sha256:SALT:HEX`) under `label`; an error names `node`. */
  add(node: Config, label: string, secret: string, where: string): void {
    if (!validLabel(label)) {
      node.error(where + "label \"" + label + "\" may hold only letters, digits and . _ - : @");
      return;
    }
    if (secret.startsWith("sha256:")) {
      const rest = secret.slice(7);
      const colon = rest.lastIndexOf(":");
      const digest: Uint8Array | null = colon < 0 ? null : fromHex(rest.slice(colon + 1));
      if (colon <= 0 || digest === null || digest.length != 32) {
        node.error(where + "a hashed key is sha256:SALT:HEX, with HEX the 64 hex digits of SHA-256(SALT followed by the key)");
        return;
      }
      this.entries.push(new Entry(label, utf8(rest.slice(0, colon)), digest!));
      return;
    }
    if (secret.length == 0) {
      node.error(where + "empty key for label \"" + label + "\"");
      return;
    }
    this.entries.push(new Entry(label, null, sha256(utf8(secret))));
  }

  configure(config: Config): ConfigError | null {
    this.header = config.getString("header", "x-api-key").toLowerCase();
    this.strip = config.getBool("strip", true);
    this.filter = config.getString("filter-name", "api-key");
    const text = fileText(config, "keys-file");
    if (text !== null) {
      const node = config.child("keys-file")!;
      const lines = dataLines(text);
      for (let i = 0; i < lines.length; i++) {
        // LABEL whitespace KEY
        const l = lines[i].replaceAll("\t", " ");
        const sp = l.indexOf(" ");
        if (sp < 0) {
          node.error("keys-file entry " + (i + 1).toString() + ": expected `LABEL KEY` (or `LABEL sha256:SALT:HEX`)");
          continue;
        }
        this.add(node, l.slice(0, sp), l.slice(sp + 1).trim(), "keys-file entry " + (i + 1).toString() + ": ");
      }
    }
    const keys = config.children("key");
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const v = k.arg(0);
      this.add(k, k.propString("label"), v !== null && v.asText !== null ? v.asText! : "", "key: ");
    }
    if (this.entries.length == 0) config.error("no keys: give `keys-file` or `key \"…\" label=\"…\"`");
    this.challenge = "ApiKey header=\"" + this.header + "\"";
    this.decisions = defineMetric("api_key_decisions_total", MetricKind.Counter, "API-key filter decisions", ["filter", "decision"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }

  /** The label of the entry `presented` matches, or null; every entry is compared (constant time each). */
  match(presented: string): string | null {
    const bytes = utf8(presented);
    const plain = sha256(bytes);
    let found: string | null = null;
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      let candidate = plain;
      if (e.salt !== null) {
        const salt = e.salt!;
        const salted = new Uint8Array(salt.length + bytes.length);
        salted.set(salt);
        salted.set(bytes, salt.length);
        candidate = sha256(salted);
      }
      if (constantTimeEqual(candidate, e.digest) && found === null) found = e.label;
    }
    return found;
  }
}

class Check extends HttpContext {
  constructor(id: u64, private root: ApiKey) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const presented = request.header(root.header);
    if (presented === null || presented.length == 0) {
      recordMetric(root.decisions, 1, [root.filter, "missing"]);
      return unauthorized("WEIR_ERR_AUTH_MISSING", "no API key in " + root.header, root.challenge);
    }
    const label = root.match(presented);
    if (label === null) {
      recordMetric(root.decisions, 1, [root.filter, "invalid"]);
      return unauthorized("WEIR_ERR_AUTH_INVALID", "the API key is not valid", root.challenge);
    }
    // The upstream gets the identity, not the secret.
    if (root.strip) request.removeHeader(root.header);
    request.setProperty("auth.subject", label);
    request.setProperty("auth.method", "api-key");
    recordMetric(root.decisions, 1, [root.filter, "allowed"]);
    return Decision.continue();
  }
}

registerPlugin(new ApiKey());

export * from "@weir/sdk-assemblyscript/exports";

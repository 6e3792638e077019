// deny-path: refuses requests by path prefix and/or method with a JSON error.
//
//   config {
//       status 403                               // optional, 400..=599
//       deny prefix="/admin"                     // any method
//       deny method="DELETE"                     // any path
//       deny prefix="/reports" method="POST"     // both must match
//   }
import { Config, ConfigError, Decision, Hook, HttpContext, Request, RootContext, header, registerPlugin } from "@weir/sdk-assemblyscript";

class Rule {
  constructor(public prefix: string | null, public method: string | null) {}
}

/** Segment-aware: `/admin` covers `/admin` and `/admin/x`, not `/administrator`. */
function under(path: string, prefix: string): bool {
  if (prefix.endsWith("/")) return path.startsWith(prefix);
  return path == prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) == 0x2f);
}

function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

class DenyPath extends RootContext {
  status: u16 = 403;
  rules: Rule[] = [];

  constructor() {
    super("deny-path", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }

  configure(config: Config): ConfigError | null {
    const s = config.child("status");
    if (s !== null) {
      const v = config.getInt("status", 0); // a non-integer is reported by the SDK
      if (v < 400 || v > 599) return new ConfigError("`status` must be an integer from 400 to 599", s.index);
      this.status = <u16>v;
    }
    const nodes = config.children("deny");
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      const prefix = n.prop("prefix");
      const method = n.prop("method");
      const p: string | null = prefix === null ? null : prefix.asText;
      const m: string | null = method === null ? null : method.asText;
      if ((prefix !== null && p === null) || (method !== null && m === null) || (p === null && m === null)) {
        return new ConfigError("`deny` needs prefix=\"/path\" and/or method=\"VERB\" (strings)", n.index);
      }
      if (p !== null && !p.startsWith("/")) return new ConfigError("`prefix` must start with /", n.index);
      this.rules.push(new Rule(p, m === null ? null : m!.toUpperCase()));
    }
    if (this.rules.length == 0) return new ConfigError("deny-path: at least one `deny` rule is needed");
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }
}

class Check extends HttpContext {
  constructor(id: u64, private root: DenyPath) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const path = request.path;
    const rules = this.root.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      const p = r.prefix;
      const m = r.method;
      if ((p === null || under(path, p)) && (m === null || m == request.method)) {
        const body = "{\"error\":\"forbidden\",\"path\":" + jsonString(path) + "}";
        return Decision.respond(this.root.status, body, [header("content-type", "application/json")]);
      }
    }
    return Decision.continue();
  }
}

registerPlugin(new DenyPath());

export * from "@weir/sdk-assemblyscript/exports";

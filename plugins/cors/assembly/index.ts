// Weir's first-party CORS filter (the Fetch standard's CORS protocol, server side): answers
// preflights itself and adds the CORS response headers to requests from allowed origins.
//
//   filter "cors" { type "cors"; allow-origins "https://app.example" "https://*.example.org";
//                   allow-methods "GET" "POST"; allow-credentials #true; max-age-secs 600 }
import {
  Config, ConfigError, ConfigValueTag, Decision, Header, Hook, HttpContext, MetricKind, Request, Response, RootContext,
  defineMetric, header, recordMetric, registerPlugin,
} from "@weir/sdk-assemblyscript";

const STRINGS = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":\"string\"}}]}";
const SCHEMA = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"allow-origins\"],\"properties\":{"
  + "\"allow-origins\":" + STRINGS + ",\"allow-methods\":" + STRINGS + ",\"allow-headers\":" + STRINGS + ",\"expose-headers\":" + STRINGS
  + ",\"allow-credentials\":{\"type\":\"boolean\"},\"max-age-secs\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":86400}"
  + ",\"filter-name\":{\"type\":\"string\"}}}";

/** Response headers this filter decides; an upstream's own copies are dropped. */
const OWNED = ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers",
  "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age"];

const PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
const REFUSED_BODY = "{\"error\":{\"code\":\"WEIR_ERR_CORS_PREFLIGHT_REFUSED\",\"status\":403,\"message\":\"the CORS preflight asks for an origin, method or header this route does not allow\"}}\n";

/** One `allow-origins` entry: `*`, an exact origin, or `scheme://*.domain[:port]`. */
class OriginPattern {
  constructor(public any: bool, public exact: string, public scheme: string, public suffix: string, public port: string) {}

  matches(origin: string): bool {
    if (this.any) return origin != "null";
    if (this.exact.length > 0) return origin == this.exact;
    if (!origin.startsWith(this.scheme)) return false;
    const rest = origin.substring(this.scheme.length);
    const colon = rest.indexOf(":");
    const host = colon < 0 ? rest : rest.substring(0, colon);
    const port = colon < 0 ? "" : rest.substring(colon);
    if (port != this.port || host.length <= this.suffix.length || !host.endsWith(this.suffix)) return false;
    // What the `*` stands for: one or more whole DNS labels.
    return validLabels(host.substring(0, host.length - this.suffix.length));
  }
}

function isLabelChar(c: i32): bool {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45; // a-z 0-9 -
}

/** `a` or `a.b`: non-empty labels of letters, digits and hyphens. */
function validLabels(s: string): bool {
  if (s.length == 0 || s.charCodeAt(0) == 46 || s.charCodeAt(s.length - 1) == 46) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 46) {
      if (s.charCodeAt(i - 1) == 46) return false;
    } else if (!isLabelChar(c)) return false;
  }
  return true;
}

/** `scheme://host[:port]` (lowercase) → null, or what is wrong with it. */
function originProblem(o: string): string | null {
  const sep = o.indexOf("://");
  if (sep <= 0) return "is not an origin (scheme://host[:port])";
  for (let i = 0; i < sep; i++) {
    const c = o.charCodeAt(i);
    if (!(isLabelChar(c) || c == 43 || c == 46)) return "has an invalid scheme";
  }
  let rest = o.substring(sep + 3);
  if (rest.indexOf("/") >= 0 || rest.indexOf("?") >= 0 || rest.indexOf("#") >= 0) return "has a path; an origin is scheme://host[:port] with no trailing slash";
  if (rest.startsWith("*.")) rest = rest.substring(2);
  let host = rest;
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0) return "has an unclosed [IPv6] host";
    host = "";
    rest = rest.substring(end + 1);
    if (rest.length > 0 && !rest.startsWith(":")) return "has text after its [IPv6] host";
  } else {
    const colon = rest.indexOf(":");
    host = colon < 0 ? rest : rest.substring(0, colon);
    rest = colon < 0 ? "" : rest.substring(colon);
    if (!validLabels(host)) return "has an invalid host";
  }
  if (rest.length > 0) {
    const port = rest.substring(1);
    if (port.length == 0 || port.length > 5) return "has an invalid port";
    for (let i = 0; i < port.length; i++) {
      const c = port.charCodeAt(i);
      if (c < 48 || c > 57) return "has an invalid port";
    }
  }
  return null;
}

/** Every argument of every `name` node, "A,B" split too (duplicates once); errors at the node. */
function list(config: Config, name: string, lower: bool): string[] {
  const out = new Array<string>(0);
  const nodes = config.children(name);
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n];
    for (let i = 0; i < node.args.length; i++) {
      const v = node.args[i];
      if (v.tag != ConfigValueTag.Text) {
        node.error("`" + name + "` arguments must be strings");
        continue;
      }
      const parts = v.asText!.split(",");
      for (let j = 0; j < parts.length; j++) {
        const p = lower ? parts[j].trim().toLowerCase() : parts[j].trim();
        if (p.length > 0 && !out.includes(p)) out.push(p);
      }
    }
  }
  return out;
}

/** A token of RFC 9110 (method and header names): visible ASCII but the separators. */
function isToken(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c >= 127) return false;
    switch (c) {
      case 34: case 40: case 41: case 44: case 47: case 58: case 59: case 60: case 61: case 62:
      case 63: case 64: case 91: case 92: case 93: case 123: case 125:
        return false;
    }
  }
  return true;
}

/** A reply header whose name is already lowercase (the SDK's `header` lowercases every name). */
function h(name: string, value: string): Header {
  const out = new Header();
  out.name = name;
  out.value = value;
  return out;
}

class Cors extends RootContext {
  origins: OriginPattern[] = [];
  /** Only `*`: the response does not depend on the origin. */
  anyOriginOnly: bool = false;
  methods: string[] = [];
  anyMethod: bool = false;
  headers: string[] = [];
  anyHeader: bool = false;
  expose: string = "";
  credentials: bool = false;
  maxAge: string = "";
  methodsText: string = "";
  headersText: string = "";
  filter: string = "";
  requests: u32 = 0;
  // Metric label values, built once.
  actualAllowed: string[] = [];
  actualRefused: string[] = [];
  preflightAllowed: string[] = [];
  preflightRefused: string[] = [];

  constructor() {
    super("cors", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders, Hook.OnResponseHeaders];
    this.configSchema = SCHEMA;
  }

  configure(config: Config): ConfigError | null {
    this.credentials = config.getBool("allow-credentials", false);
    const originsNode = config.child("allow-origins");
    const origins = list(config, "allow-origins", true);
    if (originsNode === null || origins.length == 0) config.error("allow-origins is required: the origins (scheme://host[:port]) allowed to read responses, `https://*.example.org` for subdomains, or \"*\"");
    for (let i = 0; i < origins.length; i++) {
      const o = origins[i];
      if (o == "*") {
        if (this.credentials) originsNode!.error("allow-origins \"*\" with allow-credentials #true would let every site send credentialed requests and read the answers; list the origins");
        this.origins.push(new OriginPattern(true, "", "", "", ""));
        continue;
      }
      if (o == "null") {
        this.origins.push(new OriginPattern(false, "null", "", "", ""));
        continue;
      }
      const problem = originProblem(o);
      if (problem !== null) {
        originsNode!.error("allow-origins: \"" + o + "\" " + problem);
        continue;
      }
      const star = o.indexOf("://*.");
      if (star < 0) {
        this.origins.push(new OriginPattern(false, o, "", "", ""));
        continue;
      }
      const rest = o.substring(star + 4); // ".example.org[:port]"
      const colon = rest.indexOf(":");
      this.origins.push(new OriginPattern(false, "", o.substring(0, star + 3), colon < 0 ? rest : rest.substring(0, colon), colon < 0 ? "" : rest.substring(colon)));
    }
    this.anyOriginOnly = this.origins.length == 1 && this.origins[0].any;

    const methods = list(config, "allow-methods", false);
    if (methods.length == 0) {
      methods.push("GET");
      methods.push("HEAD");
      methods.push("POST");
    }
    for (let i = 0; i < methods.length; i++) {
      const m = methods[i].toUpperCase();
      if (m == "*") this.anyMethod = true;
      else if (!isToken(m)) config.child("allow-methods")!.error("allow-methods: \"" + methods[i] + "\" is not a method name");
      else this.methods.push(m);
    }
    const headers = list(config, "allow-headers", true);
    for (let i = 0; i < headers.length; i++) {
      if (headers[i] == "*") this.anyHeader = true;
      else if (!isToken(headers[i])) config.child("allow-headers")!.error("allow-headers: \"" + headers[i] + "\" is not a header name");
      else this.headers.push(headers[i]);
    }
    const expose = list(config, "expose-headers", true);
    for (let i = 0; i < expose.length; i++) {
      const node = config.child("expose-headers")!;
      if (expose[i] == "*" && this.credentials) node.error("expose-headers \"*\" does not work with allow-credentials #true (browsers read it as a header named *); list the headers");
      else if (expose[i] != "*" && !isToken(expose[i])) node.error("expose-headers: \"" + expose[i] + "\" is not a header name");
    }
    this.expose = expose.join(", ");
    const maxAge = config.getInt("max-age-secs", -1);
    if (maxAge > 86400) config.child("max-age-secs")!.error("max-age-secs must be between 0 and 86400");
    if (maxAge >= 0) this.maxAge = maxAge.toString();
    this.methodsText = this.methods.join(", ");
    this.headersText = this.headers.join(", ");
    this.filter = config.getString("filter-name", "cors");
    this.requests = defineMetric("cors_requests_total", MetricKind.Counter, "Requests seen by the CORS filter", ["filter", "kind", "outcome"]);
    this.actualAllowed = [this.filter, "actual", "allowed"];
    this.actualRefused = [this.filter, "actual", "refused"];
    this.preflightAllowed = [this.filter, "preflight", "allowed"];
    this.preflightRefused = [this.filter, "preflight", "refused"];
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Exchange(id, this);
  }

  allowed(origin: string): bool {
    const o = lower(origin);
    for (let i = 0; i < this.origins.length; i++) if (this.origins[i].matches(o)) return true;
    return false;
  }

  /** Access-Control-Allow-Origin for an allowed origin: `*` only when no credentials and only `*` is listed. */
  allowOrigin(origin: string): string {
    return this.anyOriginOnly && !this.credentials ? "*" : origin;
  }
}

/** ASCII lowercase; the same string (no copy) when it has no A-Z. */
function lower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/** ASCII uppercase; the same string (no copy) when it has no a-z. */
function upper(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97 && c <= 122) return s.toUpperCase();
  }
  return s;
}

/** `a, b,c` → ["a", "b", "c"] lowercased (Access-Control-Request-Headers). */
function requestedHeaders(v: string | null): string[] {
  const out = new Array<string>(0);
  if (v === null) return out;
  const parts = v.split(",");
  for (let i = 0; i < parts.length; i++) {
    const p = lower(parts[i].trim());
    if (p.length > 0) out.push(p);
  }
  return out;
}

/** Whether a comma-separated header value lists `token` (or `*`), case-insensitively. */
function hasToken(value: string, token: string): bool {
  const parts = value.split(",");
  for (let i = 0; i < parts.length; i++) {
    const p = lower(parts[i].trim());
    if (p == token || p == "*") return true;
  }
  return false;
}

class Exchange extends HttpContext {
  /** The request's Origin when it is allowed (actual requests); empty otherwise. */
  origin: string = "";
  /** This filter answered the preflight: on-response-headers (which local replies pass through too) leaves it. */
  answered: bool = false;

  constructor(id: u64, private root: Cors) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const origin = request.header("origin");
    if (origin === null) return Decision.continue();
    const method = request.header("access-control-request-method");
    if (request.method == "OPTIONS" && method !== null) return this.preflight(request, origin, method);
    if (root.allowed(origin)) {
      this.origin = origin;
      recordMetric(root.requests, 1, root.actualAllowed);
    } else {
      recordMetric(root.requests, 1, root.actualRefused);
    }
    return Decision.continue();
  }

  /** A preflight never reaches the upstream: allowed → 204 with the allow headers, else 403 without them. */
  preflight(request: Request, origin: string, method: string): Decision {
    const root = this.root;
    const m = upper(method.trim());
    const wanted = requestedHeaders(request.header("access-control-request-headers"));
    this.answered = true;
    let ok = root.allowed(origin) && isToken(m) && (root.anyMethod || root.methods.includes(m));
    for (let i = 0; ok && i < wanted.length; i++) {
      const h = wanted[i];
      // Fetch: `*` never covers Authorization; it must be listed.
      ok = isToken(h) && (root.headers.includes(h) || (root.anyHeader && h != "authorization"));
    }
    if (!ok) {
      recordMetric(root.requests, 1, root.preflightRefused);
      return Decision.respond(403, REFUSED_BODY, [h("content-type", "application/json"), h("vary", PREFLIGHT_VARY)]);
    }
    recordMetric(root.requests, 1, root.preflightAllowed);
    const out: Header[] = [
      h("access-control-allow-origin", root.allowOrigin(origin)),
      // `*` lists are answered with what was asked: with credentials browsers read `*` literally.
      h("access-control-allow-methods", root.anyMethod ? m : root.methodsText),
      h("vary", PREFLIGHT_VARY),
    ];
    if (root.credentials) out.push(h("access-control-allow-credentials", "true"));
    const allowHeaders = root.anyHeader ? wanted.join(", ") : root.headersText;
    if (allowHeaders.length > 0) out.push(h("access-control-allow-headers", allowHeaders));
    if (root.maxAge.length > 0) out.push(h("access-control-max-age", root.maxAge));
    return Decision.respond(204, "", out);
  }

  onResponseHeaders(request: Request, response: Response): Decision {
    const root = this.root;
    if (this.answered) return Decision.continue();
    // Also local replies of later filters (a 401, a 429): scripts of allowed origins can read them.
    // One read of the head: the upstream's own CORS headers go, Vary is extended.
    const head = response.headers.entries();
    let vary = "";
    for (let i = 0; i < head.length; i++) {
      const name = head[i].name;
      if (name.startsWith("access-control-")) {
        if (OWNED.includes(name)) response.removeHeader(name);
      } else if (name == "vary") {
        vary = vary.length > 0 ? vary + ", " + head[i].value : head[i].value;
      }
    }
    if (!root.anyOriginOnly) {
      if (vary.length == 0) response.setHeader("vary", "Origin");
      else if (!hasToken(vary, "origin")) response.setHeader("vary", vary + ", Origin");
    }
    if (this.origin.length == 0) return Decision.continue();
    response.setHeader("access-control-allow-origin", root.allowOrigin(this.origin));
    if (root.credentials) response.setHeader("access-control-allow-credentials", "true");
    if (root.expose.length > 0) response.setHeader("access-control-expose-headers", root.expose);
    return Decision.continue();
  }
}

registerPlugin(new Cors());

export * from "@weir/sdk-assemblyscript/exports";

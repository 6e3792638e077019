// Weir's first-party web application firewall: its own tokenizers for SQL injection and XSS
// (sqli.ts, xss.ts), rules for path traversal, remote file inclusion, command injection,
// protocol anomalies and scanners (rules.ts), anomaly scoring and paranoia levels (engine.ts).
//
//   filter "w" { type "waf"; mode "block"; paranoia-level 1; anomaly-threshold 5; }
//
// Headers, path, query and cookies are inspected in on-request-headers; the body (buffered
// by the host up to max-body-inspection-bytes, decompressed by it within its caps) in
// on-request-body. Each match becomes an audit entry: an `audit.waf…` request property set in
// on-response-headers, which the host writes to the audit log (observability/audit.ts).
import {
  BodyDecision, BodyMode, Config, ConfigError, ConfigValueTag, Decision, Hook, HttpContext, LogLevel, MetricKind, Request, Response,
  RootContext, defineMetric, fromUtf8, header, log, recordMetric, registerPlugin,
} from "@weir/sdk-assemblyscript";
import { CLASSES, DATA_MAX, Exclusion, Inspection, knownRule } from "./engine";
import { Param, boundaryOf, parseCookies, parseError, parseJson, parseMultipart, parseUrlEncoded, resetParseError } from "./parse";
import { badEncoding, lower, percentDecode, resetBadEncoding, truncate } from "./text";

const BLOCK_BODY = "{\"error\":{\"code\":\"WEIR_ERR_WAF_BLOCKED\",\"status\":403,\"message\":\"the web application firewall blocked the request\"}}\n";

class Waf extends RootContext {
  block: bool = true;
  pl: i32 = 1;
  threshold: i32 = 5;
  inspectBody: bool = true;
  decompress: bool = true;
  contentTypes: string[] = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"];
  exclusions: Exclusion[] = [];
  offRoutes: string[] = [];
  filter: string = "waf";
  matchesMetric: u32 = 0;
  requestsMetric: u32 = 0;

  constructor() {
    super("waf", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders, Hook.OnRequestBody, Hook.OnResponseHeaders];
    // The host sets the real limit (max-body-inspection-bytes) for `type "waf"` filters.
    this.requestBody = BodyMode.buffered(1024 * 1024);
  }

  configure(config: Config): ConfigError | null {
    const mode = config.getString("mode", "block");
    if (mode != "block" && mode != "detect") config.error("mode must be block or detect");
    this.block = mode == "block";
    const pl = config.getInt("paranoia-level", 1);
    if (pl < 1 || pl > 4) config.error("paranoia-level must be 1, 2, 3 or 4");
    this.pl = <i32>pl;
    const t = config.getInt("anomaly-threshold", 5);
    if (t < 1) config.error("anomaly-threshold must be at least 1");
    this.threshold = <i32>t;
    const body = config.child("body-inspection");
    if (body !== null) {
      this.inspectBody = body.getBool("inspect-request-body", true);
      this.decompress = body.getBool("decompress", true);
      if (body.has("content-types")) {
        const list = body.getStrings("content-types");
        for (let i = 0; i < list.length; i++) list[i] = lower(list[i]);
        this.contentTypes = list;
      }
    }
    const ex = config.children("exclude");
    for (let i = 0; i < ex.length; i++) {
      const e = ex[i];
      let id: i32 = 0;
      let cls = "";
      const r = e.prop("rule");
      if (r !== null) {
        if (r.tag == ConfigValueTag.Integer) {
          id = <i32>r.asInteger;
          if (!knownRule(id)) e.error("exclude: no rule " + id.toString() + " (see docs/waf.md)");
        } else if (r.tag == ConfigValueTag.Text) {
          cls = r.asText!;
          if (!CLASSES.includes(cls)) {
            const n = parseInt(cls);
            if (!isNaN(n) && knownRule(<i32>n)) {
              id = <i32>n;
              cls = "";
            } else e.error("exclude: rule must be a rule id or one of " + CLASSES.join(", "));
          }
        } else e.error("exclude: rule must be a rule id or a class");
      }
      const x = new Exclusion(id, cls, e.propString("route", ""), e.propString("parameter", ""));
      if (x.wholeRoute) this.offRoutes.push(x.route);
      else this.exclusions.push(x);
    }
    this.filter = config.getString("filter-name", "waf");
    this.matchesMetric = defineMetric("waf_matches_total", MetricKind.Counter, "WAF rule matches", ["filter", "rule"]);
    this.requestsMetric = defineMetric("waf_requests_total", MetricKind.Counter, "Requests the WAF inspected, by outcome", ["filter", "outcome"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new WafRequest(id, this);
  }
}

function jsonString(s: string): string {
  const parts = new Array<string>(0);
  parts.push("\"");
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c || c < 0x20) {
      parts.push(s.substring(start, i));
      if (c == 0x22) parts.push("\\\"");
      else if (c == 0x5c) parts.push("\\\\");
      else {
        const hex = c.toString(16);
        parts.push("\\u" + "0000".substring(hex.length) + hex);
      }
      start = i + 1;
    }
  }
  parts.push(s.substring(start));
  parts.push("\"");
  return parts.join("");
}

/** The media type of a Content-Type value, lower case, without parameters. */
function mediaType(ct: string): string {
  const semi = ct.indexOf(";");
  return lower((semi < 0 ? ct : ct.substring(0, semi)).trim());
}

class WafRequest extends HttpContext {
  ins: Inspection | null = null;
  contentType: string = "";
  encoded: bool = false;
  host: string = "";
  finished: bool = false;
  outcome: string = "";
  audited: bool = false;

  constructor(id: u64, private root: Waf) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const route = request.routeName;
    if (root.offRoutes.includes(route)) return Decision.continue();
    const ins = new Inspection(root.pl, route, root.exclusions);
    this.ins = ins;
    let host = lower(request.authority);
    const colon = host.lastIndexOf(":");
    if (colon > 0 && !host.endsWith("]")) host = host.substring(0, colon);
    this.host = host;
    ins.head(request.method, request.path);
    const params = new Array<Param>(0);
    resetBadEncoding();
    parseUrlEncoded(request.query, "query:", params);
    if (badEncoding) ins.add(1003, "query", truncate(request.query, DATA_MAX));
    const headers = request.headers.entries();
    let ua = false;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      if (h.name == "cookie") parseCookies(h.value, params);
      else {
        if (h.name == "user-agent") ua = true;
        ins.header(h.name, h.value, host);
      }
      if (h.name == "content-type") this.contentType = h.value;
      if (h.name == "content-encoding" && lower(h.value).trim() != "identity") this.encoded = true;
    }
    if (!ua) ins.add(2003, "header:user-agent", "(none)");
    ins.values(params, host);
    if (root.block && ins.score >= root.threshold) return this.blocked();
    return Decision.continue();
  }

  onRequestBody(chunk: Uint8Array, end: bool): BodyDecision {
    const ins = this.ins;
    if (ins === null || !end) return BodyDecision.continue();
    const root = this.root;
    if (chunk.length > 0) this.body(ins, chunk);
    if (root.block && ins.score >= root.threshold) {
      this.blocked();
      return BodyDecision.respond(403, BLOCK_BODY, [header("content-type", "application/json")]);
    }
    return BodyDecision.continue();
  }

  body(ins: Inspection, chunk: Uint8Array): void {
    const root = this.root;
    if (this.encoded && !root.decompress) {
      ins.add(1006, "body", "content-encoding");
      return;
    }
    const type = mediaType(this.contentType);
    if (!root.contentTypes.includes(type) && !(type.endsWith("+json") && root.contentTypes.includes("application/json"))) {
      ins.add(1005, "body", type.length == 0 ? "(no content-type)" : type);
      return;
    }
    const body = fromUtf8(chunk);
    const params = new Array<Param>(0);
    resetParseError();
    if (type.indexOf("json") >= 0) {
      if (!parseJson(body, params)) ins.add(1002, "body", parseError);
    } else if (type == "application/x-www-form-urlencoded") {
      parseUrlEncoded(body, "body:", params);
    } else if (type == "multipart/form-data") {
      if (!parseMultipart(body, boundaryOf(this.contentType), params)) ins.add(1002, "body", parseError);
    } else {
      params.push(new Param("body", percentDecode(body, false)));
    }
    ins.values(params, this.host);
  }

  blocked(): Decision {
    this.finish("blocked");
    return Decision.respond(403, BLOCK_BODY, [header("content-type", "application/json")]);
  }

  /** Logs and counts the request's outcome once. */
  finish(outcome: string): void {
    if (this.finished) return;
    this.finished = true;
    const ins = this.ins;
    if (ins === null) return;
    const root = this.root;
    if (ins.matches.length == 0) {
      this.outcome = "clean";
      recordMetric(root.requestsMetric, 1, [root.filter, "clean"]);
      return;
    }
    if (outcome.length == 0) outcome = ins.score >= root.threshold ? "detected" : "passed";
    this.outcome = outcome;
    recordMetric(root.requestsMetric, 1, [root.filter, outcome]);
    const ids = new Array<string>(0);
    for (let i = 0; i < ins.matches.length; i++) {
      const m = ins.matches[i];
      ids.push(m.rule.id.toString() + " " + m.param);
      recordMetric(root.matchesMetric, 1, [root.filter, m.rule.id.toString()]);
    }
    log(outcome == "passed" ? LogLevel.Info : LogLevel.Warn, "waf " + outcome + " (score " + ins.score.toString() + ", threshold " + root.threshold.toString() + "): " + ids.join(", "));
  }

  onResponseHeaders(request: Request, response: Response): Decision {
    this.finish("");
    const ins = this.ins;
    if (ins === null || this.audited || ins.matches.length == 0) return Decision.continue();
    this.audited = true;
    const root = this.root;
    // One audit entry per match (the host writes `audit.*` properties to the audit log).
    for (let i = 0; i < ins.matches.length && i < 32; i++) {
      const m = ins.matches[i];
      request.setProperty(
        "audit.waf." + root.filter + "." + i.toString(),
        "{\"filter\":" + jsonString(root.filter) + ",\"rule\":" + m.rule.id.toString() + ",\"class\":" + jsonString(m.rule.cls) + ",\"message\":" + jsonString(m.rule.name) +
          ",\"severity\":" + m.rule.severity.toString() + ",\"parameter\":" + jsonString(truncate(m.param, 128)) + ",\"data\":" + jsonString(m.data) +
          ",\"score\":" + ins.score.toString() + ",\"outcome\":" + jsonString(this.outcome) + ",\"mode\":" + jsonString(root.block ? "block" : "detect") + "}",
      );
    }
    return Decision.continue();
  }
}

registerPlugin(new Waf());

export * from "@weir/sdk-assemblyscript/exports";

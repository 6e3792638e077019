// Weir's first-party IP filter: allow and deny lists of CIDRs (IPv4 and IPv6) checked against
// the client address Weir computes (the socket peer, or behind `trusted-proxies` the
// right-most untrusted forwarding hop). Deny wins; no allow list lets everything else in.
//
//   filter "ips" { type "ip-filter"; allow "10.0.0.0/8" "192.168.0.0/16"; deny "10.1.2.3/32" }
import {
  Config, ConfigError, ConfigValueTag, Decision, Hook, HttpContext, LogLevel, MetricKind, Request, RootContext,
  defineMetric, header, log, recordMetric, registerPlugin,
} from "@weir/sdk-assemblyscript";

const STRINGS = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":\"string\"}}]}";
const SCHEMA = "{\"type\":\"object\",\"additionalProperties\":false,\"anyOf\":[{\"required\":[\"allow\"]},{\"required\":[\"deny\"]}],"
  + "\"properties\":{\"allow\":" + STRINGS + ",\"deny\":" + STRINGS + ",\"filter-name\":{\"type\":\"string\"}}}";

const DENIED_BODY = "{\"error\":{\"code\":\"WEIR_ERR_IP_DENIED\",\"status\":403,\"message\":\"the client address is not allowed by the route's ip-filter\"}}\n";

/** An address as 128 bits; IPv4 (and IPv4-mapped IPv6) as `v4` with the address in `lo`. */
class Addr {
  constructor(public v4: bool, public hi: u64, public lo: u64) {}
}

/** `a.b.c.d` → its 32 bits, or -1. Leading zeros are refused (some tools read them as octal). */
function parseV4(s: string): i64 {
  const parts = s.split(".");
  if (parts.length != 4) return -1;
  let v: i64 = 0;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (p.length == 0 || p.length > 3 || (p.length > 1 && p.charCodeAt(0) == 48)) return -1;
    let n: i64 = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j);
      if (c < 48 || c > 57) return -1;
      n = n * 10 + (c - 48);
    }
    if (n > 255) return -1;
    v = (v << 8) | n;
  }
  return v;
}

/** Hex groups of one side of `::` → 16-bit values pushed to `out`; false when malformed. */
function groups(s: string, out: u32[], last: bool): bool {
  if (s.length == 0) return true;
  const parts = s.split(":");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (last && i == parts.length - 1 && p.indexOf(".") >= 0) {
      const v4 = parseV4(p);
      if (v4 < 0) return false;
      out.push(<u32>((v4 >> 16) & 0xffff));
      out.push(<u32>(v4 & 0xffff));
      continue;
    }
    if (p.length == 0 || p.length > 4) return false;
    let n: u32 = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j);
      let d: i32 = -1;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      if (d < 0) return false;
      n = (n << 4) | <u32>d;
    }
    out.push(n);
  }
  return true;
}

/** An IPv4 or IPv6 address (a zone `%eth0` ignored), IPv4-mapped IPv6 as IPv4; null if malformed. */
function parseAddr(text: string): Addr | null {
  let s = text.trim();
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.substring(0, zone);
  if (s.indexOf(":") < 0) {
    const v = parseV4(s);
    return v < 0 ? null : new Addr(true, 0, <u64>v);
  }
  const head = new Array<u32>(0);
  const tail = new Array<u32>(0);
  const gap = s.indexOf("::");
  if (gap >= 0) {
    if (s.indexOf("::", gap + 1) >= 0) return null;
    if (!groups(s.substring(0, gap), head, false) || !groups(s.substring(gap + 2), tail, true)) return null;
    if (head.length + tail.length > 7) return null;
  } else {
    if (!groups(s, head, true) || head.length != 8) return null;
  }
  const all = new Array<u32>(8);
  for (let i = 0; i < head.length; i++) all[i] = head[i];
  for (let i = 0; i < tail.length; i++) all[8 - tail.length + i] = tail[i];
  let hi: u64 = 0;
  let lo: u64 = 0;
  for (let i = 0; i < 4; i++) hi = (hi << 16) | <u64>all[i];
  for (let i = 4; i < 8; i++) lo = (lo << 16) | <u64>all[i];
  // ::ffff:a.b.c.d is the IPv4 client a.b.c.d (a dual-stack socket's spelling of it).
  if (hi == 0 && (lo >> 32) == 0xffff) return new Addr(true, 0, lo & 0xffffffff);
  return new Addr(false, hi, lo);
}

/** The top `n` bits of a 64-bit word set (n in 0..64). */
function mask(n: i32): u64 {
  if (n <= 0) return 0;
  if (n >= 64) return ~(<u64>0);
  return ~(<u64>0) << <u64>(64 - n);
}

class Cidr {
  constructor(public v4: bool, public hi: u64, public lo: u64, public prefix: i32) {}

  has(a: Addr): bool {
    if (this.v4) return a.v4 && (a.lo & (mask(this.prefix) >> 32)) == this.lo;
    // IPv4 clients compared to IPv6 ranges in their mapped form (::ffff:a.b.c.d).
    const hi: u64 = a.v4 ? 0 : a.hi;
    const lo: u64 = a.v4 ? ((<u64>0xffff << 32) | a.lo) : a.lo;
    if (this.prefix <= 64) return (hi & mask(this.prefix)) == this.hi;
    return hi == this.hi && (lo & mask(this.prefix - 64)) == this.lo;
  }
}

function v4Text(v: u64): string {
  return ((v >> 24) & 255).toString() + "." + ((v >> 16) & 255).toString() + "." + ((v >> 8) & 255).toString() + "." + (v & 255).toString();
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host); null with an error recorded. */
function parseCidr(text: string, node: Config): Cidr | null {
  const slash = text.indexOf("/");
  const a = parseAddr(slash < 0 ? text : text.substring(0, slash));
  if (a === null) {
    node.error(node.name + ": \"" + text + "\" is not an IPv4 or IPv6 address or CIDR");
    return null;
  }
  // A mapped range (::ffff:10.0.0.0/104) given in IPv6 form is the IPv4 range it maps.
  const mappedForm = text.indexOf(":") >= 0 && a.v4;
  const max = a.v4 && !mappedForm ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.substring(slash + 1);
    let n = 0;
    let ok = p.length > 0 && p.length <= 3;
    for (let i = 0; ok && i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < 48 || c > 57) ok = false;
      else n = n * 10 + (c - 48);
    }
    if (!ok || n > max) {
      node.error(node.name + ": \"" + text + "\" has an invalid prefix length (0 to " + max.toString() + ")");
      return null;
    }
    prefix = n;
  }
  if (mappedForm) {
    if (prefix < 96) {
      node.error(node.name + ": \"" + text + "\" is an IPv4-mapped range shorter than /96; write the IPv4 range instead");
      return null;
    }
    prefix -= 96;
  }
  if (a.v4) {
    const m = mask(prefix) >> 32;
    if ((a.lo & ~m) != 0) {
      node.error(node.name + ": \"" + text + "\" has host bits set beyond its /" + prefix.toString() + " prefix; the network is " + v4Text(a.lo & m) + "/" + prefix.toString());
      return null;
    }
    return new Cidr(true, 0, a.lo, prefix);
  }
  const mh = mask(prefix);
  const ml = mask(prefix - 64);
  if ((a.hi & ~mh) != 0 || (a.lo & ~ml) != 0) {
    node.error(node.name + ": \"" + text + "\" has host bits set beyond its /" + prefix.toString() + " prefix; write the network address");
    return null;
  }
  return new Cidr(false, a.hi, a.lo, prefix);
}

/** Every CIDR of every `name` node. */
function cidrs(config: Config, name: string): Cidr[] {
  const out = new Array<Cidr>(0);
  const nodes = config.children(name);
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n];
    if (node.args.length == 0) node.error(name + " needs at least one CIDR");
    for (let i = 0; i < node.args.length; i++) {
      const v = node.args[i];
      if (v.tag != ConfigValueTag.Text) {
        node.error(name + ": CIDRs are strings, e.g. \"10.0.0.0/8\"");
        continue;
      }
      const c = parseCidr(v.asText!.trim(), node);
      if (c !== null) out.push(c);
    }
  }
  return out;
}

function anyHas(list: Cidr[], a: Addr): bool {
  for (let i = 0; i < list.length; i++) if (list[i].has(a)) return true;
  return false;
}

class IpFilter extends RootContext {
  allow: Cidr[] = [];
  deny: Cidr[] = [];
  /** An allow list was written: addresses outside it are refused. */
  allowList: bool = false;
  filter: string = "";
  decisions: u32 = 0;

  constructor() {
    super("ip-filter", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
    this.configSchema = SCHEMA;
  }

  configure(config: Config): ConfigError | null {
    this.allowList = config.has("allow");
    this.allow = cidrs(config, "allow");
    this.deny = cidrs(config, "deny");
    if (!this.allowList && !config.has("deny")) config.error("ip-filter needs `allow` or `deny` (CIDRs such as \"10.0.0.0/8\" or \"2001:db8::/32\")");
    this.filter = config.getString("filter-name", "ip-filter");
    this.decisions = defineMetric("ip_filter_decisions_total", MetricKind.Counter, "IP filter decisions", ["filter", "decision"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }
}

class Check extends HttpContext {
  constructor(id: u64, private root: IpFilter) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const a = parseAddr(request.clientAddress);
    let denied = a === null;
    if (a === null) log(LogLevel.Warn, "client address \"" + request.clientAddress + "\" is not an IP address; refused");
    else denied = anyHas(root.deny, a) || (root.allowList && !anyHas(root.allow, a));
    recordMetric(root.decisions, 1, [root.filter, denied ? "denied" : "allowed"]);
    if (!denied) return Decision.continue();
    return Decision.respond(403, DENIED_BODY, [header("content-type", "application/json")]);
  }
}

registerPlugin(new IpFilter());

export * from "@weir/sdk-assemblyscript/exports";

// Weir's first-party geo filter: looks the client's country up in a MaxMind-format database
// (through the host's geo-country function) and blocks, allows or only tags requests.
//
//   filter "eu-only" { type "geo"; action "allow"; countries "DE,FR,NL"; status-code 451 }
import {
  Config, ConfigError, Decision, Hook, HttpContext, LogLevel, MetricKind, Request, RootContext,
  defineMetric, geoCountry, header, log, recordMetric, registerPlugin,
} from "@weir/sdk-assemblyscript";

class Geo extends RootContext {
  action: string = "block";
  countries: string[] = [];
  onFailure: string = "open";
  status: u16 = 403;
  message: string = "Access denied";
  unsupported: bool = false;
  filter: string = "";
  decisions: u32 = 0;

  constructor() {
    super("geo", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }

  configure(config: Config): ConfigError | null {
    this.action = config.getString("action", "block");
    if (this.action != "block" && this.action != "allow" && this.action != "log-only") config.error("action must be block, allow or log-only");
    // "RU,CN" or "RU" "CN": both spellings of the list.
    const raw = config.getStrings("countries");
    for (let i = 0; i < raw.length; i++) {
      const parts = raw[i].split(",");
      for (let j = 0; j < parts.length; j++) {
        const c = parts[j].trim().toUpperCase();
        if (c.length == 0) continue;
        if (c.length != 2) config.error("countries: \"" + c + "\" is not an ISO 3166 alpha-2 code");
        this.countries.push(c);
      }
    }
    if (this.action != "log-only" && this.countries.length == 0) config.error("countries is required for action " + this.action);
    this.onFailure = config.getString("on-failure", "open");
    this.status = <u16>config.getInt("status-code", this.action == "allow" ? 451 : 403);
    this.message = config.getString("block-message", "Access denied");
    // The client address comes from Weir (the listener's trusted-proxies): a header named here
    // would let any client choose its country.
    if (config.getString("client-ip-header", "").length > 0) config.error("client-ip-header is not supported: set trusted-proxies on the listener; geo uses the client address Weir derives from it");
    const type = config.getString("database-type", "mmdb");
    if (type == "ip2location") {
      // Not read yet: every lookup counts as failed, so on-failure decides.
      this.unsupported = true;
      log(LogLevel.Warn, "database-type ip2location is not supported yet: lookups fail and on-failure applies; use a MaxMind-format (.mmdb) database");
    } else if (type != "mmdb") {
      config.error("database-type must be mmdb or ip2location");
    }
    this.filter = config.getString("filter-name", "geo");
    this.decisions = defineMetric("geo_decisions_total", MetricKind.Counter, "Geo filter decisions", ["filter", "decision"]);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }

}

class Check extends HttpContext {
  constructor(id: u64, private root: Geo) {
    super(id);
  }

  deny(): Decision {
    recordMetric(this.root.decisions, 1, [this.root.filter, "blocked"]);
    return Decision.respond(this.root.status, this.root.message + "\n", [header("content-type", "text/plain; charset=utf-8")]);
  }

  onRequestHeaders(request: Request): Decision {
    const root = this.root;
    const country: string | null = root.unsupported ? null : geoCountry(request.clientAddress);
    if (country === null) {
      if (root.action != "log-only" && root.onFailure == "closed") return this.deny();
      recordMetric(root.decisions, 1, [root.filter, "unknown"]);
      return Decision.continue();
    }
    request.setHeader("x-geoip-country", country);
    request.setProperty("geo.country", country);
    const listed = root.countries.includes(country);
    if ((root.action == "block" && listed) || (root.action == "allow" && !listed)) return this.deny();
    if (root.action == "log-only") log(LogLevel.Debug, "country " + country);
    recordMetric(root.decisions, 1, [root.filter, "allowed"]);
    return Decision.continue();
  }
}

registerPlugin(new Geo());

export * from "@weir/sdk-assemblyscript/exports";

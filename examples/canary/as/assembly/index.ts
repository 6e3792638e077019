// canary: sends opted-in requests to the canary upstream — those with `x-canary: 1` or the
// cookie `canary=1` — and tags them with the property `canary` (`header` or `cookie`).
//
//   config {
//       upstream "canary"   // upstream name in the config (default "canary")
//       header "x-canary"   // optional, this is the default
//       cookie "canary"     // optional, this is the default
//   }
import { Config, ConfigError, Decision, Hook, HttpContext, Request, RootContext, registerPlugin } from "@weir/sdk-assemblyscript";

/** Whether any `cookie` header has `name=1`. */
function cookieOn(request: Request, name: string): bool {
  const headers = request.headers.getAll("cookie");
  for (let h = 0; h < headers.length; h++) {
    const pairs = headers[h].split(";");
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i].trim();
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.substring(0, eq) == name && pair.substring(eq + 1).trim() == "1") return true;
    }
  }
  return false;
}

class Canary extends RootContext {
  upstream: string = "canary";
  header: string = "x-canary";
  cookie: string = "canary";

  constructor() {
    super("canary", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }

  configure(config: Config): ConfigError | null {
    const keys = ["upstream", "header", "cookie"];
    for (let i = 0; i < keys.length; i++) {
      const node = config.child(keys[i]);
      if (node === null) continue;
      const v = node.arg(0);
      if (v === null || v.asText === null || v.asText!.length == 0) return new ConfigError("`" + keys[i] + "` needs a non-empty string", node.index);
      if (i == 0) this.upstream = v.asText!;
      else if (i == 1) this.header = v.asText!.toLowerCase();
      else this.cookie = v.asText!;
    }
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Route(id, this);
  }
}

class Route extends HttpContext {
  constructor(id: u64, private root: Canary) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const h = request.header(this.root.header);
    let why: string;
    if (h !== null && h == "1") why = "header";
    else if (cookieOn(request, this.root.cookie)) why = "cookie";
    else return Decision.continue();
    request.setProperty("canary", why);
    request.setUpstream(this.root.upstream);
    return Decision.continue();
  }
}

registerPlugin(new Canary());

export * from "@weir/sdk-assemblyscript/exports";

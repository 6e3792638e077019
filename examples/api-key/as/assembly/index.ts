// api-key: lets through only requests carrying one of the configured keys, and strips the
// key before the upstream sees it.
//
//   config {
//       header "x-api-key"          // optional, this is the default
//       keys "k-live-1" "k-live-2"  // at least one
//   }
import { Config, ConfigError, Decision, Hook, HttpContext, Request, RootContext, header, registerPlugin } from "@weir/sdk-assemblyscript";

/** Compares every byte whatever the first difference, so timing does not leak key prefixes. */
function same(a: string, b: string): bool {
  const x = String.UTF8.encode(a);
  const y = String.UTF8.encode(b);
  if (x.byteLength != y.byteLength) return false;
  const xv = Uint8Array.wrap(x);
  const yv = Uint8Array.wrap(y);
  let diff: u8 = 0;
  for (let i = 0; i < xv.length; i++) diff |= xv[i] ^ yv[i];
  return diff == 0;
}

function jsonError(status: u16, message: string): Decision {
  return Decision.respond(status, "{\"error\":\"" + message + "\"}", [header("content-type", "application/json")]);
}

class ApiKey extends RootContext {
  header: string = "x-api-key";
  keys: string[] = [];

  constructor() {
    super("api-key", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }

  configure(config: Config): ConfigError | null {
    const h = config.child("header");
    if (h !== null) {
      const name = h.arg(0);
      if (name === null || name.asText === null || name.asText!.length == 0) return new ConfigError("`header` needs a header name", h.index);
      this.header = name.asText!.toLowerCase();
    }
    const keys = config.child("keys");
    if (keys === null) return new ConfigError("api-key: `keys` is required");
    for (let i = 0; i < keys.args.length; i++) {
      const k = keys.args[i].asText;
      if (k === null || k.length == 0) return new ConfigError("`keys` arguments must be non-empty strings", keys.index);
      this.keys.push(k);
    }
    if (this.keys.length == 0) return new ConfigError("`keys` needs at least one key", keys.index);
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Check(id, this);
  }
}

class Check extends HttpContext {
  constructor(id: u64, private root: ApiKey) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    const key = request.header(this.root.header);
    if (key === null || key.length == 0) return jsonError(401, "missing api key");
    let known = false;
    for (let i = 0; i < this.root.keys.length; i++) if (same(this.root.keys[i], key)) known = true;
    if (!known) return jsonError(403, "unknown api key");
    // The upstream trusts the proxy, not the key: don't leak it.
    request.removeHeader(this.root.header);
    return Decision.continue();
  }
}

registerPlugin(new ApiKey());

export * from "@weir/sdk-assemblyscript/exports";

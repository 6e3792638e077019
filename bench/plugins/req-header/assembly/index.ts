// Benchmark plugin: sets one request header from config (`header "x-a" "1"`).
import { Config, ConfigError, Decision, Hook, HttpContext, Request, RootContext, registerPlugin } from "@weir/sdk-assemblyscript";

class Root extends RootContext {
  name_: string = "x-bench";
  value: string = "1";
  constructor() {
    super("bench-req-header", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }
  configure(config: Config): ConfigError | null {
    const h = config.getStrings("header");
    if (h.length != 2) return new ConfigError("header needs a name and a value");
    this.name_ = h[0];
    this.value = h[1];
    return null;
  }
  createHttpContext(id: u64): HttpContext {
    return new Ctx(id, this);
  }
}

class Ctx extends HttpContext {
  constructor(id: u64, private root: Root) { super(id); }
  onRequestHeaders(request: Request): Decision {
    request.setHeader(this.root.name_, this.root.value);
    return Decision.continue();
  }
}

registerPlugin(new Root());
export * from "@weir/sdk-assemblyscript/exports";

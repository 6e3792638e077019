// Micro-benchmark plugin (bench/micro.ts): reads one request header and sets another to it.
import { Decision, Hook, HttpContext, Request, RootContext, registerPlugin } from "@weir/sdk-assemblyscript";

class Root extends RootContext {
  constructor() {
    super("bench-read-set", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }
  createHttpContext(id: u64): HttpContext {
    return new Ctx(id);
  }
}

class Ctx extends HttpContext {
  onRequestHeaders(request: Request): Decision {
    const v = request.header("x-request-id");
    request.setHeader("x-seen-id", v === null ? "-" : v);
    return Decision.continue();
  }
}

registerPlugin(new Root());
export * from "@weir/sdk-assemblyscript/exports";

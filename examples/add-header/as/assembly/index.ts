// add-header: appends configured headers to every response.
//
//   config {
//       header "x-served-by" "weir"
//       header "x-frame-options" "DENY"
//   }
import { Config, ConfigError, Decision, Hook, HttpContext, Request, Response, RootContext, registerPlugin } from "@weir/sdk-assemblyscript";

class AddHeader extends RootContext {
  names: string[] = [];
  values: string[] = [];

  constructor() {
    super("add-header", "0.1.0");
    this.hooks = [Hook.OnResponseHeaders];
  }

  configure(config: Config): ConfigError | null {
    const nodes = config.children("header");
    for (let i = 0; i < nodes.length; i++) {
      const name = nodes[i].arg(0);
      const value = nodes[i].arg(1);
      if (name === null || value === null || name.asText === null || value.asText === null || name.asText!.length == 0) {
        return new ConfigError("`header` needs a name and a value: header \"x-name\" \"value\"", nodes[i].index);
      }
      this.names.push(name.asText!.toLowerCase());
      this.values.push(value.asText!);
    }
    if (this.names.length == 0) return new ConfigError("add-header: at least one `header NAME VALUE` is needed");
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new Add(id, this);
  }
}

class Add extends HttpContext {
  constructor(id: u64, private root: AddHeader) {
    super(id);
  }

  onResponseHeaders(request: Request, response: Response): Decision {
    // addHeader, not setHeader: keep any value the upstream sent.
    for (let i = 0; i < this.root.names.length; i++) response.addHeader(this.root.names[i], this.root.values[i]);
    return Decision.continue();
  }
}

registerPlugin(new AddHeader());

export * from "@weir/sdk-assemblyscript/exports";

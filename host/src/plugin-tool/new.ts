/**
 * `weir plugin new NAME --lang as|rust`: scaffolds a plugin project that builds with
 * `weir plugin build` and comes with test cases for `weir plugin test`.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginToolError } from './componentize.ts';
import { SDK_AS_DIR, type PluginLang } from './build.ts';

export const SDK_RUST_DIR = fileURLToPath(new URL('../../../sdk-rust-guest/', import.meta.url));

export interface NewOptions {
  lang: PluginLang;
  /** Parent directory (default: the current one). */
  cwd?: string;
}

/** Plugin names become file, crate and header names: lowercase letters, digits and '-'. */
export function checkName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(name) || name.endsWith('-')) {
    throw new PluginToolError(`invalid plugin name ${JSON.stringify(name)}: use lowercase letters, digits and '-', starting with a letter`);
  }
}

/** Path from the project to an SDK, relative when that is short and stable, else absolute. */
function sdkPath(dir: string, sdk: string): string {
  const rel = relative(dir, sdk).replace(/\\/g, '/');
  return rel.startsWith('../../../..') || rel === '' ? sdk.replace(/\\/g, '/').replace(/\/$/, '') : rel.replace(/\/$/, '');
}

/** The test cases both scaffolds start with (the format `weir plugin test` reads). */
function cases(name: string): string {
  return JSON.stringify({
    config: 'greeting "hello"',
    cases: [
      {
        name: 'adds the greeting header',
        request: { method: 'GET', path: '/', headers: { accept: '*/*' } },
        expect: { local: false, upstreamRequest: { headers: { [`x-${name}`]: 'hello' } } },
      },
      {
        name: 'blocks /blocked',
        request: { method: 'GET', path: '/blocked' },
        expect: { local: true, response: { status: 403 } },
      },
    ],
  }, null, 2) + '\n';
}

function asFiles(name: string, dir: string): Record<string, string> {
  const cls = name.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
  return {
    'package.json': JSON.stringify({
      name, version: '0.1.0', private: true, type: 'module',
      description: `Weir plugin ${name}`,
      scripts: { build: 'weir plugin build', test: `weir plugin build && weir plugin test build/${name}.wasm cases.json` },
      weir: { out: `build/${name}.wasm` },
      devDependencies: { '@weir/sdk-assemblyscript': `file:${sdkPath(dir, SDK_AS_DIR)}`, assemblyscript: '^0.28.0' },
    }, null, 2) + '\n',
    'asconfig.json': JSON.stringify({ entries: ['assembly/index.ts'], options: { runtime: 'incremental' } }, null, 2) + '\n',
    'assembly/tsconfig.json': JSON.stringify({ extends: 'assemblyscript/std/assembly.json', include: ['./**/*.ts'] }, null, 2) + '\n',
    'assembly/index.ts': `// ${name}: a Weir plugin. Build with \`weir plugin build\`, test with \`npm test\`.
import { Config, ConfigError, Decision, Hook, HttpContext, Request, RootContext, registerPlugin } from "@weir/sdk-assemblyscript";

/** Configured once per plugin instance from the plugin's KDL block. */
class ${cls} extends RootContext {
  greeting: string = "hello";

  constructor() {
    super("${name}", "0.1.0");
    this.hooks = [Hook.OnRequestHeaders];
  }

  configure(config: Config): ConfigError | null {
    this.greeting = config.getString("greeting", "hello");
    return null;
  }

  createHttpContext(id: u64): HttpContext {
    return new ${cls}Request(id, this);
  }
}

/** One per request: keep per-request state in fields. */
class ${cls}Request extends HttpContext {
  constructor(id: u64, private root: ${cls}) {
    super(id);
  }

  onRequestHeaders(request: Request): Decision {
    if (request.path == "/blocked") return Decision.respond(403, "blocked by ${name}\\n");
    request.setHeader("x-${name}", this.root.greeting);
    return Decision.continue();
  }
}

registerPlugin(new ${cls}());

export * from "@weir/sdk-assemblyscript/exports";
`,
    'cases.json': cases(name),
    '.gitignore': 'build/\nnode_modules/\n',
    'README.md': `# ${name}\n\nA Weir plugin in AssemblyScript.\n\n    weir plugin build          # → build/${name}.wasm\n    weir plugin test build/${name}.wasm cases.json\n\nUse it from weir.kdl:\n\n    plugin "${name}" {\n        path "build/${name}.wasm"\n        config {\n            greeting "hello"\n        }\n    }\n`,
  };
}

function rustFiles(name: string, dir: string): Record<string, string> {
  const cls = name.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
  return {
    'Cargo.toml': `[package]
name = "${name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
weir-plugin = { path = "${sdkPath(dir, SDK_RUST_DIR)}" }

# Small, and a trap's stack still names functions: debug info goes, the name section stays.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
panic = "abort"

[package.metadata.weir]
out = "build/${name}.wasm"
`,
    'src/lib.rs': `//! ${name}: a Weir plugin. Build with \`weir plugin build\`.
use weir_plugin::*;

/// Configured once per plugin instance from the plugin's KDL block.
struct ${cls} {
    greeting: String,
}

impl Default for ${cls} {
    fn default() -> Self {
        ${cls} { greeting: "hello".to_string() }
    }
}

impl RootContext for ${cls} {
    fn name(&self) -> &str {
        "${name}"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnRequestHeaders]
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        self.greeting = config.get_str("greeting").unwrap_or("hello").to_string();
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(${cls}Request { greeting: self.greeting.clone() })
    }
}

/// One per request: keep per-request state in fields.
struct ${cls}Request {
    greeting: String,
}

impl HttpContext for ${cls}Request {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        if request.path() == "/blocked" {
            return Decision::respond(403, b"blocked by ${name}\\n");
        }
        request.set_header("x-${name}", &self.greeting);
        Decision::Continue
    }
}

weir_plugin!(${cls});
`,
    'cases.json': cases(name),
    '.gitignore': 'build/\ntarget/\n',
    'README.md': `# ${name}\n\nA Weir plugin in Rust.\n\n    weir plugin build          # → build/${name}.wasm\n    weir plugin test build/${name}.wasm cases.json\n`,
  };
}

/** Creates the project directory NAME under `cwd`; returns its path and the files written. */
export function newPlugin(name: string, opts: NewOptions): { dir: string; files: string[] } {
  checkName(name);
  const dir = resolve(opts.cwd ?? process.cwd(), name);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new PluginToolError(`${dir} already exists and is not empty`);
  const files = opts.lang === 'as' ? asFiles(name, dir) : rustFiles(name, dir);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return { dir, files: Object.keys(files) };
}

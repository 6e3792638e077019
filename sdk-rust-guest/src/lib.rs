//! Write Weir plugins in Rust.
//!
//! A plugin is a [`RootContext`], made once per plugin instance and configured once with the
//! plugin's KDL block, that creates one [`HttpContext`] per request (keyed by the context id
//! the host passes to every hook of one exchange). Every hook has a default that lets the
//! request through unchanged; [`RootContext::hooks`] says which ones the host should call.
//! [`weir_plugin!`] registers the root type and defines the WebAssembly exports.
//!
//! Names follow `wit/weir.wit` mechanically (`on-request-headers` → `on_request_headers`,
//! `local-reply` → `LocalReply`), like the AssemblyScript SDK.
//!
//! ```ignore
//! use weir_plugin::*;
//!
//! #[derive(Default)]
//! struct Root;
//! impl RootContext for Root {
//!     fn name(&self) -> &str { "hello" }
//!     fn version(&self) -> &str { "0.1.0" }
//!     fn hooks(&self) -> Vec<Hook> { vec![Hook::OnRequestHeaders] }
//!     fn create_http_context(&mut self, _: ContextId) -> Box<dyn HttpContext> { Box::new(Hello) }
//! }
//! struct Hello;
//! impl HttpContext for Hello {
//!     fn on_request_headers(&mut self, request: &mut Request) -> Decision {
//!         request.set_header("x-hello", "world");
//!         Decision::Continue
//!     }
//! }
//! weir_plugin!(Root);
//! ```

#[doc(hidden)]
pub mod abi;
mod config;
pub mod crypto;
mod views;

pub use abi::exchange;
pub use abi::host;
pub use abi::types::*;
pub use config::{Config, Node};
pub use views::{Request, Response};

/// The request's trace span (`observability { tracing }`, see docs/tracing.md). Calls do
/// nothing when the request is not recorded.
pub mod span {
    use crate::abi::host;
    use crate::abi::types::Property;

    /// Sets attribute `key` to `value`. Weir's own keys (`http.*`, `url.*`, `server.*`,
    /// `client.*`, `network.*`, `error.type`, `weir.*`) are ignored: use your own namespace.
    pub fn set_attribute(key: &str, value: &str) {
        host::span_set_attribute(key, value);
    }

    /// Adds an event `name` with `attributes` (key, value), timestamped now.
    pub fn add_event(name: &str, attributes: &[(&str, &str)]) {
        let list: Vec<Property> = attributes.iter().map(|(k, v)| Property { key: (*k).to_string(), value: (*v).to_string() }).collect();
        host::span_add_event(name, &list);
    }
}

use std::collections::BTreeMap;

/// Per-plugin state: configured once, then makes one [`HttpContext`] per request.
///
/// Only [`name`](RootContext::name), [`version`](RootContext::version),
/// [`hooks`](RootContext::hooks) and
/// [`create_http_context`](RootContext::create_http_context) are required.
pub trait RootContext {
    /// Plugin name, for logs and metrics (the `name` of `describe`).
    fn name(&self) -> &str;

    /// Plugin version, semver (the `version` of `describe`).
    fn version(&self) -> &str;

    /// The hooks this plugin implements; the host never calls the others. A body hook is
    /// added when its body mode is not `None`.
    fn hooks(&self) -> Vec<Hook>;

    /// How the plugin wants the request body. Default: `BodyMode::None`; if
    /// `Hook::OnRequestBody` is listed anyway, the body is streamed.
    fn request_body(&self) -> BodyMode {
        BodyMode::None
    }

    /// How the plugin wants the response body. Default as for [`request_body`](RootContext::request_body).
    fn response_body(&self) -> BodyMode {
        BodyMode::None
    }

    /// JSON Schema of the plugin's config block; empty if none.
    fn config_schema(&self) -> String {
        String::new()
    }

    /// Called once with the plugin's KDL block, before any hook. Default: accept anything.
    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        let _ = config;
        Ok(())
    }

    /// Makes the state of one request; called at the first hook of each context id.
    fn create_http_context(&mut self, context_id: ContextId) -> Box<dyn HttpContext>;

    /// The plugin's timer: called every `tick-ms` (the plugin block's key) outside any
    /// request, when [`hooks`](RootContext::hooks) lists `Hook::OnTick`. Refresh what requests
    /// read from the store here (a JWKS through `host::http_callout` + `host::kv_cas`) or flush
    /// counters. Requests may run on other instances: share state through the store.
    fn on_tick(&mut self) {}
}

/// Per-request state and hooks. Every hook defaults to "continue, unchanged".
///
/// Header hooks get a view that records mutations: `request.set_header(..)` followed by
/// `Decision::Continue` sends those mutations; `Decision::Mutate(list)` sends the view's
/// mutations first, then `list`; `Decision::Respond { .. }` drops them.
pub trait HttpContext {
    /// The request head is parsed and a route matched.
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        let _ = request;
        Decision::Continue
    }

    /// A request body chunk, or the whole body when buffered (`end` is true on the last one).
    fn on_request_body(&mut self, chunk: &[u8], end: bool) -> BodyDecision {
        let _ = (chunk, end);
        BodyDecision::Continue
    }

    /// Choose a target (its `index`) for this attempt; `None` defers to the upstream's algorithm.
    fn select_upstream(&mut self, request: &Request, upstream: &UpstreamInfo, targets: &[Target]) -> Option<u32> {
        let _ = (request, upstream, targets);
        None
    }

    /// The response head arrived; `request` is the request as forwarded.
    fn on_response_headers(&mut self, request: &Request, response: &mut Response) -> Decision {
        let _ = (request, response);
        Decision::Continue
    }

    /// A response body chunk, or the whole body when buffered.
    fn on_response_body(&mut self, chunk: &[u8], end: bool) -> BodyDecision {
        let _ = (chunk, end);
        BodyDecision::Continue
    }

    /// The exchange is over; always the last call for a context, which is dropped afterwards.
    fn on_log(&mut self, summary: &LogSummary) {
        let _ = summary;
    }
}

/// Makes the plugin's root; `weir_plugin!` passes one to every export.
#[doc(hidden)]
pub type RootFactory = fn() -> Box<dyn RootContext>;

impl Header {
    /// A header from a name (lowercase) and a value.
    pub fn new(name: &str, value: &str) -> Header {
        Header { name: name.to_string(), value: value.to_string() }
    }
}

impl Property {
    pub fn new(key: &str, value: &str) -> Property {
        Property { key: key.to_string(), value: value.to_string() }
    }
}

impl Decision {
    /// `Decision::Respond` with a status and body and no headers.
    pub fn respond(status: u16, body: &[u8]) -> Decision {
        Decision::Respond { status, headers: Vec::new(), body: body.to_vec() }
    }

    /// Hold the request for `ms` milliseconds, then go on (`on_request_headers` only); the
    /// view's changes apply first. The host caps the hold (60 s per request in total).
    pub fn pause(ms: u32) -> Decision {
        Decision::Pause { ms, mutations: Vec::new() }
    }
}

impl BodyDecision {
    /// `BodyDecision::Respond` with a status and body and no headers.
    pub fn respond(status: u16, body: &[u8]) -> BodyDecision {
        BodyDecision::Respond { status, headers: Vec::new(), body: body.to_vec() }
    }
}

impl ConfigError {
    /// An error not tied to one node.
    pub fn new(message: &str) -> ConfigError {
        ConfigError { message: message.to_string(), node: None }
    }
}

/// Registers the plugin's root type (which must implement `Default` and [`RootContext`])
/// and defines the WebAssembly exports. Use once, in the plugin's `cdylib` crate:
/// `weir_plugin!(MyRoot);` or, with a constructor, `weir_plugin!(MyRoot, MyRoot::new());`.
#[macro_export]
macro_rules! weir_plugin {
    ($root:ty) => {
        $crate::weir_plugin!($root, <$root as ::core::default::Default>::default());
    };
    ($root:ty, $make:expr) => {
        fn __weir_new_root() -> ::std::boxed::Box<dyn $crate::RootContext> {
            let root: $root = $make;
            ::std::boxed::Box::new(root)
        }
        $crate::__weir_abi_exports!(__weir_new_root);
    };
}

// ---- dispatch: the generated exports call these with lifted values ----

struct Runtime {
    root: Box<dyn RootContext>,
    contexts: BTreeMap<ContextId, Box<dyn HttpContext>>,
    /// The plugin's one hook runs once per request (see `ephemeral`): contexts are not kept.
    single: bool,
}

static RUNTIME: abi::Global<Option<Runtime>> = abi::Global::new(None);

fn runtime(make: RootFactory) -> &'static mut Runtime {
    // Safety: wasm32 guests are single-threaded and the host makes one call at a time.
    let slot = unsafe { &mut *RUNTIME.get() };
    if slot.is_none() {
        // Panics abort the instance; log the message first so the operator sees why.
        std::panic::set_hook(Box::new(|info| host::log(LogLevel::Error, &info.to_string())));
        // `single` is known from the root's hooks: describe runs on the load's probe instance
        // only, so deciding it there left every serving instance keeping contexts forever.
        let root = make();
        let single = ephemeral(&root.hooks());
        *slot = Some(Runtime { root, contexts: BTreeMap::new(), single });
    }
    match slot {
        Some(rt) => rt,
        None => unreachable!(),
    }
}

impl Runtime {
    fn context(&mut self, ctx: ContextId) -> &mut Box<dyn HttpContext> {
        let root = &mut self.root;
        self.contexts.entry(ctx).or_insert_with(|| root.create_http_context(ctx))
    }

    /// Runs `f` on the request's context; a single-hook plugin's context lives for this call only.
    fn with_context<T>(&mut self, ctx: ContextId, f: impl FnOnce(&mut dyn HttpContext) -> T) -> T {
        if self.single {
            let mut c = self.root.create_http_context(ctx);
            return f(c.as_mut());
        }
        f(self.context(ctx).as_mut())
    }
}

/// Merges the mutations a view recorded into the hook's decision.
fn with_mutations(recorded: Vec<Mutation>, decision: Decision) -> Decision {
    match decision {
        Decision::Continue if recorded.is_empty() => Decision::Continue,
        Decision::Continue => Decision::Mutate(recorded),
        Decision::Mutate(more) => {
            let mut all = recorded;
            all.extend(more);
            Decision::Mutate(all)
        }
        Decision::Pause { ms, mutations } => {
            let mut all = recorded;
            all.extend(mutations);
            Decision::Pause { ms, mutations: all }
        }
        reply => reply,
    }
}

/// A plugin whose only hook runs at most once per request: its context lives for that call.
#[doc(hidden)]
pub fn ephemeral(hooks: &[Hook]) -> bool {
    // on-tick is no request hook: it does not make contexts outlive a call.
    let mut request = hooks.iter().filter(|h| **h != Hook::OnTick);
    match (request.next(), request.next()) {
        (Some(h), None) => *h == Hook::OnRequestHeaders || *h == Hook::SelectUpstream,
        _ => false,
    }
}

#[doc(hidden)]
pub mod dispatch {
    use super::*;

    pub fn describe(make: RootFactory) -> PluginInfo {
        let rt = runtime(make);
        let root = &rt.root;
        let mut request_body = root.request_body();
        let mut response_body = root.response_body();
        let mut listed = root.hooks();
        // on-log is where a request's context is dropped: without it every context would
        // live as long as the instance. So it is listed, unless the context lives for a
        // single call anyway (see `ephemeral`).
        if !listed.contains(&Hook::OnLog) && !ephemeral(&root.hooks()) {
            listed.push(Hook::OnLog);
        }
        if request_body != BodyMode::None {
            listed.push(Hook::OnRequestBody);
        } else if listed.contains(&Hook::OnRequestBody) {
            request_body = BodyMode::Streamed;
        }
        if response_body != BodyMode::None {
            listed.push(Hook::OnResponseBody);
        } else if listed.contains(&Hook::OnResponseBody) {
            response_body = BodyMode::Streamed;
        }
        let hooks = Hook::ALL.iter().copied().filter(|h| listed.contains(h)).collect();
        PluginInfo {
            name: root.name().to_string(),
            version: root.version().to_string(),
            hooks,
            request_body,
            response_body,
            config_schema: root.config_schema(),
        }
    }

    pub fn configure(make: RootFactory, config: Vec<ConfigNode>) -> Result<(), ConfigError> {
        let config = Config::new(config);
        // The plugin's own refusal first; else a value a getter found of the wrong type.
        runtime(make).root.configure(&config)?;
        match config.type_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn on_request_headers(make: RootFactory, ctx: ContextId) -> Decision {
        let mut request = Request::new(ctx);
        let decision = runtime(make).with_context(ctx, |c| c.on_request_headers(&mut request));
        with_mutations(request.into_mutations(), decision)
    }

    pub fn on_request_body(make: RootFactory, ctx: ContextId, chunk: Vec<u8>, end: bool) -> BodyDecision {
        runtime(make).context(ctx).on_request_body(&chunk, end)
    }

    pub fn select_upstream(make: RootFactory, ctx: ContextId, upstream: UpstreamInfo, targets: Vec<Target>) -> Option<u32> {
        let request = Request::new(ctx);
        runtime(make).with_context(ctx, |c| c.select_upstream(&request, &upstream, &targets))
    }

    pub fn on_response_headers(make: RootFactory, ctx: ContextId) -> Decision {
        let request = Request::new(ctx);
        let mut response = Response::new(ctx);
        let decision = runtime(make).context(ctx).on_response_headers(&request, &mut response);
        with_mutations(response.into_mutations(), decision)
    }

    pub fn on_response_body(make: RootFactory, ctx: ContextId, chunk: Vec<u8>, end: bool) -> BodyDecision {
        runtime(make).context(ctx).on_response_body(&chunk, end)
    }

    pub fn on_log(make: RootFactory, ctx: ContextId, summary: LogSummary) {
        let rt = runtime(make);
        rt.context(ctx).on_log(&summary);
        rt.contexts.remove(&ctx);
    }

    pub fn on_tick(make: RootFactory) {
        runtime(make).root.on_tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_mutations_merge_into_the_decision() {
        let m = |s: &str| Mutation::SetPath(s.to_string());
        assert_eq!(with_mutations(Vec::new(), Decision::Continue), Decision::Continue);
        assert_eq!(with_mutations(vec![m("/a")], Decision::Continue), Decision::Mutate(vec![m("/a")]));
        assert_eq!(with_mutations(vec![m("/a")], Decision::Mutate(vec![m("/b")])), Decision::Mutate(vec![m("/a"), m("/b")]));
        assert_eq!(with_mutations(vec![m("/a")], Decision::respond(403, b"no")), Decision::respond(403, b"no"));
        assert_eq!(with_mutations(vec![m("/a")], Decision::pause(5)), Decision::Pause { ms: 5, mutations: vec![m("/a")] });
    }
}

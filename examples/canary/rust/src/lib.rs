//! canary: sends opted-in requests to the canary upstream — those with `x-canary: 1` or the
//! cookie `canary=1` — and tags them with the property `canary` (`header` or `cookie`).
//!
//! ```kdl
//! config {
//!     upstream "canary"   // upstream name in the config (default "canary")
//!     header "x-canary"   // optional, this is the default
//!     cookie "canary"     // optional, this is the default
//! }
//! ```
use weir_plugin::*;

struct Canary {
    upstream: String,
    header: String,
    cookie: String,
}

impl Default for Canary {
    fn default() -> Self {
        Canary { upstream: "canary".to_string(), header: "x-canary".to_string(), cookie: "canary".to_string() }
    }
}

/// Whether any `cookie` header has `name=1`.
fn cookie_on(request: &Request, name: &str) -> bool {
    request.header_values("cookie").iter().flat_map(|h| h.split(';')).any(|pair| {
        let pair = pair.trim();
        match pair.find('=') {
            Some(eq) => &pair[..eq] == name && pair[eq + 1..].trim() == "1",
            None => false,
        }
    })
}

impl RootContext for Canary {
    fn name(&self) -> &str {
        "canary"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnRequestHeaders]
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        for (key, slot) in [("upstream", &mut self.upstream), ("header", &mut self.header), ("cookie", &mut self.cookie)] {
            if let Some(node) = config.get(key) {
                match node.arg(0).and_then(|v| v.as_str()) {
                    Some(s) if !s.is_empty() => *slot = s.to_string(),
                    _ => return Err(node.error(&format!("`{}` needs a non-empty string", key))),
                }
            }
        }
        self.header = self.header.to_ascii_lowercase();
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Route { upstream: self.upstream.clone(), header: self.header.clone(), cookie: self.cookie.clone() })
    }
}

struct Route {
    upstream: String,
    header: String,
    cookie: String,
}

impl HttpContext for Route {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        let why = if request.header(&self.header) == Some("1") {
            "header"
        } else if cookie_on(request, &self.cookie) {
            "cookie"
        } else {
            return Decision::Continue;
        };
        request.set_property("canary", why);
        // The view has no setter for set-upstream; Mutate appends it after the view's changes.
        Decision::Mutate(vec![Mutation::SetUpstream(self.upstream.clone())])
    }
}

weir_plugin!(Canary);

//! api-key: lets through only requests carrying one of the configured keys, and strips the
//! key before the upstream sees it.
//!
//! ```kdl
//! config {
//!     header "x-api-key"          // optional, this is the default
//!     keys "k-live-1" "k-live-2"  // at least one
//! }
//! ```
use weir_plugin::*;

struct ApiKey {
    header: String,
    keys: Vec<String>,
}

impl Default for ApiKey {
    fn default() -> Self {
        ApiKey { header: "x-api-key".to_string(), keys: Vec::new() }
    }
}

/// Compares every byte whatever the first difference, so timing does not leak key prefixes.
fn same(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_error(status: u16, message: &str) -> Decision {
    Decision::Respond {
        status,
        headers: vec![Header::new("content-type", "application/json")],
        body: format!("{{\"error\":\"{}\"}}", message).into_bytes(),
    }
}

impl RootContext for ApiKey {
    fn name(&self) -> &str {
        "api-key"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnRequestHeaders]
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        if let Some(node) = config.get("header") {
            match node.arg(0).and_then(|v| v.as_str()) {
                Some(h) if !h.is_empty() => self.header = h.to_ascii_lowercase(),
                _ => return Err(node.error("`header` needs a header name")),
            }
        }
        let keys = match config.get("keys") {
            Some(k) => k,
            None => return Err(ConfigError::new("api-key: `keys` is required")),
        };
        for v in keys.args() {
            match v.as_str() {
                Some(k) if !k.is_empty() => self.keys.push(k.to_string()),
                _ => return Err(keys.error("`keys` arguments must be non-empty strings")),
            }
        }
        if self.keys.is_empty() {
            return Err(keys.error("`keys` needs at least one key"));
        }
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Check { header: self.header.clone(), keys: self.keys.clone() })
    }
}

struct Check {
    header: String,
    keys: Vec<String>,
}

impl HttpContext for Check {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        let known = match request.header(&self.header) {
            None | Some("") => return json_error(401, "missing api key"),
            Some(key) => self.keys.iter().any(|k| same(k, key)),
        };
        if !known {
            return json_error(403, "unknown api key");
        }
        // The upstream trusts the proxy, not the key: don't leak it.
        let header = self.header.clone();
        request.remove_header(&header);
        Decision::Continue
    }
}

weir_plugin!(ApiKey);

//! add-header: appends configured headers to every response.
//!
//! ```kdl
//! config {
//!     header "x-served-by" "weir"
//!     header "x-frame-options" "DENY"
//! }
//! ```
use weir_plugin::*;

#[derive(Default)]
struct AddHeader {
    headers: Vec<(String, String)>,
}

impl RootContext for AddHeader {
    fn name(&self) -> &str {
        "add-header"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnResponseHeaders]
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        for node in config.get_all("header") {
            let name = node.arg(0).and_then(|v| v.as_str());
            let value = node.arg(1).and_then(|v| v.as_str());
            match (name, value) {
                (Some(n), Some(v)) if !n.is_empty() => self.headers.push((n.to_ascii_lowercase(), v.to_string())),
                _ => return Err(node.error("`header` needs a name and a value: header \"x-name\" \"value\"")),
            }
        }
        if self.headers.is_empty() {
            return Err(ConfigError::new("add-header: at least one `header NAME VALUE` is needed"));
        }
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Add { headers: self.headers.clone() })
    }
}

struct Add {
    headers: Vec<(String, String)>,
}

impl HttpContext for Add {
    fn on_response_headers(&mut self, _request: &Request, response: &mut Response) -> Decision {
        // add-header, not set-header: keep any value the upstream sent.
        for (name, value) in &self.headers {
            response.add_header(name, value);
        }
        Decision::Continue
    }
}

weir_plugin!(AddHeader);

//! deny-path: refuses requests by path prefix and/or method with a JSON error.
//!
//! ```kdl
//! config {
//!     status 403                               // optional, 400..=599
//!     deny prefix="/admin"                     // any method
//!     deny method="DELETE"                     // any path
//!     deny prefix="/reports" method="POST"     // both must match
//! }
//! ```
use weir_plugin::*;

struct Rule {
    prefix: Option<String>,
    method: Option<String>,
}

struct DenyPath {
    status: u16,
    rules: Vec<Rule>,
}

impl Default for DenyPath {
    fn default() -> Self {
        DenyPath { status: 403, rules: Vec::new() }
    }
}

/// Segment-aware: `/admin` covers `/admin` and `/admin/x`, not `/administrator`.
fn under(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes()[prefix.len()] == b'/')
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl RootContext for DenyPath {
    fn name(&self) -> &str {
        "deny-path"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnRequestHeaders]
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        if let Some(node) = config.get("status") {
            match node.arg(0).and_then(|v| v.as_i64()) {
                Some(s) if (400..=599).contains(&s) => self.status = s as u16,
                _ => return Err(node.error("`status` must be an integer from 400 to 599")),
            }
        }
        for node in config.get_all("deny") {
            let text = |name: &str| node.prop(name).and_then(|v| v.as_str()).map(|s| s.to_string());
            let rule = Rule { prefix: text("prefix"), method: text("method").map(|m| m.to_ascii_uppercase()) };
            if rule.prefix.is_none() && rule.method.is_none() {
                return Err(node.error("`deny` needs prefix=\"/path\" and/or method=\"VERB\" (strings)"));
            }
            if let Some(p) = &rule.prefix {
                if !p.starts_with('/') {
                    return Err(node.error("`prefix` must start with /"));
                }
            }
            self.rules.push(rule);
        }
        if self.rules.is_empty() {
            return Err(ConfigError::new("deny-path: at least one `deny` rule is needed"));
        }
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        let denied = self.rules.iter().map(|r| Rule { prefix: r.prefix.clone(), method: r.method.clone() }).collect();
        Box::new(Check { status: self.status, rules: denied })
    }
}

struct Check {
    status: u16,
    rules: Vec<Rule>,
}

impl HttpContext for Check {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        let path = request.path();
        let hit = self.rules.iter().any(|r| {
            r.prefix.as_ref().map_or(true, |p| under(path, p)) && r.method.as_ref().map_or(true, |m| m == request.method())
        });
        if !hit {
            return Decision::Continue;
        }
        let body = format!("{{\"error\":\"forbidden\",\"path\":{}}}", json_string(path));
        Decision::Respond {
            status: self.status,
            headers: vec![Header::new("content-type", "application/json")],
            body: body.into_bytes(),
        }
    }
}

weir_plugin!(DenyPath);

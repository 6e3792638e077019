//! redact-json: replaces the values of configured fields in JSON request bodies with
//! `"[redacted]"`, at any depth. Bodies that are not JSON pass unchanged. Bodies over `limit`
//! get a 413 (see the README: the host enforces its own, larger, buffering limit too).
//!
//! ```kdl
//! config {
//!     fields "password" "card_number"  // at least one
//!     limit 65536                      // optional, bytes (default 1 MiB, at most 8 MiB)
//! }
//! ```
use weir_plugin::*;

const DEFAULT_LIMIT: usize = 1024 * 1024;
/// The buffering limit declared to the host. `describe` runs before `configure`, so it
/// cannot follow the config; `limit` is checked by the plugin below this ceiling.
const MAX_LIMIT: usize = 8 * 1024 * 1024;
/// Deeper documents are treated as not JSON (bounded recursion on a small wasm stack).
const MAX_DEPTH: u32 = 128;
const REDACTED: &[u8] = b"\"[redacted]\"";

struct RedactJson {
    fields: Vec<String>,
    limit: usize,
}

impl Default for RedactJson {
    fn default() -> Self {
        RedactJson { fields: Vec::new(), limit: DEFAULT_LIMIT }
    }
}

/// A validating JSON scanner that records the byte ranges of values to redact.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    fields: &'a [String],
    ranges: Vec<(usize, usize)>,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }
    /// A string starting at `"`; returns the raw bytes between the quotes.
    fn string(&mut self) -> Option<(usize, usize)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i - 1));
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'u' => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek()?.is_ascii_hexdigit() {
                                    return None;
                                }
                                self.i += 1;
                            }
                        }
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }
    fn value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    if self.eat(b']') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }
    fn object(&mut self, depth: u32) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let (ks, ke) = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            // Keys compare raw (escapes are not decoded).
            let hit = self.fields.iter().any(|f| f.as_bytes() == &self.s[ks..ke]);
            self.ws();
            let start = self.i;
            let before = self.ranges.len();
            self.value(depth + 1)?;
            if hit {
                // The whole value goes: forget redactions found inside it.
                self.ranges.truncate(before);
                self.ranges.push((start, self.i));
            }
            self.ws();
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

/// The body with matching values replaced, or None when it is not JSON or nothing matched.
fn redact(body: &[u8], fields: &[String]) -> Option<Vec<u8>> {
    let mut scan = Scan { s: body, i: 0, fields, ranges: Vec::new() };
    scan.value(0)?;
    scan.ws();
    if scan.i != body.len() || scan.ranges.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for &(start, end) in &scan.ranges {
        out.extend_from_slice(&body[at..start]);
        out.extend_from_slice(REDACTED);
        at = end;
    }
    out.extend_from_slice(&body[at..]);
    host::log(LogLevel::Debug, &format!("redacted {} value(s)", scan.ranges.len()));
    Some(out)
}

impl RootContext for RedactJson {
    fn name(&self) -> &str {
        "redact-json"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        Vec::new() // on-request-body is added by request_body()
    }

    fn request_body(&self) -> BodyMode {
        BodyMode::Buffered(MAX_LIMIT as u32)
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        if let Some(node) = config.get("limit") {
            match node.arg(0).and_then(|v| v.as_i64()) {
                Some(n) if n > 0 && n <= MAX_LIMIT as i64 => self.limit = n as usize,
                _ => return Err(node.error("`limit` must be an integer from 1 to 8388608 (bytes)")),
            }
        }
        let fields = match config.get("fields") {
            Some(f) => f,
            None => return Err(ConfigError::new("redact-json: `fields` is required")),
        };
        for v in fields.args() {
            match v.as_str() {
                Some(f) if !f.is_empty() => self.fields.push(f.to_string()),
                _ => return Err(fields.error("`fields` arguments must be non-empty strings")),
            }
        }
        if self.fields.is_empty() {
            return Err(fields.error("`fields` needs at least one field name"));
        }
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Redact { fields: self.fields.clone(), limit: self.limit })
    }
}

struct Redact {
    fields: Vec<String>,
    limit: usize,
}

impl HttpContext for Redact {
    fn on_request_body(&mut self, chunk: &[u8], _end: bool) -> BodyDecision {
        // Buffered: the whole body arrives in one call.
        if chunk.len() > self.limit {
            return BodyDecision::Respond {
                status: 413,
                headers: vec![Header::new("content-type", "application/json")],
                body: format!("{{\"error\":\"body too large\",\"limit\":{}}}", self.limit).into_bytes(),
            };
        }
        match redact(chunk, &self.fields) {
            Some(out) => BodyDecision::Replace(out),
            None => BodyDecision::Continue,
        }
    }
}

weir_plugin!(RedactJson);

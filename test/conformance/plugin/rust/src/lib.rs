//! The SDK conformance fixture, Rust side. `../as/assembly/index.ts` is the same plugin in
//! AssemblyScript; `../../cases.json` runs against both and their outputs must be identical.
//! Behaviour is chosen by the request path (see cases.json), so one config serves most cases.
//!
//! Config: `prefix "x-conf-"` (headers this plugin adds; must start with `x-`),
//! `callout-url "http://…"` (optional, for /host/callout), `fail "why"` (refuse the config).
use weir_plugin::crypto;
use weir_plugin::exchange;
use weir_plugin::host;
use weir_plugin::*;

const BODY_LIMIT: u32 = 4 * 1024 * 1024;
const CONFIG_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{"prefix":{},"callout-url":{},"fail":{}}}"#;

struct Conformance {
    prefix: String,
    callout_url: String,
    requests: u32,
    body_bytes: u32,
    /// The exchange functions as configure sees them (outside any hook): /exchange/outside.
    outside: String,
}

impl Default for Conformance {
    fn default() -> Self {
        Conformance { prefix: "x-conf-".to_string(), callout_url: String::new(), requests: 0, body_bytes: 0, outside: String::new() }
    }
}

impl RootContext for Conformance {
    fn name(&self) -> &str {
        "conformance"
    }
    fn version(&self) -> &str {
        "1.0.0"
    }
    fn hooks(&self) -> Vec<Hook> {
        // The body hooks come from the body modes.
        vec![Hook::OnRequestHeaders, Hook::SelectUpstream, Hook::OnResponseHeaders, Hook::OnLog]
    }
    fn request_body(&self) -> BodyMode {
        BodyMode::Buffered(BODY_LIMIT)
    }
    fn response_body(&self) -> BodyMode {
        BodyMode::Buffered(BODY_LIMIT)
    }
    /// The nodes this plugin knows; their types are the getters' to check.
    fn config_schema(&self) -> String {
        CONFIG_SCHEMA.to_string()
    }

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        if let Some(fail) = config.get("fail") {
            return Err(fail.error(&format!("told to fail: {}", fail.arg(0).and_then(|v| v.as_str()).unwrap_or("no reason"))));
        }
        if let Some(node) = config.get("prefix") {
            match node.arg(0).and_then(|v| v.as_str()) {
                Some(p) if p.starts_with("x-") => self.prefix = p.to_string(),
                Some(_) => return Err(node.error("`prefix` must start with x-")),
                None => return Err(node.error("`prefix` must be a string")),
            }
        }
        if let Some(url) = config.get_str("callout-url") {
            self.callout_url = url.to_string();
        }
        self.requests = host::define_metric("conformance_requests", MetricKind::Counter, "requests seen", &["path"]);
        self.body_bytes = host::define_metric("conformance_body_bytes", MetricKind::Histogram, "request body sizes", &[]);
        self.outside = exchange_outside();
        Ok(())
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Exchange {
            prefix: self.prefix.clone(),
            callout_url: self.callout_url.clone(),
            requests: self.requests,
            body_bytes: self.body_bytes,
            outside: self.outside.clone(),
            path: String::new(),
            request_bytes: None,
        })
    }
}

/// Per-request state: what on-request-headers saw, for the later hooks.
struct Exchange {
    prefix: String,
    callout_url: String,
    requests: u32,
    body_bytes: u32,
    outside: String,
    path: String,
    request_bytes: Option<usize>,
}

/// A panic in a function of its own, so the trap's stack names it.
#[inline(never)]
fn trap_here() -> Decision {
    panic!("conformance: asked to trap")
}

fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x01000193))
}

fn digest(data: &[u8]) -> Vec<u8> {
    format!("len={} fnv={:08x}", data.len(), fnv1a(data)).into_bytes()
}

fn upper(data: &[u8]) -> Vec<u8> {
    data.to_ascii_uppercase()
}

fn header_list(list: &[Header]) -> String {
    list.iter().map(|h| format!("{}:{}", h.name, h.value)).collect::<Vec<_>>().join(",")
}

fn property_list(list: &[Property]) -> String {
    list.iter().map(|p| format!("{}={}", p.key, p.value)).collect::<Vec<_>>().join(",")
}

fn or_none(v: Option<String>) -> String {
    v.unwrap_or_else(|| "none".to_string())
}

/// Every request-side exchange function, called directly (names in any case).
fn exchange_request() -> String {
    format!(
        "method={} scheme={} authority={} path={} query={} header={} values={} absent={} absent-values={} headers={} client={}:{} route={} version={} property={} properties={}",
        exchange::request_method(),
        exchange::request_scheme(),
        exchange::request_authority(),
        exchange::request_path(),
        exchange::request_query(),
        or_none(exchange::request_header("X-Multi")),
        exchange::request_header_values("x-MULTI").join("|"),
        or_none(exchange::request_header("x-absent")),
        exchange::request_header_values("x-absent").len(),
        header_list(&exchange::request_headers()),
        exchange::client_address(),
        exchange::client_port(),
        exchange::route_name(),
        exchange::http_version(),
        or_none(exchange::request_property("conf.ex")),
        property_list(&exchange::request_properties()),
    )
}

/// Every response-side exchange function, and request reads from a response hook.
fn exchange_response() -> String {
    format!(
        "status={} header={} values={} absent={} headers={} path={} method={} property={} properties={}",
        exchange::response_status(),
        or_none(exchange::response_header("Content-Type")),
        exchange::response_header_values("X-UP").join("|"),
        or_none(exchange::response_header("x-absent")),
        header_list(&exchange::response_headers()),
        exchange::request_path(),
        exchange::request_method(),
        or_none(exchange::request_property("conf.ex")),
        property_list(&exchange::request_properties()),
    )
}

/// What the exchange functions answer outside a hook: empty everywhere.
fn exchange_outside() -> String {
    format!(
        "method={} path={} header={} values={} headers={} port={} property={} properties={} status={} response-headers={}",
        exchange::request_method(),
        exchange::request_path(),
        or_none(exchange::request_header("host")),
        exchange::request_header_values("host").len(),
        exchange::request_headers().len(),
        exchange::client_port(),
        or_none(exchange::request_property("conf.ex")),
        exchange::request_properties().len(),
        exchange::response_status(),
        exchange::response_headers().len(),
    )
}

fn ok(b: bool) -> &'static str {
    if b {
        "ok"
    } else {
        "bad"
    }
}

impl Exchange {
    fn h(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The host imports, one per path; the result goes upstream as a header.
    fn host_call(&mut self, request: &mut Request) -> Option<String> {
        let key = format!("conf:{}", request.header("x-key").unwrap_or("default"));
        Some(match request.path() {
            "/host/log" => {
                for level in [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error] {
                    host::log(level, "conformance: log ✓");
                }
                "5".to_string()
            }
            "/host/metric" => {
                host::record_metric(self.requests, 1.0, &[request.path()]);
                host::record_metric(self.body_bytes, 42.5, &[]);
                "recorded".to_string()
            }
            "/host/counter" => {
                let delta = request.header("x-delta").and_then(|d| d.parse::<i64>().ok()).unwrap_or(1);
                host::counter_add(&key, delta, 60_000).to_string()
            }
            "/host/bucket" => {
                // 0.001 token/s: no refill between cases, whatever the machine's speed.
                let r = host::token_bucket_take(&key, 0.001, 2, 1);
                let retry = if r.retry_after_ms > 0 { "positive" } else { "0" };
                format!("{} remaining={} retry={}", if r.allowed { "allowed" } else { "denied" }, r.remaining, retry)
            }
            "/host/kv" => {
                // Versions come from a store-wide sequence: assert that they grow, not their values.
                let old = host::kv_get(&key);
                let value = request.header("x-value").unwrap_or("").to_string();
                let new = host::kv_cas(&key, value.as_bytes(), old.as_ref().map(|e| e.version), 0);
                let new = match (&old, new) {
                    (_, None) => "conflict",
                    (Some(e), Some(v)) if v > e.version => "newer",
                    (Some(_), Some(_)) => "not-newer",
                    (None, Some(v)) if v > 0 => "set",
                    (None, Some(_)) => "zero",
                };
                let old = match old {
                    Some(e) => String::from_utf8_lossy(&e.value).to_string(),
                    None => "none".to_string(),
                };
                format!("old={} new={}", old, new)
            }
            "/host/kv-absent" => {
                // expected-version none: write only if the key does not exist yet.
                match host::kv_cas(&key, b"first", None, 60_000) {
                    Some(v) if v > 0 => "set".to_string(),
                    Some(_) => "zero".to_string(),
                    None => "conflict".to_string(),
                }
            }
            "/host/geo" => host::geo_country(request.client_address()).unwrap_or_else(|| "none".to_string()),
            "/host/clock" => {
                // Shapes, not values: plausible epoch ms, a clock that does not go back, two draws that differ.
                let now = host::now_ms();
                let (m1, m2) = (host::monotonic_ns(), host::monotonic_ns());
                let (r1, r2) = (host::random_u64(), host::random_u64());
                format!("now={} mono={} random={}", ok(now > 1_600_000_000_000 && now < 4_102_444_800_000), ok(m2 >= m1), ok(r1 != r2))
            }
            "/host/callout" => {
                if self.callout_url.is_empty() {
                    return Some("unconfigured".to_string());
                }
                let req = CalloutRequest {
                    method: "POST".to_string(),
                    url: self.callout_url.clone(),
                    headers: vec![Header::new("x-conf-callout", "1")],
                    body: b"ping".to_vec(),
                    timeout_ms: 2000,
                };
                match host::http_callout(&req) {
                    Ok(r) => format!("{}:{}", r.status, String::from_utf8_lossy(&r.body)),
                    Err(e) => format!("error:{}", e),
                }
            }
            "/crypto/digest" | "/crypto/hmac" => {
                let alg = match request.header("x-alg").unwrap_or("") {
                    "sha256" => HashAlgorithm::Sha256,
                    "sha384" => HashAlgorithm::Sha384,
                    "sha512" => HashAlgorithm::Sha512,
                    _ => return Some("unknown-alg".to_string()),
                };
                let data = request.header("x-data").unwrap_or("").as_bytes().to_vec();
                let out = if request.path() == "/crypto/digest" {
                    crypto::digest(alg, &data)
                } else {
                    match crypto::base64url_decode(request.header("x-hmac-key").unwrap_or("")) {
                        Some(k) => crypto::hmac(alg, &k, &data),
                        None => return Some("bad-key-encoding".to_string()),
                    }
                };
                crypto::base64url_encode(&out)
            }
            "/crypto/equal" => {
                let (a, b) = (request.header("x-a").unwrap_or(""), request.header("x-b").unwrap_or(""));
                (if crypto::constant_time_equal(a.as_bytes(), b.as_bytes()) { "equal" } else { "different" }).to_string()
            }
            "/crypto/base64url" => {
                let enc = crypto::base64url_encode(request.header("x-data").unwrap_or("").as_bytes());
                let round = crypto::base64url_decode(&enc).map(|b| String::from_utf8_lossy(&b).to_string());
                let dec = match request.header("x-b64").map(crypto::base64url_decode) {
                    None => "-".to_string(),
                    Some(None) => "none".to_string(),
                    Some(Some(b)) => String::from_utf8_lossy(&b).to_string(),
                };
                format!("enc={} round={} dec={}", enc, round.as_deref() == request.header("x-data").or(Some("")), dec)
            }
            "/crypto/verify" => {
                let alg = match request.header("x-alg").unwrap_or("") {
                    "rs256" => SignatureAlgorithm::Rs256,
                    "rs384" => SignatureAlgorithm::Rs384,
                    "rs512" => SignatureAlgorithm::Rs512,
                    "ps256" => SignatureAlgorithm::Ps256,
                    "es256" => SignatureAlgorithm::Es256,
                    "es384" => SignatureAlgorithm::Es384,
                    "ed-dsa" => SignatureAlgorithm::EdDsa,
                    _ => return Some("unknown-alg".to_string()),
                };
                let sig = match crypto::base64url_decode(request.header("x-sig").unwrap_or("")) {
                    Some(s) => s,
                    None => return Some("bad-signature-encoding".to_string()),
                };
                match crypto::verify_signature(alg, request.header("x-jwk").unwrap_or(""), request.header("x-data").unwrap_or("").as_bytes(), &sig) {
                    Ok(true) => "valid".to_string(),
                    Ok(false) => "invalid".to_string(),
                    Err(e) => format!("error:{}", e),
                }
            }
            "/exchange/request" => exchange_request(),
            "/exchange/outside" => self.outside.clone(),
            "/host/last-log" => match host::kv_get("conf:last-log") {
                Some(e) => String::from_utf8_lossy(&e.value).to_string(),
                None => "none".to_string(),
            },
            _ => return None,
        })
    }
}

impl HttpContext for Exchange {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        self.path = request.path().to_string();
        let path = self.path.clone();
        if let Some(result) = self.host_call(request) {
            let name = self.h("host");
            request.set_header(&name, &result);
            return Decision::Continue;
        }
        match path.as_str() {
            "/continue" => Decision::Continue,
            "/trap" => trap_here(),
            "/mutate" => {
                let keep = request.query_param("keep").unwrap_or("-").to_string();
                request.set_header(&self.h("set"), "1");
                request.add_header(&self.h("add"), "a");
                request.add_header(&self.h("add"), "b");
                request.remove_header("x-remove-me");
                request.set_path("/rewritten");
                request.set_query(&format!("q=1&keep={}", keep));
                request.set_method("PUT");
                request.set_authority("backend.test");
                request.set_property("conf.mutated", "yes");
                // Reads see this hook's own changes.
                let view = format!("{} {} {}", if request.header("x-remove-me").is_none() { "removed" } else { "kept" }, request.path(), request.method());
                request.set_header(&self.h("view"), &view);
                Decision::Continue
            }
            "/respond" => Decision::Respond {
                status: 403,
                headers: vec![Header::new("content-type", "text/plain; charset=utf-8"), Header::new(&self.h("reason"), "nicht erlaubt — ü")],
                body: format!("verboten ✗ {}", request.client_address()).into_bytes(),
            },
            "/utf8" => {
                let v = request.header("x-utf8").unwrap_or("").to_string();
                request.set_header(&self.h("echo"), &v);
                request.set_property("conf.utf8", &v);
                Decision::Continue
            }
            "/properties" => {
                request.set_property("conf.a", "1");
                request.set_property("conf.b", "2");
                request.remove_property("conf.b");
                Decision::Continue
            }
            "/exchange/response" => {
                // Set now, read through request-property by on-response-headers.
                request.set_property("conf.ex", "set");
                Decision::Continue
            }
            "/upstream" => {
                request.set_property("conf.upstream", "canary");
                Decision::Mutate(vec![Mutation::SetUpstream("canary".to_string())])
            }
            _ => Decision::Continue,
        }
    }

    fn on_request_body(&mut self, chunk: &[u8], _end: bool) -> BodyDecision {
        self.request_bytes = Some(self.request_bytes.unwrap_or(0) + chunk.len());
        match self.path.as_str() {
            "/body/upper" => BodyDecision::Replace(upper(chunk)),
            "/body/digest" => BodyDecision::Replace(digest(chunk)),
            "/body/drop" => BodyDecision::Replace(Vec::new()),
            "/body/reject" => BodyDecision::Respond {
                status: 422,
                headers: vec![Header::new(&self.h("why"), "größe")],
                body: format!("rejected {} bytes", chunk.len()).into_bytes(),
            },
            _ => BodyDecision::Continue,
        }
    }

    fn select_upstream(&mut self, _request: &Request, upstream: &UpstreamInfo, targets: &[Target]) -> Option<u32> {
        match self.path.as_str() {
            // Least in flight among healthy targets, then lowest latency, then lowest index.
            "/select" => targets
                .iter()
                .filter(|t| t.healthy && Some(t.index) != upstream.previous)
                .fold(None, |best: Option<&Target>, t| match best {
                    Some(b) if (b.in_flight, b.ewma_latency_ms) <= (t.in_flight, t.ewma_latency_ms) => Some(b),
                    _ => Some(t),
                })
                .map(|t| t.index),
            "/select/last" => targets.last().map(|t| t.index),
            _ => None,
        }
    }

    fn on_response_headers(&mut self, request: &Request, response: &mut Response) -> Decision {
        match self.path.as_str() {
            "/continue" => return Decision::Continue,
            "/exchange/response" => {
                response.set_header(&self.h("exchange"), &exchange_response());
                return Decision::Continue;
            }
            "/response/replace" => {
                return Decision::Respond {
                    status: 502,
                    headers: vec![Header::new(&self.h("replaced"), "1")],
                    body: b"replaced by on-response-headers".to_vec(),
                }
            }
            "/response/status" => response.set_status(202),
            "/utf8" => {
                let v = request.header("x-utf8").unwrap_or("").to_string();
                response.set_header(&self.h("echo"), &v);
            }
            _ => {}
        }
        let status = response.status().to_string();
        response.set_header(&self.h("status-seen"), &status);
        response.add_header(&self.h("path-seen"), &format!("{} -> {}", self.path, request.path()));
        if let Some(n) = self.request_bytes {
            response.set_header(&self.h("request-bytes"), &n.to_string());
        }
        let prop = request.property("conf.mutated").unwrap_or("none").to_string();
        response.set_header(&self.h("prop"), &prop);
        response.remove_header("server");
        response.set_property("conf.response", "seen");
        Decision::Continue
    }

    fn on_response_body(&mut self, chunk: &[u8], _end: bool) -> BodyDecision {
        match self.path.as_str() {
            "/body/upper" => BodyDecision::Replace(upper(chunk)),
            "/body/digest" => BodyDecision::Replace(digest(chunk)),
            // Ignored by the host on responses: the body passes unchanged.
            "/response/body-respond" => BodyDecision::respond(500, b"ignored"),
            _ => BodyDecision::Continue,
        }
    }

    fn on_log(&mut self, summary: &LogSummary) {
        host::record_metric(self.requests, 1.0, &["log"]);
        if let Some(n) = self.request_bytes {
            host::record_metric(self.body_bytes, n as f64, &[]);
        }
        // State that outlives the request: /host/last-log reads it back in the next case.
        let line = format!("path={} status={} error={}", self.path, summary.status, summary.error_code.as_deref().unwrap_or("none"));
        let old = host::kv_get("conf:last-log").map(|e| e.version);
        host::kv_cas("conf:last-log", line.as_bytes(), old, 0);
    }
}

weir_plugin!(Conformance);

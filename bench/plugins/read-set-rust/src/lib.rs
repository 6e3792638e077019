//! Micro-benchmark plugin (bench/micro.ts): reads one request header and sets another to it.
use weir_plugin::*;

#[derive(Default)]
struct ReadSet;

impl RootContext for ReadSet {
    fn name(&self) -> &str {
        "bench-read-set"
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::OnRequestHeaders]
    }

    fn create_http_context(&mut self, _id: ContextId) -> Box<dyn HttpContext> {
        Box::new(Ctx)
    }
}

struct Ctx;

impl HttpContext for Ctx {
    fn on_request_headers(&mut self, request: &mut Request) -> Decision {
        let v = request.header("x-request-id").unwrap_or("-").to_string();
        request.set_header("x-seen-id", &v);
        Decision::Continue
    }
}

weir_plugin!(ReadSet);

//! Request and response views for header hooks. Since ABI 0.2 a hook receives no head: the
//! views read it through the host's `exchange` functions on first access (only what a plugin
//! reads is copied) and keep what they read for the rest of the call. Setters update the view
//! and record the WIT `mutation` the host applies after the hook.

use crate::abi::exchange;
use crate::abi::types::*;
use std::cell::UnsafeCell;

/// What a view has read so far. Strings are boxed and only ever added while a `&self`
/// borrow may be out, so a returned `&str` stays valid for that borrow (see `Cache::keep`).
#[derive(Default)]
struct Cache {
    text: [Option<Box<str>>; 8],
    port: Option<u16>,
    status: Option<u16>,
    /// Every header, once asked for all of them (then by-name reads use it).
    all: Option<Vec<Header>>,
    /// Values of the headers asked for by name (lowercase name), or changed through the view.
    by_name: Vec<(Box<str>, Vec<Box<str>>)>,
    /// First values of the headers read with `header` (one host call copies one value).
    first_by_name: Vec<(Box<str>, Option<Box<str>>)>,
    properties: Option<Vec<Property>>,
    by_key: Vec<(Box<str>, Option<Box<str>>)>,
}

const METHOD: usize = 0;
const SCHEME: usize = 1;
const AUTHORITY: usize = 2;
const PATH: usize = 3;
const QUERY: usize = 4;
const CLIENT: usize = 5;
const ROUTE: usize = 6;
const VERSION: usize = 7;

/// Which head a view reads.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Request,
    Response,
}

struct Lazy {
    part: Part,
    cache: UnsafeCell<Cache>,
    /// A view made from a whole head (tests, native builds): never asks the host.
    fixed: bool,
}

impl Lazy {
    fn new(part: Part) -> Lazy {
        Lazy { part, cache: UnsafeCell::new(Cache::default()), fixed: false }
    }

    #[allow(clippy::mut_from_ref)]
    fn cache(&self) -> &mut Cache {
        // Safety: single-threaded guest; entries are only added behind `&self` (never
        // replaced or dropped), so earlier `&str`s into boxed strings stay valid. Changes that
        // replace entries take `&mut self` in the views.
        unsafe { &mut *self.cache.get() }
    }

    fn text(&self, slot: usize, fetch: fn() -> String) -> &str {
        let c = self.cache();
        if c.text[slot].is_none() {
            c.text[slot] = Some(if self.fixed { Box::from("") } else { fetch().into_boxed_str() });
        }
        c.text[slot].as_deref().unwrap_or("")
    }

    /// The first value of header `name`: from what the view holds, else one host call.
    fn first(&self, name: &str) -> Option<&str> {
        let c = self.cache();
        if let Some(i) = c.by_name.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return c.by_name[i].1.first().map(|v| &**v);
        }
        if c.all.is_some() || self.fixed {
            return self.values(name).first().map(|v| &**v);
        }
        if let Some(i) = c.first_by_name.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return c.first_by_name[i].1.as_deref();
        }
        let v = if self.part == Part::Request { exchange::request_header(name) } else { exchange::response_header(name) };
        c.first_by_name.push((Box::from(name), v.map(String::into_boxed_str)));
        c.first_by_name.last().and_then(|e| e.1.as_deref())
    }

    fn values(&self, name: &str) -> &[Box<str>] {
        let n = name.to_ascii_lowercase();
        let c = self.cache();
        if let Some(i) = c.by_name.iter().position(|(k, _)| **k == *n) {
            return &c.by_name[i].1;
        }
        let vals: Vec<Box<str>> = match &c.all {
            Some(list) => list.iter().filter(|h| h.name == n).map(|h| Box::from(h.value.as_str())).collect(),
            None if self.fixed => Vec::new(),
            None => {
                let got = if self.part == Part::Request { exchange::request_header_values(&n) } else { exchange::response_header_values(&n) };
                got.into_iter().map(String::into_boxed_str).collect()
            }
        };
        c.by_name.push((n.into_boxed_str(), vals));
        &c.by_name.last().map(|e| e.1.as_slice()).unwrap_or(&[])
    }

    fn all(&self) -> &[Header] {
        let c = self.cache();
        if c.all.is_none() {
            let mut list = if self.fixed {
                Vec::new()
            } else if self.part == Part::Request {
                exchange::request_headers()
            } else {
                exchange::response_headers()
            };
            // Names already read (and possibly changed) by name win over the host's list.
            for (n, vals) in &c.by_name {
                list.retain(|h| *h.name != **n);
                list.extend(vals.iter().map(|v| Header::new(n, v)));
            }
            c.all = Some(list);
        }
        c.all.as_deref().unwrap_or(&[])
    }

    fn property(&self, key: &str) -> Option<&str> {
        let c = self.cache();
        if let Some(list) = &c.properties {
            return list.iter().find(|p| p.key == key).map(|p| p.value.as_str());
        }
        if let Some(i) = c.by_key.iter().position(|(k, _)| **k == *key) {
            return c.by_key[i].1.as_deref();
        }
        let v = if self.fixed { None } else { exchange::request_property(key).map(String::into_boxed_str) };
        c.by_key.push((Box::from(key), v));
        c.by_key.last().and_then(|e| e.1.as_deref())
    }

    fn properties(&self) -> &[Property] {
        let c = self.cache();
        if c.properties.is_none() {
            let mut list = if self.fixed { Vec::new() } else { exchange::request_properties() };
            for (k, v) in &c.by_key {
                list.retain(|p| *p.key != **k);
                if let Some(v) = v {
                    list.push(Property::new(k, v));
                }
            }
            c.properties = Some(list);
        }
        c.properties.as_deref().unwrap_or(&[])
    }

    /// Header `name` now has exactly `vals` (a set, add or remove through the view).
    fn put_values(&mut self, name: &str, vals: Vec<Box<str>>) {
        let n = name.to_ascii_lowercase();
        let c = self.cache.get_mut();
        c.first_by_name.retain(|(k, _)| !k.eq_ignore_ascii_case(&n));
        if let Some(list) = &mut c.all {
            list.retain(|h| h.name != n);
            list.extend(vals.iter().map(|v| Header::new(&n, v)));
        }
        match c.by_name.iter().position(|(k, _)| **k == *n) {
            Some(i) => c.by_name[i].1 = vals,
            None => c.by_name.push((n.into_boxed_str(), vals)),
        }
    }

    fn put_property(&mut self, key: &str, value: Option<&str>) {
        let c = self.cache.get_mut();
        if let Some(list) = &mut c.properties {
            list.retain(|p| p.key != key);
            if let Some(v) = value {
                list.push(Property::new(key, v));
            }
        }
        let v = value.map(Box::from);
        match c.by_key.iter().position(|(k, _)| **k == *key) {
            Some(i) => c.by_key[i].1 = v,
            None => c.by_key.push((Box::from(key), v)),
        }
    }
}

/// The request as a hook sees it, read from the host on first access. Setters record
/// mutations (only honoured from `on_request_headers`; property setters work in every header hook).
pub struct Request {
    context_id: ContextId,
    view: Lazy,
    mutations: Vec<Mutation>,
}

/// The response head in `on_response_headers`, read from the host on first access. Setters record mutations.
pub struct Response {
    context_id: ContextId,
    view: Lazy,
    mutations: Vec<Mutation>,
}

impl Request {
    pub(crate) fn new(context_id: ContextId) -> Request {
        Request { context_id, view: Lazy::new(Part::Request), mutations: Vec::new() }
    }

    /// A request view over a given head that never asks the host (unit tests, native builds).
    #[allow(clippy::too_many_arguments)]
    pub fn fixed(context_id: ContextId, method: &str, scheme: &str, authority: &str, path: &str, query: &str, headers: Vec<Header>, client_address: &str, client_port: u16, route_name: &str, properties: Vec<Property>, http_version: &str) -> Request {
        let mut r = Request::new(context_id);
        r.view.fixed = true;
        let c = r.view.cache.get_mut();
        for (slot, v) in [(METHOD, method), (SCHEME, scheme), (AUTHORITY, authority), (PATH, path), (QUERY, query), (CLIENT, client_address), (ROUTE, route_name), (VERSION, http_version)] {
            c.text[slot] = Some(Box::from(v));
        }
        c.port = Some(client_port);
        c.all = Some(headers);
        c.properties = Some(properties);
        r
    }

    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        self.mutations
    }

    /// The exchange's context id.
    pub fn context_id(&self) -> ContextId {
        self.context_id
    }
    /// Mutations recorded so far, in order.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
    /// Method, uppercase (`GET`).
    pub fn method(&self) -> &str {
        self.view.text(METHOD, exchange::request_method)
    }
    /// `http` or `https` as seen by the client.
    pub fn scheme(&self) -> &str {
        self.view.text(SCHEME, exchange::request_scheme)
    }
    /// Host header or `:authority`.
    pub fn authority(&self) -> &str {
        self.view.text(AUTHORITY, exchange::request_authority)
    }
    /// Path without the query string, not decoded.
    pub fn path(&self) -> &str {
        self.view.text(PATH, exchange::request_path)
    }
    /// Query string without `?`; empty if none.
    pub fn query(&self) -> &str {
        self.view.text(QUERY, exchange::request_query)
    }
    /// The value of query parameter `name`, not decoded (`""` for a bare `name`); `None` if absent.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query().split('&').find_map(|p| match p.find('=') {
            Some(eq) if &p[..eq] == name => Some(&p[eq + 1..]),
            None if p == name => Some(""),
            _ => None,
        })
    }
    /// Client IP address.
    pub fn client_address(&self) -> &str {
        self.view.text(CLIENT, exchange::client_address)
    }
    /// Client TCP port.
    pub fn client_port(&self) -> u16 {
        let c = self.view.cache();
        *c.port.get_or_insert_with(|| if self.view.fixed { 0 } else { exchange::client_port() })
    }
    /// Name of the route that matched.
    pub fn route_name(&self) -> &str {
        self.view.text(ROUTE, exchange::route_name)
    }
    /// `1.0`, `1.1` or `2`.
    pub fn http_version(&self) -> &str {
        self.view.text(VERSION, exchange::http_version)
    }
    /// All headers in arrival order (one host call for the whole list).
    pub fn headers(&self) -> &[Header] {
        self.view.all()
    }
    /// First value of a header (names compare case-insensitively); `None` if absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.view.first(name)
    }
    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.view.values(name).iter().map(|v| &**v).collect()
    }
    /// Properties set so far on this request.
    pub fn properties(&self) -> &[Property] {
        self.view.properties()
    }
    /// A property's value; `None` if unset.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.view.property(key)
    }

    /// Replaces every value of a header with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.view.put_values(name, vec![Box::from(value)]);
        self.mutations.push(Mutation::SetHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Appends one header value.
    pub fn add_header(&mut self, name: &str, value: &str) {
        let mut vals = self.view.values(name).to_vec();
        vals.push(Box::from(value));
        self.view.put_values(name, vals);
        self.mutations.push(Mutation::AddHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Removes every value of a header.
    pub fn remove_header(&mut self, name: &str) {
        self.view.put_values(name, Vec::new());
        self.mutations.push(Mutation::RemoveHeader(name.to_ascii_lowercase()));
    }
    fn put_text(&mut self, slot: usize, v: &str) {
        self.view.cache.get_mut().text[slot] = Some(Box::from(v));
    }
    /// Replaces the path.
    pub fn set_path(&mut self, path: &str) {
        self.put_text(PATH, path);
        self.mutations.push(Mutation::SetPath(path.to_string()));
    }
    /// Replaces the query string (without `?`).
    pub fn set_query(&mut self, query: &str) {
        self.put_text(QUERY, query);
        self.mutations.push(Mutation::SetQuery(query.to_string()));
    }
    /// Replaces the method.
    pub fn set_method(&mut self, method: &str) {
        self.put_text(METHOD, method);
        self.mutations.push(Mutation::SetMethod(method.to_string()));
    }
    /// Replaces the authority.
    pub fn set_authority(&mut self, authority: &str) {
        self.put_text(AUTHORITY, authority);
        self.mutations.push(Mutation::SetAuthority(authority.to_string()));
    }
    /// Sends the request to another upstream of the config, by name (canary, header routing).
    pub fn set_upstream(&mut self, name: &str) {
        self.mutations.push(Mutation::SetUpstream(name.to_string()));
    }
    /// Sets a request property, visible to later filters and on-log.
    pub fn set_property(&mut self, key: &str, value: &str) {
        self.view.put_property(key, Some(value));
        self.mutations.push(Mutation::SetProperty { key: key.to_string(), value: value.to_string() });
    }
    /// Removes a request property.
    pub fn remove_property(&mut self, key: &str) {
        self.view.put_property(key, None);
        self.mutations.push(Mutation::RemoveProperty(key.to_string()));
    }
}

impl Response {
    pub(crate) fn new(context_id: ContextId) -> Response {
        Response { context_id, view: Lazy::new(Part::Response), mutations: Vec::new() }
    }

    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        self.mutations
    }

    /// The exchange's context id.
    pub fn context_id(&self) -> ContextId {
        self.context_id
    }
    /// Mutations recorded so far, in order.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        let c = self.view.cache();
        *c.status.get_or_insert_with(exchange::response_status)
    }
    /// All headers in arrival order (one host call for the whole list).
    pub fn headers(&self) -> &[Header] {
        self.view.all()
    }
    /// First value of a header; `None` if absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.view.first(name)
    }
    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.view.values(name).iter().map(|v| &**v).collect()
    }

    /// Replaces the status code.
    pub fn set_status(&mut self, status: u16) {
        self.view.cache.get_mut().status = Some(status);
        self.mutations.push(Mutation::SetStatus(status));
    }
    /// Replaces every value of a header with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.view.put_values(name, vec![Box::from(value)]);
        self.mutations.push(Mutation::SetHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Appends one header value.
    pub fn add_header(&mut self, name: &str, value: &str) {
        let mut vals = self.view.values(name).to_vec();
        vals.push(Box::from(value));
        self.view.put_values(name, vals);
        self.mutations.push(Mutation::AddHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Removes every value of a header.
    pub fn remove_header(&mut self, name: &str) {
        self.view.put_values(name, Vec::new());
        self.mutations.push(Mutation::RemoveHeader(name.to_ascii_lowercase()));
    }
    /// Sets a request property, visible to on-log.
    pub fn set_property(&mut self, key: &str, value: &str) {
        self.mutations.push(Mutation::SetProperty { key: key.to_string(), value: value.to_string() });
    }
    /// Removes a request property.
    pub fn remove_property(&mut self, key: &str) {
        self.mutations.push(Mutation::RemoveProperty(key.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::fixed(1, "GET", "http", "a", "/", "", vec![Header::new("x-a", "1"), Header::new("x-a", "2")], "::1", 1, "r", Vec::new(), "2")
    }

    #[test]
    fn setters_update_the_view_and_record_mutations() {
        let mut r = request();
        assert_eq!(r.header_values("X-A"), vec!["1", "2"]);
        r.set_query("a=1&b&c=x=y");
        assert_eq!((r.query_param("a"), r.query_param("b"), r.query_param("c"), r.query_param("d")), (Some("1"), Some(""), Some("x=y"), None));
        r.set_header("X-A", "3");
        r.add_header("x-b", "4");
        r.set_property("k", "v");
        r.remove_header("x-b");
        assert_eq!(r.header_values("x-a"), vec!["3"]);
        assert_eq!(r.header("x-b"), None);
        assert_eq!(r.property("k"), Some("v"));
        assert_eq!(r.headers().len(), 1);
        assert_eq!(
            r.into_mutations(),
            vec![
                Mutation::SetQuery("a=1&b&c=x=y".to_string()),
                Mutation::SetHeader { name: "x-a".to_string(), value: "3".to_string() },
                Mutation::AddHeader { name: "x-b".to_string(), value: "4".to_string() },
                Mutation::SetProperty { key: "k".to_string(), value: "v".to_string() },
                Mutation::RemoveHeader("x-b".to_string()),
            ]
        );
    }

    #[test]
    fn borrowed_reads_stay_valid_while_more_are_read() {
        let r = request();
        let first = r.header("x-a");
        for i in 0..100 {
            let _ = r.header(&format!("x-{i}"));
        }
        assert_eq!(first, Some("1"));
    }
}

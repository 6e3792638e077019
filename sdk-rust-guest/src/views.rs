//! Request and response views for header hooks: read the head, and change it through
//! setters that both update the view and record the WIT `mutation` the host applies.

use crate::abi::types::*;

/// The request as a hook sees it. Setters record mutations (only honoured from
/// `on_request_headers`; property setters work in every header hook).
#[derive(Debug, Clone)]
pub struct Request {
    context_id: ContextId,
    head: RequestHead,
    mutations: Vec<Mutation>,
}

/// The response head in `on_response_headers`. Setters record mutations.
#[derive(Debug, Clone)]
pub struct Response {
    context_id: ContextId,
    head: ResponseHead,
    mutations: Vec<Mutation>,
}

fn first<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

fn all<'a>(headers: &'a [Header], name: &str) -> Vec<&'a str> {
    headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str()).collect()
}

fn set(headers: &mut Vec<Header>, name: &str, value: &str) {
    headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
    headers.push(Header::new(&name.to_ascii_lowercase(), value));
}

impl Request {
    pub(crate) fn new(context_id: ContextId, head: RequestHead) -> Request {
        Request { context_id, head, mutations: Vec::new() }
    }

    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        self.mutations
    }

    /// The exchange's context id.
    pub fn context_id(&self) -> ContextId {
        self.context_id
    }
    /// The whole head, as the host sent it plus this hook's changes.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }
    /// Mutations recorded so far, in order.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
    /// Method, uppercase (`GET`).
    pub fn method(&self) -> &str {
        &self.head.method
    }
    /// `http` or `https` as seen by the client.
    pub fn scheme(&self) -> &str {
        &self.head.scheme
    }
    /// Host header or `:authority`.
    pub fn authority(&self) -> &str {
        &self.head.authority
    }
    /// Path without the query string, not decoded.
    pub fn path(&self) -> &str {
        &self.head.path
    }
    /// Query string without `?`; empty if none.
    pub fn query(&self) -> &str {
        &self.head.query
    }
    /// The value of query parameter `name`, not decoded (`""` for a bare `name`); `None` if absent.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.head.query.split('&').find_map(|p| match p.find('=') {
            Some(eq) if &p[..eq] == name => Some(&p[eq + 1..]),
            None if p == name => Some(""),
            _ => None,
        })
    }
    /// Client IP address.
    pub fn client_address(&self) -> &str {
        &self.head.client_address
    }
    /// Client TCP port.
    pub fn client_port(&self) -> u16 {
        self.head.client_port
    }
    /// Name of the route that matched.
    pub fn route_name(&self) -> &str {
        &self.head.route_name
    }
    /// `1.0`, `1.1` or `2`.
    pub fn http_version(&self) -> &str {
        &self.head.http_version
    }
    /// All headers in arrival order.
    pub fn headers(&self) -> &[Header] {
        &self.head.headers
    }
    /// First value of a header (names compare case-insensitively); `None` if absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.head.headers, name)
    }
    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        all(&self.head.headers, name)
    }
    /// Properties set so far on this request.
    pub fn properties(&self) -> &[Property] {
        &self.head.properties
    }
    /// A property's value; `None` if unset.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.head.properties.iter().find(|p| p.key == key).map(|p| p.value.as_str())
    }

    /// Replaces every value of a header with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        set(&mut self.head.headers, name, value);
        self.mutations.push(Mutation::SetHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Appends one header value.
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.head.headers.push(Header::new(&name.to_ascii_lowercase(), value));
        self.mutations.push(Mutation::AddHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Removes every value of a header.
    pub fn remove_header(&mut self, name: &str) {
        self.head.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self.mutations.push(Mutation::RemoveHeader(name.to_ascii_lowercase()));
    }
    /// Replaces the path.
    pub fn set_path(&mut self, path: &str) {
        self.head.path = path.to_string();
        self.mutations.push(Mutation::SetPath(path.to_string()));
    }
    /// Replaces the query string (without `?`).
    pub fn set_query(&mut self, query: &str) {
        self.head.query = query.to_string();
        self.mutations.push(Mutation::SetQuery(query.to_string()));
    }
    /// Replaces the method.
    pub fn set_method(&mut self, method: &str) {
        self.head.method = method.to_string();
        self.mutations.push(Mutation::SetMethod(method.to_string()));
    }
    /// Replaces the authority.
    pub fn set_authority(&mut self, authority: &str) {
        self.head.authority = authority.to_string();
        self.mutations.push(Mutation::SetAuthority(authority.to_string()));
    }
    /// Sends the request to another upstream of the config, by name (canary, header routing).
    pub fn set_upstream(&mut self, name: &str) {
        self.mutations.push(Mutation::SetUpstream(name.to_string()));
    }
    /// Sets a request property, visible to later filters and on-log.
    pub fn set_property(&mut self, key: &str, value: &str) {
        self.head.properties.retain(|p| p.key != key);
        self.head.properties.push(Property::new(key, value));
        self.mutations.push(Mutation::SetProperty { key: key.to_string(), value: value.to_string() });
    }
    /// Removes a request property.
    pub fn remove_property(&mut self, key: &str) {
        self.head.properties.retain(|p| p.key != key);
        self.mutations.push(Mutation::RemoveProperty(key.to_string()));
    }
}

impl Response {
    pub(crate) fn new(context_id: ContextId, head: ResponseHead) -> Response {
        Response { context_id, head, mutations: Vec::new() }
    }

    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        self.mutations
    }

    /// The exchange's context id.
    pub fn context_id(&self) -> ContextId {
        self.context_id
    }
    /// The whole head, as the host sent it plus this hook's changes.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }
    /// Mutations recorded so far, in order.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }
    /// All headers in arrival order.
    pub fn headers(&self) -> &[Header] {
        &self.head.headers
    }
    /// First value of a header; `None` if absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.head.headers, name)
    }
    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        all(&self.head.headers, name)
    }

    /// Replaces the status code.
    pub fn set_status(&mut self, status: u16) {
        self.head.status = status;
        self.mutations.push(Mutation::SetStatus(status));
    }
    /// Replaces every value of a header with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        set(&mut self.head.headers, name, value);
        self.mutations.push(Mutation::SetHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Appends one header value.
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.head.headers.push(Header::new(&name.to_ascii_lowercase(), value));
        self.mutations.push(Mutation::AddHeader { name: name.to_ascii_lowercase(), value: value.to_string() });
    }
    /// Removes every value of a header.
    pub fn remove_header(&mut self, name: &str) {
        self.head.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
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

    fn head() -> RequestHead {
        RequestHead {
            method: "GET".to_string(),
            scheme: "http".to_string(),
            authority: "a".to_string(),
            path: "/".to_string(),
            query: String::new(),
            headers: vec![Header::new("x-a", "1"), Header::new("x-a", "2")],
            client_address: "::1".to_string(),
            client_port: 1,
            route_name: "r".to_string(),
            properties: Vec::new(),
            http_version: "2".to_string(),
        }
    }

    #[test]
    fn setters_update_the_view_and_record_mutations() {
        let mut r = Request::new(1, head());
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
}

//! Typed access to the plugin's KDL config block. The host sends the node tree as a flat
//! list where each node names its parent (WIT has no recursive types); this rebuilds the
//! tree view: `config.get_str("header")` reads the first argument of the top-level node
//! `header`, `node.child("limit")` walks down.
//!
//! The typed getters (`get_str`, `get_i64`, …) give `None` for a node that is absent. A node
//! that is there with a value of another type also gives `None`, and records an error naming
//! the node: `configure` then fails with it (unless it returned an error of its own), so a
//! mistyped value is reported at its file:line:column instead of silently using the default.

use crate::abi::types::*;
use std::cell::RefCell;

/// The plugin's config block.
#[derive(Debug, Clone, Default)]
pub struct Config {
    nodes: Vec<ConfigNode>,
    /// The first wrong type a getter met.
    mistyped: RefCell<Option<ConfigError>>,
}

fn kind(v: Option<&ConfigValue>) -> &'static str {
    match v {
        None => "nothing",
        Some(ConfigValue::Text(_)) => "a string",
        Some(ConfigValue::Integer(_)) => "an integer",
        Some(ConfigValue::Float(_)) => "a number",
        Some(ConfigValue::Boolean(_)) => "a boolean",
        Some(ConfigValue::Null) => "null",
    }
}

/// One node of the config, borrowed from its [`Config`].
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    config: &'a Config,
    index: u32,
}

impl ConfigValue {
    /// The string, if this is `text`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ConfigValue::Text(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is `integer`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ConfigValue::Integer(i) => Some(*i),
            _ => None,
        }
    }
    /// The number, if this is `float` or `integer`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ConfigValue::Float(f) => Some(*f),
            ConfigValue::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
    /// The boolean, if this is `boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ConfigValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, ConfigValue::Null)
    }
}

impl Config {
    /// A config from the host's node list.
    pub fn new(nodes: Vec<ConfigNode>) -> Config {
        Config { nodes, mistyped: RefCell::new(None) }
    }
    /// The first mistyped value a getter met (what `configure` fails with).
    pub fn type_error(&self) -> Option<ConfigError> {
        self.mistyped.borrow().clone()
    }
    /// Reads argument 0 of `node` with `pick`; a value of another type records an error.
    fn typed<'a, T>(&self, node: Option<Node<'a>>, want: &str, pick: impl Fn(&'a ConfigValue) -> Option<T>) -> Option<T> {
        let n = node?;
        let v = n.arg(0);
        let got = v.and_then(pick);
        if got.is_none() {
            let mut slot = self.mistyped.borrow_mut();
            if slot.is_none() {
                // Worded like the AssemblyScript SDK's, so both report alike.
                *slot = Some(n.error(&match v {
                    None => format!("`{}` needs a value", n.name()),
                    Some(_) => format!("`{}` must be {}, not {}", n.name(), want, kind(v)),
                }));
            }
        }
        got
    }
    /// Every node, in document order (the raw WIT list).
    pub fn nodes(&self) -> &[ConfigNode] {
        &self.nodes
    }
    /// Whether the block has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// The node at an index of [`nodes`](Config::nodes).
    pub fn node_at(&self, index: u32) -> Option<Node<'_>> {
        if (index as usize) < self.nodes.len() {
            Some(Node { config: self, index })
        } else {
            None
        }
    }
    fn children_of(&self, parent: Option<u32>) -> Vec<Node<'_>> {
        (0..self.nodes.len() as u32).filter(|&i| self.nodes[i as usize].parent == parent).map(|index| Node { config: self, index }).collect()
    }
    /// Top-level nodes, in order.
    pub fn top(&self) -> Vec<Node<'_>> {
        self.children_of(None)
    }
    /// The first top-level node with this name.
    pub fn get(&self, name: &str) -> Option<Node<'_>> {
        self.top().into_iter().find(|n| n.name() == name)
    }
    /// Every top-level node with this name (repeated nodes).
    pub fn get_all(&self, name: &str) -> Vec<Node<'_>> {
        self.top().into_iter().filter(|n| n.name() == name).collect()
    }
    /// First argument of the top-level node `name`, if it is a string (another type is an error).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.typed(self.get(name), "a string", |v| v.as_str())
    }
    /// First argument of the top-level node `name`, if it is an integer (another type is an error).
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.typed(self.get(name), "an integer", |v| v.as_i64())
    }
    /// First argument of the top-level node `name`, if it is a number (another type is an error).
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.typed(self.get(name), "a number", |v| v.as_f64())
    }
    /// First argument of the top-level node `name`, if it is a boolean (another type is an error).
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.typed(self.get(name), "a boolean", |v| v.as_bool())
    }
    /// Like [`get_str`](Config::get_str), with an error naming the node when missing or mistyped.
    pub fn require_str(&self, name: &str) -> Result<&str, ConfigError> {
        match self.get(name) {
            None => Err(ConfigError::new(&format!("missing `{}`", name))),
            Some(n) => n.arg(0).and_then(|v| v.as_str()).ok_or_else(|| n.error(&format!("`{}` needs a string argument", name))),
        }
    }
    /// Like [`get_i64`](Config::get_i64), with an error when missing or mistyped.
    pub fn require_i64(&self, name: &str) -> Result<i64, ConfigError> {
        match self.get(name) {
            None => Err(ConfigError::new(&format!("missing `{}`", name))),
            Some(n) => n.arg(0).and_then(|v| v.as_i64()).ok_or_else(|| n.error(&format!("`{}` needs an integer argument", name))),
        }
    }
}

impl<'a> Node<'a> {
    fn raw(&self) -> &'a ConfigNode {
        &self.config.nodes[self.index as usize]
    }
    /// Index in the host's list; what [`ConfigError::node`] refers to.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// Node name.
    pub fn name(&self) -> &'a str {
        &self.raw().name
    }
    /// The parent node; `None` at the top level.
    pub fn parent(&self) -> Option<Node<'a>> {
        self.raw().parent.and_then(|p| self.config.node_at(p))
    }
    /// Positional arguments.
    pub fn args(&self) -> &'a [ConfigValue] {
        &self.raw().args
    }
    /// The `i`th argument.
    pub fn arg(&self, i: usize) -> Option<&'a ConfigValue> {
        self.raw().args.get(i)
    }
    /// Properties (`name=value`) in source order.
    pub fn props(&self) -> &'a [ConfigProp] {
        &self.raw().props
    }
    /// A property's value.
    pub fn prop(&self, name: &str) -> Option<&'a ConfigValue> {
        self.raw().props.iter().find(|p| p.name == name).map(|p| &p.value)
    }
    /// Child nodes, in order.
    pub fn children(&self) -> Vec<Node<'a>> {
        self.config.children_of(Some(self.index))
    }
    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        self.children().into_iter().find(|n| n.name() == name)
    }
    /// First argument of the child `name`, if it is a string (another type is an error).
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.config.typed(self.child(name), "a string", |v| v.as_str())
    }
    /// First argument of the child `name`, if it is an integer (another type is an error).
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.config.typed(self.child(name), "an integer", |v| v.as_i64())
    }
    /// First argument of the child `name`, if it is a number (another type is an error).
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.config.typed(self.child(name), "a number", |v| v.as_f64())
    }
    /// First argument of the child `name`, if it is a boolean (another type is an error).
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.config.typed(self.child(name), "a boolean", |v| v.as_bool())
    }
    /// A config error blamed on this node (the host reports its file:line:column).
    pub fn error(&self, message: &str) -> ConfigError {
        ConfigError { message: message.to_string(), node: Some(self.index) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, parent: Option<u32>, args: Vec<ConfigValue>) -> ConfigNode {
        ConfigNode { name: name.to_string(), parent, args, props: Vec::new() }
    }

    #[test]
    fn typed_access_and_tree() {
        let mut header = node("header", None, vec![ConfigValue::Text("x-a".to_string())]);
        header.props.push(ConfigProp { name: "mode".to_string(), value: ConfigValue::Text("strict".to_string()) });
        let config = Config::new(vec![
            header,
            node("limit", None, vec![ConfigValue::Integer(3)]),
            node("rule", None, vec![]),
            node("path", Some(2), vec![ConfigValue::Text("/a".to_string())]),
            node("rule", None, vec![]),
            node("on", Some(4), vec![ConfigValue::Boolean(false)]),
        ]);
        assert_eq!(config.get_str("header"), Some("x-a"));
        assert_eq!(config.get("header").and_then(|n| n.prop("mode")).and_then(|v| v.as_str()), Some("strict"));
        assert_eq!(config.get_i64("limit"), Some(3));
        assert_eq!(config.get_f64("limit"), Some(3.0));
        assert_eq!(config.get_bool("missing"), None);
        assert_eq!(config.type_error(), None);
        assert_eq!(config.get_str("limit"), None);
        assert_eq!(config.type_error(), Some(ConfigError { message: "`limit` must be a string, not an integer".to_string(), node: Some(1) }));
        assert_eq!(config.get_str("header"), Some("x-a"));
        assert_eq!(config.type_error().map(|e| e.node), Some(Some(1)));
        let rules = config.get_all("rule");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].get_str("path"), Some("/a"));
        assert_eq!(rules[1].get_bool("on"), Some(false));
        assert_eq!(rules[1].children()[0].parent().map(|p| p.index()), Some(4));
        assert_eq!(config.top().len(), 4);
        assert_eq!(config.require_str("limit").unwrap_err(), ConfigError { message: "`limit` needs a string argument".to_string(), node: Some(1) });
        assert_eq!(config.require_i64("nope").unwrap_err().node, None);
    }
}

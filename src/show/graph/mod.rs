//! `graph`: the gathered topology as a picture. A scene (clusters, nodes,
//! edges) is built once and written as Graphviz dot or as a Mermaid
//! flowchart; SVG is dot piped through Graphviz.
//!
//! Namespaces are clusters. Bridges are nodes. A namespace's own IP stack is
//! a node when something attaches to it (a veth end that is not a bridge
//! port, a route, NAT). veth pairs are edges labelled at each end with the
//! interface name and its addresses. Routes with a gateway are dotted arrows
//! to whoever holds the gateway address; NAT is a note beside its namespace.

mod dot;
mod mermaid;
mod scene;
pub mod sites;

pub use dot::{dot, svg, svg_of};
pub use mermaid::mermaid;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot render SVG: Graphviz's `dot` is not installed")]
    NoGraphviz,
    #[error("Graphviz `dot -Tsvg` failed: {0}")]
    Dot(String),
}

impl GraphError {
    pub fn help(&self) -> Option<&'static str> {
        match self {
            GraphError::NoGraphviz => Some(
                "install Graphviz (apt-get install graphviz, dnf install graphviz, brew install graphviz), \
                 or use --format dot or --format mermaid",
            ),
            GraphError::Dot(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dot::{dot_id, html};
    use super::mermaid::mm_text;

    #[test]
    fn quoting() {
        assert_eq!(dot_id("a\"b"), "\"a\\\"b\"");
        assert_eq!(html("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(mm_text("a \"b\"\nc"), "a #quot;b#quot;<br/>c");
    }
}

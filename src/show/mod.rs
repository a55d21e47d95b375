//! `netplumb show`, `graph` and `ping-all` as a library: read a topology
//! back through the `Kernel` trait (gather.rs into view.rs), then present it
//! as a table, JSON, a picture or a reachability matrix. The commands
//! (cmd/show.rs) and the REPL's `:show` call in here with a kernel of their
//! choosing: the real one, or the recording fake in unit tests.

pub mod gather;
pub mod graph;
pub mod json;
mod mappings;
pub mod pingall;
pub mod table;
#[cfg(test)]
mod tests;
pub mod view;
mod wanted;

use crate::kernel::Kernel;
use crate::ledger::{self, Entry as Owned};
pub use gather::GatherError;
use view::TopologyView;

/// The picture `netplumb graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Svg,
    Mermaid,
}

/// The ledgers of the named topology, or of every topology.
pub fn records(name: Option<&str>) -> Result<Vec<(String, Vec<Owned>)>, GatherError> {
    let known = ledger::list_topologies()?;
    let names = match name {
        None => known,
        Some(n) if known.iter().any(|k| k == n) => vec![n.to_string()],
        Some(n) => {
            return Err(GatherError::NoTopology {
                name: n.to_string(),
                known,
            });
        }
    };
    names
        .into_iter()
        .map(|n| {
            let e = ledger::read_entries(&n)?;
            Ok((n, e))
        })
        .collect()
}

/// The named topology (or every one), as `k` has it now.
pub fn views(k: &mut dyn Kernel, name: Option<&str>) -> Result<Vec<TopologyView>, GatherError> {
    let recs = records(name)?;
    gather::gather(k, &recs)
}

/// The table for one topology (or all): what the REPL's `:show` prints.
pub fn show_text(k: &mut dyn Kernel, name: Option<&str>) -> Result<String, GatherError> {
    Ok(table::render(&views(k, name)?))
}

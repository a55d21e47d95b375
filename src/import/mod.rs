//! `netplumb import`: the live kernel read back into a `.rhai` script that
//! rebuilds it with the ordinary DSL. read.rs asks the `Kernel` trait;
//! structure.rs finds the shape (hubs, leaves, who declares each veth);
//! repeat.rs turns repeated leaves and mappings into loops; render.rs and
//! nat.rs write the text. What the DSL cannot say becomes a comment.

mod nat;
mod read;
mod render;
mod repeat;
mod structure;

pub use read::Selection;

use crate::kernel::{Kernel, KernelError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot {what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: KernelError,
    },
}

impl ImportError {
    fn kernel(what: &str) -> impl Fn(KernelError) -> ImportError + '_ {
        move |source| ImportError::Kernel {
            what: what.to_string(),
            source,
        }
    }
}

/// The script for what `sel` picks out of the kernel.
pub fn import(k: &mut dyn Kernel, sel: &Selection) -> Result<String, ImportError> {
    let live = read::read(k, sel)?;
    let shape = structure::analyse(&live);
    Ok(render::render(&live, &shape))
}

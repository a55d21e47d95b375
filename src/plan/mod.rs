//! Ops, their rendering as shell commands, and the diff that turns a desired
//! topology plus what the kernel has into the ops still needed.

mod diff;
mod op;
mod render;

pub use diff::{Applied, DiffError, Step, diff};
pub use op::{LinkChange, Op, VethWith};
pub use render::render;

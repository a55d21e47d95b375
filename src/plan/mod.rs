//! The planner: the diff that turns a desired topology, what the topology
//! owns and what the kernel has into the ops still needed; the intent keys
//! that tell an edit from a repair; ops rendered as shell commands.

mod diff;
mod intent;
mod render;

pub use diff::{DiffError, NatPrints, Step, diff};
pub use intent::{Intent, add_namespaces, intent, intent_given};
pub use render::{render, shell_quote};

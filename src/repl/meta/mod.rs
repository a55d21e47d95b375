//! What the meta commands print: `:help` (from the engine's registry),
//! `:show` (the session's model) and the script `:save` writes.

mod help;
mod save;
mod show;

pub use help::{FnIndex, UserFn, help_all, help_one};
pub use save::{SavedInput, script};
pub use show::show;

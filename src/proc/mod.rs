//! Processes inside namespaces: commands run like `ip netns exec` (with the
//! namespace's /etc/netns files), and long-lived daemons that outlive the
//! run that started them — recorded before they exec, identified by pid and
//! start time, contained in a cgroup v2 where one can be made, stopped with
//! their whole tree, and waited for until ready.
//!
//! Self-contained: nothing here knows about scripts, plans or the ledger.
//! The caller keeps the [`Identity`] a start hands out (write-ahead, before
//! [`Pending::release`] lets the process exec) and gives it back to
//! [`stop`].

// The daemon object kind that uses most of this is wired in by the core;
// until then only `exec` reaches it outside tests.
#![allow(dead_code, unused_imports)]

pub mod argv;
pub mod etcns;
pub mod identity;
pub mod nsexec;

pub use argv::{Argv, ArgvError, split_words};
pub use etcns::{EtcError, EtcFile};
pub use identity::{Identity, Liveness};
pub use nsexec::{NsTarget, exit_code, ns_command, run_foreground};

//! Declared per-namespace files: `ns.file("/etc/hosts", text)`, kept as
//! /etc/netns/NS/hosts and seen as /etc/hosts inside the namespace (the
//! iproute2 convention `ip netns exec` follows).

use super::{DeclError, Pos, Topology};
use crate::model::NsName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDecl {
    pub ns: NsName,
    /// /etc/NAME, checked by the script adapter.
    pub path: String,
    pub content: String,
    pub pos: Pos,
}

impl Topology {
    pub fn files(&self) -> &[FileDecl] {
        &self.files
    }

    /// Declare a file; declaring the same file again replaces its content
    /// (the last call wins, like `up()` after `down()`).
    pub fn add_file(&mut self, f: FileDecl) -> Result<(), DeclError> {
        if !self.has_ns(&f.ns) {
            return Err(DeclError::UndeclaredNs { ns: f.ns });
        }
        if let Some(o) = self
            .files
            .iter_mut()
            .find(|o| o.ns == f.ns && o.path == f.path)
        {
            *o = f;
        } else {
            if self.limit > 0 && self.size() as u64 >= self.limit {
                return Err(DeclError::TooMany { limit: self.limit });
            }
            self.files.push(f);
        }
        self.revision += 1;
        Ok(())
    }
}

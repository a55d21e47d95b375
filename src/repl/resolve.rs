//! The REPL's module resolver: netplumb's own (beside the script, then the
//! bundled stdlib), with a cache. Imports are re-run in front of every later
//! input (see `mod.rs`); the cache makes that free and keeps a module's
//! top-level code from running twice.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position};

use crate::script::{Resolver, SharedSources};

/// Modules as Rhai shares them (`rhai::Shared` is `Arc` with `sync`).
pub type SharedModule = Arc<Module>;
pub type Cache = Arc<Mutex<HashMap<String, SharedModule>>>;
pub type SharedDir = Arc<Mutex<Option<PathBuf>>>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves consistent data: go on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct CachingResolver {
    /// Where modules are looked for: the session script's directory, or
    /// the directory of the file `:load` is running.
    pub dir: SharedDir,
    pub sources: SharedSources,
    pub cache: Cache,
}

impl ModuleResolver for CachingResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if let Some(m) = lock(&self.cache).get(path) {
            return Ok(m.clone());
        }
        // Not holding the cache lock: the module may import others.
        let dir = lock(&self.dir).clone();
        let m = Resolver::new(dir, self.sources.clone()).resolve(engine, source, path, pos)?;
        lock(&self.cache).insert(path.to_string(), m.clone());
        Ok(m)
    }
}

//! `import "x" as x;` looks beside the script first, then in the stdlib
//! bundled in the binary: a file next to the script overrides a bundled one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Engine, EvalAltResult, Module, Position, Scope};

type SharedModule = Arc<Module>;

use super::SharedSources;

/// Bundled modules: (name, source).
pub const STDLIB: &[(&str, &str)] = &[
    ("docker", include_str!("../../stdlib/docker.rhai")),
    ("portmap", include_str!("../../stdlib/portmap.rhai")),
    ("lab", include_str!("../../stdlib/lab.rhai")),
];

pub struct Resolver {
    dir: Option<PathBuf>,
    sources: SharedSources,
    /// Modules being loaded, outermost first: an import of one of them is
    /// circular and would recurse until the stack overflows.
    loading: Mutex<Vec<String>>,
}

impl Resolver {
    pub fn new(dir: Option<PathBuf>, sources: SharedSources) -> Self {
        Self {
            dir,
            sources,
            loading: Mutex::default(),
        }
    }

    /// The file is the main script itself (`scripts/docker.rhai` importing
    /// "docker"): a script never imports itself, the bundled module is meant.
    fn is_main_script(&self, f: &Path) -> bool {
        let main = self
            .sources
            .lock()
            .ok()
            .and_then(|s| s.texts.get("").cloned());
        match (main, std::fs::read_to_string(f)) {
            (Some(m), Ok(t)) => m == t,
            _ => false,
        }
    }

    fn loading(&self) -> MutexGuard<'_, Vec<String>> {
        // A panic while loading leaves the list as it was; go on.
        self.loading.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let file = self.dir.as_ref().map(|d| d.join(format!("{path}.rhai")));
        let beside = file
            .as_ref()
            .filter(|f| f.is_file() && !self.is_main_script(f));
        let (name, text) = match beside {
            Some(f) => match std::fs::read_to_string(f) {
                Ok(t) => (f.display().to_string(), t),
                Err(e) => {
                    return Err(Box::new(EvalAltResult::ErrorRuntime(
                        format!("cannot read module {}: {e}", f.display()).into(),
                        pos,
                    )));
                }
            },
            None => match STDLIB.iter().find(|(n, _)| *n == path) {
                Some((n, t)) => (format!("stdlib/{n}.rhai"), t.to_string()),
                None => {
                    return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                        path.to_string(),
                        pos,
                    )));
                }
            },
        };
        {
            let mut loading = self.loading();
            if loading.contains(&name) {
                let chain = format!("{} -> {name}", loading.join(" -> "));
                return Err(Box::new(EvalAltResult::ErrorRuntime(
                    format!("circular import: {chain}").into(),
                    pos,
                )));
            }
            loading.push(name.clone());
        }
        let m = self.load(engine, &name, &text, pos);
        self.loading().retain(|n| *n != name);
        m
    }
}

impl Resolver {
    fn load(
        &self,
        engine: &Engine,
        name: &str,
        text: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let name = name.to_string();
        if let Ok(mut s) = self.sources.lock() {
            s.texts.insert(name.clone(), text.to_string());
        }
        let mut ast = engine.compile(text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                name.clone(),
                Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)),
                pos,
            ))
        })?;
        ast.set_source(name.as_str());
        let m = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos)))?;
        Ok(m.into())
    }
}

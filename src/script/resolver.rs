//! `import "x" as x;` looks beside the script first, then in the stdlib
//! bundled in the binary: a file next to the script overrides a bundled one.
//! A script read from a bundle (`up -`) finds its modules in the bundle
//! instead of beside it.

use std::collections::HashMap;
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
    /// The modules of a bundle, by path relative to the script: then the
    /// script's directory is not looked at.
    bundle: Option<HashMap<String, String>>,
}

impl Resolver {
    pub fn new(dir: Option<PathBuf>, sources: SharedSources) -> Self {
        Self {
            dir,
            sources,
            loading: Mutex::default(),
            bundle: None,
        }
    }

    /// Modules from a bundle (`up -`) instead of the script's directory.
    pub fn with_bundle(mut self, modules: HashMap<String, String>) -> Self {
        self.bundle = Some(modules);
        self
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

/// An import's file, relative to the script's directory: `./x` is `x`, so
/// that a bundle names it as the directory does.
fn module_key(path: &str) -> String {
    let file = format!("{path}.rhai");
    let p = Path::new(&file);
    if p.is_absolute() {
        return file;
    }
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let key = module_key(path);
        let file = self.dir.as_ref().map(|d| d.join(&key));
        let beside = file
            .as_ref()
            .filter(|f| self.bundle.is_none() && f.is_file() && !self.is_main_script(f));
        let bundled = self.bundle.as_ref().and_then(|b| b.get(&key));
        let (name, text) = match (beside, bundled) {
            (_, Some(t)) => (key, t.clone()),
            (Some(f), None) => match std::fs::read_to_string(f) {
                Ok(t) => {
                    // What `up --all-sites` sends along with the script.
                    if let Ok(mut s) = self.sources.lock()
                        && !s.modules.iter().any(|(k, _)| *k == key)
                    {
                        s.modules.push((key, t.clone()));
                    }
                    (f.display().to_string(), t)
                }
                Err(e) => {
                    return Err(Box::new(EvalAltResult::ErrorRuntime(
                        format!("cannot read module {}: {e}", f.display()).into(),
                        pos,
                    )));
                }
            },
            (None, None) => match STDLIB.iter().find(|(n, _)| *n == path) {
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

//! `import "x" as x;` looks beside the script first, then in the stdlib
//! bundled in the binary: a file next to the script overrides a bundled one.

use std::path::PathBuf;

use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Module, Position, Scope};

type SharedModule = Arc<Module>;

use super::SharedSources;

/// Bundled modules: (name, source).
pub const STDLIB: &[(&str, &str)] = &[];

pub struct Resolver {
    dir: Option<PathBuf>,
    sources: SharedSources,
}

impl Resolver {
    pub fn new(dir: Option<PathBuf>, sources: SharedSources) -> Self {
        Self { dir, sources }
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
        let (name, text) = match file.as_ref().filter(|f| f.is_file()) {
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
        if let Ok(mut s) = self.sources.lock() {
            s.texts.insert(name.clone(), text.clone());
        }
        let mut ast = engine.compile(&text).map_err(|e| {
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

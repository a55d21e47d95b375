//! One input of the session: compiled, run, converged and committed, or
//! undone whole (kernel changes, model, variables, module cache) when it
//! fails or is interrupted.

use super::*;

impl Repl {
    /// Compile, run, converge and commit one input; on any failure undo it
    /// whole.
    pub(super) fn statement(&mut self, name: &str, text: &str, file: Option<&str>) {
        self.register_source(name, text);
        let mut ast = match self
            .session
            .engine
            .compile_with_scope(&self.session.scope, text)
        {
            Ok(a) => a,
            Err(e) => {
                let e: Box<EvalAltResult> = e.into();
                self.fail(diag::script_error(&self.session, &e));
                return;
            }
        };
        ast.set_source(name);
        // Module calls mark their line, for errors that name the caller.
        let ast = crate::script::instrument(&self.session.engine, &ast);
        let run_ast = if self.imports.is_empty() {
            ast.clone()
        } else {
            AST::new_with_source(
                self.imports
                    .iter()
                    .cloned()
                    .chain(ast.statements().iter().cloned()),
                ast.shared_lib().clone(),
                name,
            )
        };

        let (model, done) = {
            let mut r = self.session.runner();
            r.failed = None;
            (r.checkpoint(), r.done.len())
        };
        let before = Before {
            model,
            done,
            scope: self.session.scope.clone(),
            modules: resolve::lock(&self.modules).keys().cloned().collect(),
        };

        signal::begin();
        let result = {
            let Session { engine, scope, .. } = &mut self.session;
            catch_unwind(AssertUnwindSafe(|| {
                engine.eval_ast_with_scope::<Dynamic>(scope, &run_ast)
            }))
        };
        let outcome = self.settle(result);
        signal::end();

        match outcome {
            Ok(value) => {
                let committed = self.session.runner().commit();
                if let Err(e) = committed {
                    // The changes are made; only the record's compaction failed.
                    eprintln!("{:?}", diag::plain(e.to_string(), None));
                }
                self.keep(&ast, text, file);
                if !value.is_unit() {
                    say!("=> {}", self.show_value(value));
                }
                self.refresh_known();
            }
            Err((report, touched)) => {
                self.fail(report);
                self.undo(before, touched);
            }
        }
    }

    /// Turn the run's result into success, or a report and whether the
    /// kernel may have been changed.
    pub(super) fn settle(
        &mut self,
        result: std::thread::Result<Result<Dynamic, Box<EvalAltResult>>>,
    ) -> Result<Dynamic, (Report, bool)> {
        let interactive = self.interactive;
        let interrupted = || {
            if interactive {
                // The terminal echoed ^C where the cursor was.
                eprintln!();
            }
            diag::plain(
                "interrupted: the statement was stopped and its changes rolled back",
                None,
            )
        };
        let value = match result {
            Err(_) => {
                return Err((
                    diag::plain(
                        "internal error: the statement panicked; its changes were rolled back",
                        Some("please report this with the statement that caused it"),
                    ),
                    true,
                ));
            }
            // What exec()/ping() applied before is counted in `done`.
            Ok(Err(_)) if signal::interrupted() => return Err((interrupted(), false)),
            Ok(Err(e)) => {
                let failed = self.session.runner().failed.take();
                return Err(match failed {
                    Some(f) => {
                        let touched = matches!(f, RunError::Apply { .. });
                        (diag::run_error(&self.session, &f), touched)
                    }
                    None => (diag::script_error(&self.session, &e), false),
                });
            }
            Ok(Ok(v)) => v,
        };
        // A kernel refusal inside exec()/ping() that the script caught.
        let failed = self.session.runner().failed.take();
        if let Some(f) = failed {
            return Err((diag::run_error(&self.session, &f), true));
        }
        let flushed = self.session.runner().flush();
        if let Err(e) = flushed {
            let touched = matches!(e, RunError::Apply { .. });
            return Err((diag::run_error(&self.session, &e), touched));
        }
        // Ctrl-C while the changes were being applied: undo them too.
        if signal::interrupted() {
            return Err((interrupted(), false));
        }
        Ok(value)
    }

    pub(super) fn fail(&mut self, report: Report) {
        self.failures += 1;
        eprintln!("{report:?}");
    }

    /// Put everything back as it was before the failed statement.
    pub(super) fn undo(&mut self, before: Before, touched: bool) {
        let mut r = self.session.runner();
        let applied = r.done.len().saturating_sub(before.done);
        let errs = r.rollback();
        r.restore(before.model);
        r.failed = None;
        if !errs.is_empty() {
            eprintln!(
                "{:?}",
                diag::plain(
                    format!(
                        "rolling back failed too:\n  {}",
                        crate::run::describe_teardown(&errs).replace('\n', "\n  ")
                    ),
                    Some("`:down` removes what the session built, whatever is left"),
                )
            );
        }
        // A failed step may have replaced something an earlier statement
        // made (a NAT table is replaced whole): converge back to the model
        // as it was, which changes nothing when nothing was lost. `touched`
        // covers a step that failed half-way; `applied` what went through.
        if touched || applied > 0 {
            match r.flush() {
                Ok(_) => {
                    if let Err(e) = r.commit() {
                        eprintln!("{:?}", diag::plain(e.to_string(), None));
                    }
                }
                Err(e) => {
                    let msg = format!("cannot restore the state before the statement: {e}");
                    let _ = r.rollback();
                    eprintln!("{:?}", diag::plain(msg, Some("check with :show and `ip`")));
                }
            }
        }
        drop(r);
        if applied > 0 {
            let s = if applied == 1 { "" } else { "s" };
            eprintln!("rolled back {applied} change{s} the statement had made");
        }
        self.session.scope = before.scope;
        resolve::lock(&self.modules).retain(|k, _| before.modules.contains(k));
    }

    /// A successful input: keep its functions, imports and text.
    pub(super) fn keep(&mut self, ast: &AST, text: &str, file: Option<&str>) {
        let source = ast.source().unwrap_or("").to_string();
        if ast.has_functions() {
            self.session
                .engine
                .register_global_module(ast.shared_lib().clone());
            for f in ast.iter_functions() {
                let key = (f.name.to_string(), f.params.len());
                self.user_fns.insert(
                    key,
                    UserFn {
                        signature: format!("{}({})", f.name, f.params.join(", ")),
                        doc: f.comments.join("\n"),
                        source: source.clone(),
                    },
                );
            }
        }
        let mut defs_only = true;
        for s in ast.statements() {
            match s {
                Stmt::Import(x, _) => {
                    // `import "m";` (no alias) only runs the module: nothing
                    // to keep. A new `as m` replaces an older one.
                    let alias = &x.1.name;
                    if !alias.is_empty() {
                        self.imports
                            .retain(|i| !matches!(i, Stmt::Import(y, _) if y.1.name == *alias));
                        self.imports.push(s.clone());
                    }
                }
                _ => defs_only = false,
            }
        }
        self.log.push(Entry {
            text: text.to_string(),
            file: file.map(str::to_string),
            defs_only,
        });
    }

    pub(super) fn show_value(&self, v: Dynamic) -> String {
        let mut scope = Scope::new();
        scope.push_dynamic("value", v.clone());
        self.session
            .engine
            .eval_with_scope::<String>(&mut scope, "to_debug(value)")
            .unwrap_or_else(|_| format!("{v:?}"))
    }
}

pub(super) struct Before {
    model: Checkpoint,
    done: usize,
    scope: Scope<'static>,
    modules: Vec<String>,
}

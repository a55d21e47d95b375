//! The meta commands (`:help`, `:plan`, `:show`, `:save`, `:load`,
//! `:down`) and what completion offers.

use super::*;

impl Repl {
    /// What completion offers: functions, variables, names in the model.
    pub(super) fn refresh_known(&mut self) {
        // Only the line editor's completion reads it: piped statements
        // would rebuild it for nobody (a list of every namespace and link,
        // each statement).
        if !self.interactive {
            return;
        }
        let mut functions: Vec<String> = self.index.callable().map(|(n, _)| n.clone()).collect();
        functions.extend(self.user_fns.keys().map(|(n, _)| n.clone()));
        functions.retain(|f| !f.starts_with("anon$"));
        functions.sort();
        functions.dedup();
        let params = self
            .index
            .functions
            .keys()
            .filter_map(|n| self.index.param_hint(n).map(|h| (n.clone(), h)))
            .collect();
        let variables = self
            .session
            .scope
            .iter()
            .map(|(n, _, _)| n.to_string())
            .collect();
        let (links, namespaces) = {
            let r = self.session.runner();
            (
                r.topo.links().map(|(_, l)| l.name.to_string()).collect(),
                r.topo
                    .namespaces()
                    .iter()
                    .map(|n| n.name.to_string())
                    .collect(),
            )
        };
        *resolve::lock(&self.known) = Known {
            functions,
            properties: self.index.properties.keys().cloned().collect(),
            variables,
            links,
            namespaces,
            params,
        };
    }

    // ---- meta commands -----------------------------------------------------

    pub(super) fn meta(&mut self, line: &str) -> Flow {
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match cmd {
            ":help" | ":h" => {
                if arg.is_empty() {
                    crate::out::write(&meta::help_all(&self.index, &self.user_fns));
                } else {
                    // Script functions first, then bundled modules (`:help docker`).
                    let module_doc = || crate::doc::help_text(&self.index.core, Some(arg)).ok();
                    match meta::help_one(&self.index, &self.user_fns, arg).or_else(module_doc) {
                        Some(h) => crate::out::write(&h),
                        None => self.fail(diag::plain(
                            format!("no function or command named '{arg}'"),
                            Some(":help lists them all"),
                        )),
                    }
                }
            }
            ":plan" => {
                let r = self.session.runner();
                if r.done.is_empty() {
                    say!("# the session has changed nothing yet");
                }
                for s in &r.done {
                    for l in plan::render(&s.op) {
                        say!("{l}");
                    }
                }
            }
            ":show" => {
                // The same read-back as `netplumb show`; before anything is
                // built there is nothing to read, so show the declared model.
                let mut r = self.session.runner();
                let name = r.name.clone();
                let text = crate::show::show_text(r.kernel(), Some(&name));
                drop(r);
                match text {
                    Ok(t) => crate::out::write(&t),
                    Err(_) => crate::out::write(&meta::show(&self.session.runner().topo)),
                }
            }
            ":save" => self.save(arg),
            ":load" => {
                if arg.is_empty() {
                    self.fail(diag::plain(":load needs a file: `:load FILE.rhai`", None));
                } else {
                    self.load(Path::new(arg));
                }
            }
            ":down" => self.down(),
            ":quit" | ":q" | ":exit" => return Flow::Quit,
            other => self.fail(diag::plain(
                format!("unknown command {other}"),
                Some("commands: :help :plan :show :save :load :down :quit"),
            )),
        }
        Flow::Go
    }

    pub(super) fn save(&mut self, arg: &str) {
        if arg.is_empty() {
            self.fail(diag::plain(":save needs a file: `:save FILE.rhai`", None));
            return;
        }
        let inputs: Vec<meta::SavedInput> = self
            .log
            .iter()
            .map(|e| meta::SavedInput {
                text: &e.text,
                file: e.file.as_deref(),
            })
            .collect();
        let name = self.session.runner().name.clone();
        let script = meta::script(&name, &self.params, &inputs);
        match std::fs::write(arg, &script) {
            Ok(()) => {
                if self.interactive {
                    say!(
                        "saved {} statements to {arg}: `netplumb up {arg}` rebuilds them",
                        inputs.len()
                    );
                }
            }
            Err(e) => self.fail(diag::plain(format!("cannot write {arg}: {e}"), None)),
        }
    }

    /// Remove what the topology owns and start afresh: an empty model and
    /// no variables (their handles would point at removed objects);
    /// functions and imports stay.
    pub(super) fn down(&mut self) {
        let mut r = self.session.runner();
        let owned: Vec<Owned> = r.owned().to_vec();
        let res = r.down();
        r.reset_model();
        let quiet = r.quiet;
        drop(r);
        match res {
            Ok(n) => {
                if !quiet {
                    // Like teardown: what is inside a removed namespace goes with it.
                    let doomed: Vec<NsRef> = owned
                        .iter()
                        .filter_map(|o| match o {
                            Owned::Netns { ns, .. } => Some(NsRef::Named(ns.clone())),
                            _ => None,
                        })
                        .collect();
                    for o in owned.iter().rev() {
                        if !o.ns().is_some_and(|n| doomed.contains(n)) {
                            for op in o.undo_ops() {
                                say!("{}", op.summary());
                            }
                        }
                    }
                    if n == 0 {
                        say!("nothing to remove");
                    }
                }
            }
            Err(e) => self.fail(diag::plain(
                e.to_string(),
                Some("what could be removed was; :down again after fixing the cause"),
            )),
        }
        let mut scope = Scope::new();
        for (k, v) in &self.params {
            scope.push_constant_dynamic(k.clone(), param_value(v));
        }
        self.session.scope = scope;
        self.log.retain(|e| e.defs_only);
        self.refresh_known();
        if self.interactive {
            say!("the session starts afresh: variables are gone, functions and imports stay");
        }
    }
}

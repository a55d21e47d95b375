//! Each script function is registered once, here, with its metadata: the
//! parameter names and types, the return type and a doc comment with a rhai
//! example (Rhai's `FuncRegistration`, as rhai's own packages do). Everything
//! that describes a function — `netplumb doc`, docs/dsl.md, the REPL's
//! `:help` and completion, the type names in error messages — reads it back
//! from the engine's metadata ([`registered`], [`entries`]), so none of
//! them is kept by hand.
//!
//! Adding a function: register it through [`Reg`] (`reg.func`,
//! `reg.method`, `reg.getter`) under the docs/dsl.md section it belongs
//! to, with a doc comment that describes it and ends in a rhai example;
//! then `UPDATE_GOLDEN=1 cargo test --bin netplumb dsl_md` writes its entry
//! into docs/dsl.md. `netplumb doc --check` and the unit tests fail on a
//! function registered around [`Reg`], without a doc comment or example,
//! or whose docs/dsl.md entry differs.

use std::collections::HashMap;

use rhai::{Engine, FuncMetadata, FuncRegistration, RhaiNativeFunc, Variant};

/// What was registered through [`Reg`], in order: the reference's
/// section of each function (its heading in docs/dsl.md), by the engine's
/// hash of the function.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    listed: Vec<(&'static str, u64)>,
}

impl Registry {
    /// The section a registered function belongs to, if it went through [`Reg`].
    pub fn section_of(&self, hash: u64) -> Option<&'static str> {
        self.listed
            .iter()
            .find(|(_, h)| *h == hash)
            .map(|(s, _)| *s)
    }
}

/// Registers functions into an engine and records them in a [`Registry`].
pub struct Reg<'a> {
    engine: &'a mut Engine,
    registry: &'a mut Registry,
    section: &'static str,
}

/// One function about to be registered: [`Pending::set`] gives it its body.
#[must_use = "a function is registered by `.set(closure)`"]
pub struct Pending<'r, 'a> {
    reg: &'r mut Reg<'a>,
    fr: FuncRegistration,
}

/// `doc` as Rhai doc comments: one block of `///` lines.
fn comments(doc: &str) -> String {
    doc.trim()
        .lines()
        .map(|l| {
            if l.is_empty() {
                "///".to_string()
            } else {
                format!("/// {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl<'a> Reg<'a> {
    pub fn new(engine: &'a mut Engine, registry: &'a mut Registry) -> Self {
        Self {
            engine,
            registry,
            section: "Utilities",
        }
    }

    /// The engine, for what is not a function (types, callbacks).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// The docs/dsl.md section (`## ` heading) of the functions that follow.
    pub fn section(&mut self, title: &'static str) -> &mut Self {
        self.section = title;
        self
    }

    fn pending(&mut self, name: String, info: Vec<String>, doc: &str) -> Pending<'_, 'a> {
        let fr = FuncRegistration::new(name)
            .with_params_info(info)
            .with_comments([comments(doc)]);
        Pending { reg: self, fr }
    }

    /// A function: `params` are "name: type" (script type names: string,
    /// int, float, bool, map, array, Netns, Link, Counter), `ret` the type
    /// it gives ("()" for none), `doc` markdown ending in a rhai example.
    pub fn func(&mut self, name: &str, params: &[&str], ret: &str, doc: &str) -> Pending<'_, 'a> {
        let mut info: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        info.push(ret.to_string());
        self.pending(name.to_string(), info, doc)
    }

    /// A method: called on `this` ("ns: Netns"), as `ns.name(params)`.
    pub fn method(
        &mut self,
        name: &str,
        this: &str,
        params: &[&str],
        ret: &str,
        doc: &str,
    ) -> Pending<'_, 'a> {
        let mut info = vec![receiver(this)];
        info.extend(params.iter().map(|p| p.to_string()));
        info.push(ret.to_string());
        self.pending(name.to_string(), info, doc)
    }

    /// A property getter: `this.prop`.
    pub fn getter(&mut self, prop: &str, this: &str, ret: &str, doc: &str) -> Pending<'_, 'a> {
        let info = vec![receiver(this), ret.to_string()];
        self.pending(format!("get${prop}"), info, doc)
    }
}

/// "ns: Netns" → "ns: &mut Netns": the mark of a receiver in the metadata.
fn receiver(this: &str) -> String {
    match this.split_once(':') {
        Some((n, t)) => format!("{}: &mut {}", n.trim(), t.trim()),
        None => format!("_: &mut {this}"),
    }
}

impl Pending<'_, '_> {
    /// Register the function with its body, under the current section.
    pub fn set<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(self, f: FUNC)
    where
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        let Pending { reg, fr } = self;
        let hash = fr.register_into_engine(reg.engine, f).hash;
        reg.registry.listed.push((reg.section, hash));
    }
}

/// A parameter: its name and script type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: String,
}

fn param(info: &str) -> Param {
    let (n, t) = info.split_once(':').unwrap_or(("_", info));
    Param {
        name: n.trim().to_string(),
        ty: t.trim().trim_start_matches("&mut ").to_string(),
    }
}

/// One registered form of a function, read back from the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The function (or property) name.
    pub name: String,
    /// The receiver of a method or property.
    pub this: Option<Param>,
    pub params: Vec<Param>,
    /// The script type it returns; "()" for none.
    pub ret: String,
    pub property: bool,
}

impl Form {
    pub fn from_metadata(m: &FuncMetadata) -> Self {
        let (name, property) = match m.name.strip_prefix("get$") {
            Some(p) => (p.to_string(), true),
            None => (m.name.to_string(), false),
        };
        let mut params: Vec<Param> = m.params_info.iter().map(|p| param(p)).collect();
        let this = match m.params_info.first() {
            Some(p) if p.contains("&mut ") => Some(params.remove(0)),
            _ => None,
        };
        let ret = match m.return_type.as_str() {
            "" => "()".to_string(),
            r => r.to_string(),
        };
        Self {
            name,
            this,
            params,
            ret,
            property,
        }
    }

    /// As a script writes it, with parameter names: `ns.veth(name, peer)`.
    pub fn usage(&self) -> String {
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        match (&self.this, self.property) {
            (Some(t), true) => format!("{}.{}", t.name, self.name),
            (Some(t), false) => format!("{}.{}({})", t.name, self.name, names.join(", ")),
            (None, _) => format!("{}({})", self.name, names.join(", ")),
        }
    }

    /// With types: `Netns.veth(string, string) -> Link`.
    pub fn typed(&self) -> String {
        let types: Vec<&str> = self.params.iter().map(|p| p.ty.as_str()).collect();
        let call = match (&self.this, self.property) {
            (Some(t), true) => format!("{}.{}", t.ty, self.name),
            (Some(t), false) => format!("{}.{}({})", t.ty, self.name, types.join(", ")),
            (None, _) => format!("{}({})", self.name, types.join(", ")),
        };
        if self.ret == "()" {
            call
        } else {
            format!("{call} -> {}", self.ret)
        }
    }
}

/// The doc comment of a function as markdown (the `///` leaders removed).
pub fn doc_text(m: &FuncMetadata) -> String {
    let mut out = Vec::new();
    for block in &m.comments {
        for l in block.lines() {
            let l = l.trim_start();
            let body = l
                .strip_prefix("///")
                .or_else(|| l.strip_prefix("/**"))
                .unwrap_or(l);
            out.push(
                body.strip_prefix(' ')
                    .unwrap_or(body)
                    .trim_end_matches("*/"),
            );
        }
    }
    out.join("\n").trim().to_string()
}

/// A function registered by netplumb, as the engine's metadata has it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub hash: u64,
    /// None when it was registered around [`Reg`] (with `register_fn`).
    pub section: Option<&'static str>,
    pub form: Form,
    pub doc: String,
}

/// Every function netplumb registers in the engine (Rhai's standard
/// packages left out), in registration order; those registered around
/// [`Reg`] last.
pub fn registered(engine: &Engine, registry: &Registry) -> Vec<Registered> {
    let all: Vec<FuncMetadata> =
        engine.collect_fn_metadata(None, |info| Some(info.metadata.clone()), false);
    let mut out: Vec<Registered> = all
        .iter()
        .filter(|m| m.name.starts_with("get$") || !m.name.contains('$'))
        .filter(|m| !m.name.starts_with("anon$"))
        .map(|m| Registered {
            hash: m.hash,
            section: registry.section_of(m.hash),
            form: Form::from_metadata(m),
            doc: doc_text(m),
        })
        .collect();
    let order: HashMap<u64, usize> = registry
        .listed
        .iter()
        .enumerate()
        .map(|(i, (_, h))| (*h, i))
        .collect();
    out.sort_by_key(|r| {
        (
            order.get(&r.hash).copied().unwrap_or(usize::MAX),
            r.form.name.clone(),
        )
    });
    out
}

/// One reference entry: the forms sharing one doc comment (overloads
/// such as `masquerade(cidr)` / `ns.masquerade(cidr)`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub section: &'static str,
    pub forms: Vec<Form>,
    pub doc: String,
}

impl Entry {
    /// "`veth(name, peer)` → Link", the forms deduplicated.
    pub fn heading(&self) -> String {
        let mut usages: Vec<String> = Vec::new();
        for f in &self.forms {
            let u = f.usage();
            if !usages.contains(&u) {
                usages.push(u);
            }
        }
        let spans: Vec<String> = usages.iter().map(|u| format!("`{u}`")).collect();
        let ret = self.forms.first().map_or("()", |f| f.ret.as_str());
        format!("{} → {ret}", spans.join(" / "))
    }

    /// The names the entry documents.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.forms {
            if !out.contains(&f.name) {
                out.push(f.name.clone());
            }
        }
        out
    }
}

/// The registered functions grouped into entries: forms with the same doc
/// comment make one entry, at the place of the first.
pub fn entries(engine: &Engine, registry: &Registry) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for r in registered(engine, registry) {
        let section = r.section.unwrap_or("Unlisted");
        match out
            .iter_mut()
            .find(|e| !r.doc.is_empty() && e.doc == r.doc && e.section == section)
        {
            Some(e) => e.forms.push(r.form),
            None => out.push(Entry {
                section,
                forms: vec![r.form],
                doc: r.doc,
            }),
        }
    }
    out
}

/// What is missing from a registered function's metadata: a description
/// and a rhai example each.
pub fn problems(engine: &Engine, registry: &Registry) -> Vec<String> {
    let mut out = Vec::new();
    for r in registered(engine, registry) {
        let what = r.form.typed();
        if r.section.is_none() {
            out.push(format!(
                "{what} is registered without its metadata (use script::registry::Reg)"
            ));
        }
        let example = r.doc.find("```rhai");
        let described = r
            .doc
            .split("```")
            .next()
            .is_some_and(|d| !d.trim().is_empty());
        if !described {
            out.push(format!("{what} has no doc comment"));
        }
        if example.is_none() {
            out.push(format!("{what} has no rhai example in its doc comment"));
        }
    }
    out
}

/// Script type names for Rust ones in Rhai's messages (`i64` → `int`,
/// `&str | ImmutableString | String` → `string`); registered types
/// (Netns, Link, Counter) by the names they were registered with.
pub fn plain_types(engine: &Engine, text: &str) -> String {
    let text = text.replace("&str | ImmutableString | String", "string");
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            out.push_str(&script_type(engine, word));
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One Rust type name as scripts call it.
pub fn script_type(engine: &Engine, t: &str) -> String {
    let mapped = engine.map_type_name(t);
    let short = mapped.rsplit("::").next().unwrap_or(mapped);
    match short {
        "str" | "String" | "ImmutableString" => "string",
        "i64" | "INT" => "int",
        "f64" | "FLOAT" => "float",
        "Map" => "map",
        "Array" => "array",
        _ if mapped != t => mapped,
        _ => t,
    }
    .to_string()
}

#[cfg(test)]
mod tests;

//! Where the user's script called into a module, without Rhai's debugger.
//!
//! A declaration made inside a module function (the bundled stdlib, say)
//! also names the line of the user's script that called into the module, so
//! that a kernel refusal at apply time can point there. Rhai keeps a call
//! stack only with a registered debugger, and a registered debugger clones
//! the arguments of every native call (`a.push(x)` copies all of `a`).
//!
//! Instead, the compiled AST of the user's script is rewritten once
//! ([`instrument`]): every namespaced call `m::f(args)` becomes a node that
//! pushes (line, "f") on the session's stack, evaluates the call unchanged
//! and pops again (also on error). Function bodies and closures of the
//! user's script are rewritten the same way, so a call from a top-level
//! statement, a loop body, a user function or a closure the module calls
//! back all push their own line. A native function running in module code
//! reads the innermost entry ([`caller`]). Module code itself is never
//! rewritten: a module calling another module still reports the user's line.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{
    AST, ASTNode, CustomExpr, Dynamic, Engine, Expr, FnCallExpr, ImmutableString, LexError, Module,
    NativeCallContext, ParseError, ParseErrorType, Position, Stmt, StmtBlock,
};

/// The node around a namespaced call. Not a token the tokenizer can make,
/// so only [`instrument`] creates these nodes.
const CALL: &str = "np$call";
/// The one-node body of a rewritten function: it evaluates the rewritten
/// block (Rhai offers no way to build a function body from statements).
const BODY: &str = "__netplumb_fn_body__";

/// The call a node stands for.
#[derive(Clone)]
struct Site {
    line: usize,
    func: Arc<str>,
}

/// A rewritten function body, and the source it was written in.
#[derive(Clone)]
struct Body {
    block: Arc<Expr>,
    source: Option<ImmutableString>,
}

struct Frame {
    line: usize,
    func: Arc<str>,
    /// The source the call was made from ("" for the main script).
    source: Option<ImmutableString>,
}

/// The stack of calls from the user's script into modules now running.
#[derive(Clone, Default)]
struct CallSites(Arc<Mutex<Vec<Frame>>>);

impl CallSites {
    fn frames(&self) -> MutexGuard<'_, Vec<Frame>> {
        // A panic while holding the lock leaves a consistent vector; go on.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Pops its frame when the call ends, whichever way it ends.
struct Pushed<'a>(&'a CallSites);

impl Drop for Pushed<'_> {
    fn drop(&mut self) {
        self.0.frames().pop();
    }
}

thread_local! {
    /// The body the next parse of [`BODY`] takes (see `function_body`).
    static PENDING: RefCell<Option<Dynamic>> = const { RefCell::new(None) };
}

/// Register the call-site machinery on a session's engine. Its stack lives
/// in the engine's default tag, so every run (and every module the run
/// loads) of this engine shares it, and no other session's.
pub(crate) fn register(engine: &mut Engine) {
    let sites = CallSites::default();
    engine.set_default_tag(Dynamic::from(sites.clone()));
    engine.register_custom_syntax_with_state_raw(
        CALL,
        |_, _, _| Ok(None),
        false,
        move |ctx, inputs, state| {
            let Some(call) = inputs.first() else {
                return Ok(Dynamic::UNIT);
            };
            let Some(site) = state.read_lock::<Site>().map(|s| s.clone()) else {
                return ctx.eval_expression_tree(call);
            };
            sites.frames().push(Frame {
                line: site.line,
                func: site.func,
                source: ctx.global_runtime_state().source.clone(),
            });
            let _pop = Pushed(&sites);
            ctx.eval_expression_tree(call)
        },
    );
    engine.register_custom_syntax_with_state_raw(
        BODY,
        |_, _, state| match PENDING.with(|p| p.borrow_mut().take()) {
            Some(body) => {
                *state = body;
                Ok(None)
            }
            None => Err(ParseError(
                Box::new(ParseErrorType::BadInput(LexError::ImproperSymbol(
                    BODY.to_string(),
                    format!("'{BODY}' is reserved by netplumb"),
                ))),
                Position::NONE,
            )),
        },
        false,
        |ctx, _, state| {
            let Some(body) = state.read_lock::<Body>().map(|b| b.clone()) else {
                return Ok(Dynamic::UNIT);
            };
            // A closure the user's script hands to a module runs under the
            // module's source; its own calls are the user's script's.
            let outer = std::mem::replace(ctx.source_mut(), body.source);
            let r = ctx.eval_expression_tree(&(&*body.block).into());
            *ctx.source_mut() = outer;
            r
        },
    );
}

/// For a native function called from module code (`source` is the module):
/// the innermost line of the user's script that called into a module, and
/// the module function it called. `None` at a module's top level (import
/// time), and when the innermost call was made from `source` itself.
pub(crate) fn caller(ctx: &NativeCallContext, source: &str) -> Option<(usize, Arc<str>)> {
    let tag = ctx.tag()?;
    let sites = tag.read_lock::<CallSites>()?;
    let frames = sites.frames();
    let f = frames.last()?;
    (f.source.as_deref().unwrap_or("") != source).then(|| (f.line, f.func.clone()))
}

/// Rewrite a compiled script of the user's (the main script, a REPL input)
/// so that its calls into modules record their line; see the module doc.
/// The AST must come from `engine` (a session's), which runs it, and have
/// its source name set already: function bodies run under that name.
pub fn instrument(engine: &Engine, ast: &AST) -> AST {
    let mut statements = ast.statements().to_vec();
    statements.iter_mut().for_each(stmt);
    let mut lib = Module::new();
    for (.., def) in ast.shared_lib().iter_script_fn_info() {
        let mut def = (**def).clone();
        rewrite_body(engine, &mut def, ast.source());
        lib.set_script_fn(def);
    }
    let mut out = AST::new(statements, lib);
    if let Some(s) = ast.source() {
        out.set_source(s);
    }
    out
}

/// Give `def` a body that runs its rewritten statements under `source`.
/// Every function is rewritten, not only those calling modules: any of
/// them may be a closure that module code calls back.
fn rewrite_body(engine: &Engine, def: &mut rhai::ScriptFuncDef, source: Option<&str>) {
    // Rhai exposes a body's statements only through a walk of an AST.
    let mut one = Module::new();
    one.set_script_fn(def.clone());
    let mut statements = Vec::new();
    AST::new([], one).walk(&mut |path: &[ASTNode]| {
        if let [ASTNode::Stmt(s)] = path {
            statements.push((*s).clone());
        }
        true
    });
    statements.iter_mut().for_each(stmt);
    let block = StmtBlock::new(
        statements,
        def.body.start_position(),
        def.body.end_position(),
    );
    let body = Dynamic::from(Body {
        block: Arc::new(Expr::Stmt(Box::new(block))),
        source: source.map(ImmutableString::from),
    });
    PENDING.with(|p| *p.borrow_mut() = Some(body));
    let template = engine.compile(format!("fn f() {{ {BODY} }}"));
    PENDING.with(|p| p.borrow_mut().take());
    // The template cannot fail to compile on a session's engine; if it
    // did, the function would only lose its call sites.
    if let Ok(template) = template
        && let Some((.., t)) = template.shared_lib().iter_script_fn_info().next()
    {
        def.body = t.body.clone();
    }
}

/// The node that records the call `call` (a namespaced `FnCall`) around it.
fn wrap(call: Expr) -> Expr {
    let Expr::FnCall(x, pos) = &call else {
        return call;
    };
    let site = Site {
        line: pos.line().unwrap_or(0),
        func: Arc::from(x.name.as_str()),
    };
    let pos = *pos;
    Expr::Custom(
        Box::new(CustomExpr {
            inputs: [call].into_iter().collect(),
            tokens: [ImmutableString::from(CALL)].into_iter().collect(),
            state: Dynamic::from(site),
            scope_may_be_changed: false,
            self_terminated: false,
        }),
        pos,
    )
}

fn block(b: &mut StmtBlock) {
    b.as_mut().iter_mut().for_each(stmt);
}

fn args(x: &mut FnCallExpr) {
    x.args.iter_mut().for_each(expr);
}

fn stmt(s: &mut Stmt) {
    match s {
        Stmt::If(x, _) | Stmt::While(x, _) | Stmt::Do(x, ..) | Stmt::TryCatch(x, _) => {
            expr(&mut x.expr);
            block(&mut x.body);
            block(&mut x.branch);
        }
        Stmt::Switch(x, _) => {
            expr(&mut x.0);
            for case in x.1.expressions.iter_mut() {
                expr(&mut case.lhs);
                expr(&mut case.rhs);
            }
        }
        Stmt::For(x, _) => {
            expr(&mut x.2.expr);
            block(&mut x.2.body);
            block(&mut x.2.branch);
        }
        Stmt::Var(x, ..) => expr(&mut x.1),
        Stmt::Assignment(x) => {
            // The target stays a target: only what it contains changes.
            children(&mut x.1.lhs);
            expr(&mut x.1.rhs);
        }
        Stmt::FnCall(x, _) => args(x),
        Stmt::Block(b) => block(b),
        Stmt::Expr(e) => expr(e),
        Stmt::BreakLoop(Some(e), ..) | Stmt::Return(Some(e), ..) => expr(e),
        Stmt::Import(x, _) => expr(&mut x.0),
        _ => {}
    }
    if matches!(s, Stmt::FnCall(x, _) if x.is_qualified())
        && let Stmt::FnCall(x, pos) = std::mem::take(s)
    {
        *s = Stmt::Expr(Box::new(wrap(Expr::FnCall(x, pos))));
    }
}

fn expr(e: &mut Expr) {
    children(e);
    if matches!(e, Expr::FnCall(x, _) if x.is_qualified()) {
        let call = std::mem::take(e);
        *e = wrap(call);
    }
}

fn children(e: &mut Expr) {
    match e {
        Expr::InterpolatedString(v, _) | Expr::Array(v, _) => {
            v.iter_mut().for_each(expr);
        }
        Expr::Map(m, _) => m.0.iter_mut().for_each(|(_, e)| expr(e)),
        Expr::MethodCall(x, _) | Expr::FnCall(x, _) => args(x),
        Expr::Stmt(b) => block(b),
        Expr::Dot(x, ..) | Expr::Index(x, ..) => {
            expr(&mut x.lhs);
            expr(&mut x.rhs);
        }
        Expr::And(v, _) | Expr::Or(v, _) | Expr::Coalesce(v, _) => {
            v.iter_mut().for_each(expr);
        }
        Expr::Custom(c, _) => c.inputs.iter_mut().for_each(expr),
        _ => {}
    }
}

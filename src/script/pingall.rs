//! `ping_all()`: the running topology's reachability matrix, as script data.
//!
//! ```rhai
//! let r = ping_all();
//! print(r.matrix);
//! if !r.ok { for f in r.failures { print(`${f.from} cannot reach ${f.to}`); } }
//! ```

use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

use super::registry::Reg;
use super::{SharedRunner, fail, lock};
use crate::model::NsRef;
use crate::show::{gather, pingall};

type R<T> = Result<T, Box<EvalAltResult>>;

fn label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

fn result_map(m: &pingall::Matrix) -> Map {
    let mut results = Array::new();
    let mut failures = Array::new();
    let mut reached: i64 = 0;
    for (s, row) in m.cells.iter().enumerate() {
        for (t, c) in row.iter().enumerate() {
            let tg = &m.targets[t];
            let mut e = Map::new();
            e.insert("from".into(), label(&m.sources[s]).into());
            e.insert("to".into(), tg.addr.to_string().into());
            e.insert("netns".into(), label(&tg.ns).into());
            e.insert("dev".into(), tg.dev.clone().into());
            e.insert("reached".into(), c.reached.into());
            e.insert("expected".into(), c.expected.into());
            if c.reached {
                reached += 1;
            }
            if c.failed() {
                failures.push(Dynamic::from_map(e.clone()));
            }
            results.push(Dynamic::from_map(e));
        }
    }
    let mut out = Map::new();
    out.insert("ok".into(), m.ok().into());
    out.insert("total".into(), (results.len() as i64).into());
    out.insert("reached".into(), reached.into());
    out.insert("failures".into(), failures.into());
    out.insert("results".into(), results.into());
    out.insert("matrix".into(), m.render().into());
    out
}

fn not_pinged() -> Map {
    let mut out = Map::new();
    out.insert("ok".into(), true.into());
    out.insert("total".into(), 0_i64.into());
    out.insert("reached".into(), 0_i64.into());
    out.insert("failures".into(), Array::new().into());
    out.insert("results".into(), Array::new().into());
    out.insert(
        "matrix".into(),
        "ping_all: nothing pinged (plan does not touch the kernel)\n".into(),
    );
    out
}

fn ping_all(ctx: &NativeCallContext, rn: &SharedRunner) -> R<Map> {
    let mut r = lock(rn);
    // Ping what the script has built so far: converge first. A failure is
    // kept in the runner so the edge reports it at the op's own line.
    if let Err(e) = r.flush() {
        let msg = e.to_string();
        r.failed = Some(e);
        return Err(fail(ctx, msg));
    }
    let (name, owned) = (r.name.clone(), r.owned().to_vec());
    let views = gather::gather(r.kernel(), &[(name, owned)]).map_err(|e| fail(ctx, e))?;
    let Some(view) = views.first() else {
        return Err(fail(ctx, "ping_all: the topology could not be read back"));
    };
    let m = pingall::run(r.kernel(), view);
    if m.not_run {
        // The recording kernel sends no packets: it says so, and so do we.
        r.note_not_run("ping_all()".to_string());
        return Ok(not_pinged());
    }
    Ok(result_map(&m))
}

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Inside the topology: exec and ping");
    let rn = runner.clone();
    reg.func(
        "ping_all",
        &[],
        "map",
        r#"Converge what is declared so far, then ping every address of the
topology from every one of its namespaces, in parallel (what `netplumb
ping-all` shows). Returns `#{ ok, total, reached, failures, results,
matrix }`: `ok` is true when every pair that should reach (the source has
an address on the target's subnet, or a route covering it) does;
`failures` and `results` are arrays of `#{ from, to, netns, dev, reached,
expected }`; `matrix` is the printable table. In `plan` nothing is pinged:
`ok` is true and the arrays are empty.

Errors: converging fails; the topology cannot be read back.

```rhai
let r = ping_all();
if !r.ok { for f in r.failures { print(`${f.from} cannot reach ${f.to}`); } }
```"#,
    )
    .set(move |ctx: NativeCallContext| -> R<Map> { ping_all(&ctx, &rn) });
}

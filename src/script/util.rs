//! Utilities for scripts and the bundled stdlib: a shared counter (Rhai
//! maps are copied by value, a counter handle is shared) and `read_file`
//! for mapping tables kept beside the script.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rhai::{EvalAltResult, ImmutableString, NativeCallContext};

use super::fail;
use super::registry::Reg;

type R<T> = Result<T, Box<EvalAltResult>>;

#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicI64>);

impl Counter {
    fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
    fn value(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A prefix as numbers: (address bits of the network, prefix length, width).
fn read_file(ctx: &NativeCallContext, dir: Option<&Path>, path: &str) -> R<String> {
    let p = Path::new(path);
    let full = match dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p.to_path_buf(),
    };
    std::fs::read_to_string(&full).map_err(|e| {
        let hint = if p.is_relative() {
            " (relative paths are read from the script's directory)"
        } else {
            ""
        };
        fail(ctx, format!("cannot read {}: {e}{hint}", full.display()))
    })
}

pub fn register(reg: &mut Reg, script_dir: Option<PathBuf>) {
    reg.engine().register_type_with_name::<Counter>("Counter");
    reg.section("Utilities");
    reg.func(
        "counter",
        &["start: int"],
        "Counter",
        r#"An integer counter that starts at `start`. Maps are copied when passed
around; a counter inside a map is not — every copy counts on the same
number. The `docker` module hands out container addresses with one.

```rhai
let ids = counter(2);
let net = #{ ids: ids };
```"#,
    )
    .set(|start: i64| Counter(Arc::new(AtomicI64::new(start))));
    reg.method(
        "next",
        "counter: Counter",
        &[],
        "int",
        r#"The counter's value, then add one.

```rhai
let a = ids.next();   // 2
let b = ids.next();   // 3
```"#,
    )
    .set(|c: &mut Counter| c.next());
    reg.getter(
        "value",
        "counter: Counter",
        "int",
        r#"The counter's value (the next `next()` returns it).

```rhai
print(ids.value);     // 4
```"#,
    )
    .set(|c: &mut Counter| c.value());
    reg.func(
        "read_file",
        &["path: string"],
        "string",
        r#"The text of a file; a relative `path` is read from the script's directory
(from the current directory in the REPL). For mapping tables and the like
kept beside the script.

Errors: the file cannot be read (the message gives the full path).

```rhai
let table = read_file("ports.csv");
```"#,
    )
    .set(move |ctx: NativeCallContext, path: &str| -> R<String> {
        read_file(&ctx, script_dir.as_deref(), path)
    });
    reg.func("to_string", &["value: Counter"], "string", super::TO_STRING)
        .set(|c: &mut Counter| format!("counter {}", c.value()));
    reg.func("to_debug", &["value: Counter"], "string", super::TO_STRING)
        .set(|c: &mut Counter| format!("counter {}", c.value()));
    // Rhai's own to_string for a number writes it through the generic
    // Dynamic printer and then looks the text up among the type names: 5 %
    // of an `up` of 100,000 `dnat()` calls whose addresses are string
    // templates. Same text.
    reg.func(
        "to_string",
        &["value: int"],
        "string",
        r#"A number in decimal, as `print` and string templates write it.

```rhai
let i = 7;
let addr = `10.0.${i}.1`;   // "10.0.7.1"
print(i.to_string());       // 7
```"#,
    )
    .set(|n: &mut i64| -> ImmutableString { super::limits::signed_decimal(*n).as_str().into() });
}

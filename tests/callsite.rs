//! A kernel refusal of something a module declared names the line of the
//! user's script that called into the module, wherever that call is: a
//! top-level statement, another call's argument, a user function, a closure
//! the module calls back. A device named `taken` already exists in each
//! sandbox, so a veth of that name is refused at apply time.

mod common;

use common::{Sandbox, text};

const MODULE: &str = "\
fn mk(name) {
    let ns = netns(name + \"ns\");
    veth(name, ns, \"eth0\")
}
fn each(n, f) {
    for i in 0..n { f.call(i); }
    mk(\"later\")
}
fn via(name) { mk(name) }
fn pair(a, b) { a }
";

/// `up` of `body` (with `import "m" as m;` on line 1) beside the module;
/// the error text.
fn refusal(sb: &Sandbox, name: &str, body: &str) -> String {
    sb.script("m.rhai", MODULE);
    let s = sb.script(name, &format!("import \"m\" as m;\n{body}"));
    let o = sb.netplumb(&["up", &s]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("it is not this veth pair"), "{err}");
    assert_eq!(sb.ok("ip netns list"), "", "rolled back");
    err.replace(&format!("{}/", sb.dir.path().display()), "")
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ip link add taken type bridge && ip link add later type bridge");
    sb
}

#[test]
fn the_line_of_the_call_into_the_module_wherever_it_is() {
    let sb = sandbox();
    let cases = [
        (
            "top.rhai",
            "let x = 1;\nm::mk(\"taken\");\n",
            "top.rhai:3 (mk)",
        ),
        (
            "nested.rhai",
            "m::pair(\n    m::mk(\"ok\"),\n    m::mk(\"taken\"));\n",
            "nested.rhai:4 (mk)",
        ),
        (
            "function.rhai",
            "fn add(x) {\n    let y = x;\n    m::mk(y)\n}\nadd(\"taken\");\n",
            "function.rhai:4 (mk)",
        ),
        (
            "loop.rhai",
            "for i in 0..3 {\n    if i == 2 {\n        m::mk(\"taken\");\n    } else { m::mk(`ok${i}`); }\n}\n",
            "loop.rhai:4 (mk)",
        ),
        // A module function calling another: still the user's line.
        ("inner.rhai", "\nm::via(\"taken\");\n", "inner.rhai:3 (via)"),
        // A closure the module calls back: the closure's own call.
        (
            "closure.rhai",
            "m::each(1, |i| {\n    m::mk(\"taken\");\n});\n",
            "closure.rhai:3 (mk)",
        ),
    ];
    for (name, body, want) in cases {
        let err = refusal(&sb, name, body);
        assert!(err.contains("has taken"), "{name}:\n{err}");
        assert!(
            err.contains(&format!("called from {want}")),
            "{name}:\n{err}"
        );
        assert!(err.contains("at m.rhai:3:5"), "{name}:\n{err}");
    }
}

#[test]
fn after_a_callback_the_module_names_its_own_caller_again() {
    let sb = sandbox();
    // `each` declares `later` after running the closure, which called `mk`.
    let err = refusal(
        &sb,
        "after.rhai",
        "\nm::each(2, |i| {\n    m::mk(`ok${i}`);\n});\n",
    );
    assert!(err.contains("has later"), "{err}");
    assert!(err.contains("called from after.rhai:3 (each)"), "{err}");
}

#[test]
fn a_declaration_in_a_called_back_closure_points_into_the_users_script() {
    let sb = sandbox();
    let err = refusal(
        &sb,
        "cb.rhai",
        "m::each(1, |i| {\n    let x = 1;\n    veth(\"taken\", \"zz\");\n});\n",
    );
    // The closure's line in the user's script, not the module at that line.
    assert!(err.contains("has taken"), "{err}");
    assert!(err.contains("at cb.rhai:4:5"), "{err}");
    assert!(!err.contains("called from"), "{err}");
}

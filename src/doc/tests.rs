use super::*;
use rhai::FuncRegistration;

fn entries() -> Vec<Entry> {
    core_entries().unwrap()
}

#[test]
fn every_registered_function_is_documented_and_nothing_else() {
    let session = plan_engine().unwrap();
    let problems = check(&session).unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dsl_md_is_generated_from_the_registry() {
    // UPDATE_GOLDEN=1 rewrites docs/dsl.md's core entries from the registry.
    let session = plan_engine().unwrap();
    let page = markdown::generate(DSL, &session_entries(&session));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dsl.md");
        std::fs::write(path, &page).unwrap();
        return;
    }
    assert!(
        page == DSL,
        "docs/dsl.md is not what the registry generates: UPDATE_GOLDEN=1 cargo test --bin netplumb dsl_md"
    );
}

#[test]
fn removing_a_doc_comment_is_caught() {
    let mut session = plan_engine().unwrap();
    // netns registered again under the same signature, without its doc
    // comment: what deleting the comment at its registration does.
    FuncRegistration::new("netns")
        .with_params_info(["name: string", "Netns"])
        .register_into_engine(&mut session.engine, |_: &str| 0_i64);
    let problems = check(&session).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p == "netns(string) -> Netns has no doc comment"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("docs/dsl.md's entries differ")),
        "{problems:?}"
    );
}

#[test]
fn a_function_without_an_example_is_caught() {
    let mut session = plan_engine().unwrap();
    let mut reg = registry::Reg::new(&mut session.engine, &mut session.registry);
    reg.section("Utilities");
    reg.func("frobnicate", &[], "int", "Frobnicates, with no example.")
        .set(|| 1_i64);
    let problems = check(&session).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p == "frobnicate() -> int has no rhai example in its doc comment"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`frobnicate()` → int is registered")),
        "{problems:?}"
    );
}

#[test]
fn a_function_registered_around_the_registry_is_caught() {
    let mut session = plan_engine().unwrap();
    session.engine.register_fn("frobnicate", || 1_i64);
    let problems = check(&session).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("frobnicate(") && p.contains("without its metadata")),
        "{problems:?}"
    );
    // A new overload of a documented name is caught too.
    let mut session = plan_engine().unwrap();
    session.engine.register_fn("netns", |_: &str, _: i64| 1_i64);
    let problems = check(&session).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("netns(") && p.contains("without its metadata")),
        "{problems:?}"
    );
}

#[test]
fn entries_name_methods_getters_and_overloads() {
    let titles: Vec<String> = entries().into_iter().map(|e| e.title).collect();
    for t in [
        "netns(name) → Netns",
        "host() → Netns",
        "link.peer → Link",
        "bridge.attach(port) → Link",
        "counter.next() → int",
        "masquerade(cidr) / ns.masquerade(cidr) → ()",
        "to_string(value) / to_debug(value) → string",
        "ns.sysctl(key, value) → ()",
        "cidr_cover(cidr, len, from, to) → array",
        "ping_all() → map",
        "read_file(path) → string",
    ] {
        assert!(titles.iter().any(|x| x == t), "{t} missing from {titles:?}");
    }
}

#[test]
fn help_topics() {
    let core = entries();
    assert!(help_text(&core, None).unwrap().contains("portmap"));
    assert!(
        help_text(&core, Some("core"))
            .unwrap()
            .contains("netns(name) → Netns")
    );
    let v = help_text(&core, Some("veth")).unwrap();
    assert!(v.contains("veth(name, ns, peer)"), "{v}");
    let p = help_text(&core, Some("docker::publish")).unwrap();
    assert!(p.contains("docker::publish(c, host_port, port)"), "{p}");
    assert!(help_text(&core, Some("nope")).is_err());
}

#[test]
fn doc_and_the_page_say_the_same_for_every_function() {
    let session = plan_engine().unwrap();
    let entries = session_entries(&session);
    let core: Vec<Entry> = entries.iter().map(Entry::from).collect();
    for (e, j) in entries.iter().zip(&core) {
        let in_page = format!("### {}\n\n{}\n", e.heading(), e.doc);
        assert!(DSL.contains(&in_page), "docs/dsl.md lacks\n{in_page}");
        for name in e.names() {
            let help = help_text(&core, Some(&name)).unwrap();
            assert!(
                help.contains(render_entry(j).trim_end()),
                "doc {name} lacks {}:\n{help}",
                j.title
            );
        }
    }
}

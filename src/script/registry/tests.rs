use super::*;

fn engine() -> (Engine, Registry) {
    let mut e = Engine::new();
    let mut r = Registry::default();
    let mut reg = Reg::new(&mut e, &mut r);
    reg.engine().register_type_with_name::<u8>("Thing");
    reg.section("Things");
    reg.func(
        "make",
        &["name: string", "n: int"],
        "Thing",
        "Makes.\n\n```rhai\nmake(\"a\", 1)\n```",
    )
    .set(|_: &str, _: i64| 1_u8);
    reg.method(
        "poke",
        "t: Thing",
        &["how: map"],
        "()",
        "Pokes.\n\n```rhai\nt.poke(#{})\n```",
    )
    .set(|_: &mut u8, _: rhai::Map| ());
    reg.getter(
        "size",
        "t: Thing",
        "int",
        "Its size.\n\n```rhai\nt.size\n```",
    )
    .set(|_: &mut u8| 3_i64);
    (e, r)
}

#[test]
fn forms_read_back_from_the_metadata() {
    let (e, r) = engine();
    let got: Vec<(String, String, Option<&str>)> = registered(&e, &r)
        .into_iter()
        .map(|x| (x.form.usage(), x.form.typed(), x.section))
        .collect();
    assert_eq!(
        got,
        [
            (
                "make(name, n)".into(),
                "make(string, int) -> Thing".into(),
                Some("Things")
            ),
            (
                "t.poke(how)".into(),
                "Thing.poke(map)".into(),
                Some("Things")
            ),
            ("t.size".into(), "Thing.size -> int".into(), Some("Things")),
        ]
    );
    assert!(problems(&e, &r).is_empty(), "{:?}", problems(&e, &r));
}

#[test]
fn the_doc_comment_comes_back_as_markdown() {
    let (e, r) = engine();
    let all = entries(&e, &r);
    assert_eq!(all[0].heading(), "`make(name, n)` → Thing");
    assert_eq!(all[0].doc, "Makes.\n\n```rhai\nmake(\"a\", 1)\n```");
}

#[test]
fn type_names_in_messages_are_the_scripts() {
    let (e, _) = engine();
    assert_eq!(
        plain_types(&e, "vet (&str | ImmutableString | String, i64, u8)"),
        "vet (string, int, Thing)"
    );
}

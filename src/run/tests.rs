//! Plan/apply logic against the recording fake: no root, no kernel.

use super::*;
use crate::kernel::Recorder;
use crate::ledger::{Entry, World};
use crate::model::NsName;
use crate::plan::diff;
use crate::script::Session;

const SEED: &str = r#"
let foo = netns("foons");
let v = veth("veth0", "foo-veth0");
v.peer.move_to(foo);
v.peer.rename("eth0");
v.peer.addr("172.18.0.20/16").up();
let br = bridge("foobr0");
br.stp(false);
br.addr("172.18.0.1/16").up();
br.attach(v);
v.up();
foo.route("default", "172.18.0.1");
masquerade("172.18.0.0/16");
dnat(8080, "172.18.0.20:80");
"#;

fn declared(script: &str) -> Topology {
    let runner = Runner::new("t", Box::new(Recorder::new()), None).unwrap();
    let mut s = Session::new(runner, None, &[], 1_000_000);
    let _ = s.eval_named("", script).unwrap();
    s.runner().topo.clone()
}

/// The steps that converge kernel `k` to `topo`, for a topology "t" owning nothing yet.
fn plan_on(topo: &Topology, k: &mut Recorder) -> Result<Vec<Step>, DiffError> {
    diff(topo, k, "t", "t.rhai", &[], &World::default()).map(|d| d.steps)
}

#[test]
fn second_diff_after_apply_is_empty() {
    let topo = declared(SEED);
    let mut k = Recorder::new();
    let steps = plan_on(&topo, &mut k).unwrap();
    assert!(steps.len() > 10);
    for s in &steps {
        k.apply(&s.op).unwrap();
    }
    let again = plan_on(&topo, &mut k).unwrap();
    let left: Vec<String> = again.iter().map(|s| s.op.summary()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn veth_is_born_in_place_with_its_final_name() {
    let topo = declared(SEED);
    let steps = plan_on(&topo, &mut Recorder::new()).unwrap();
    let lines: Vec<String> = steps
        .iter()
        .flat_map(|s| crate::plan::render(&s.op))
        .collect();
    assert!(
        lines.contains(&"ip link add veth0 type veth peer name eth0 netns foons".to_string()),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("foo-veth0")));
}

#[test]
fn a_late_refusal_rolls_everything_back() {
    let topo = declared(SEED);
    let mut probe = Recorder::new();
    let n = plan_on(&topo, &mut probe).unwrap().len();
    for fail_at in [0, 1, n / 2, n - 1] {
        let mut rec = Recorder::new();
        rec.fail_at = Some(fail_at);
        let mut r = Runner::new("t", Box::new(rec), None).unwrap();
        r.topo = topo.clone();
        let err = r.flush().unwrap_err();
        assert!(matches!(err, RunError::Apply(_)), "{err}");
        let errs = r.rollback();
        assert!(errs.is_empty(), "fail at {fail_at}: {errs:?}");
        let k = r.kernel();
        assert!(
            k.netns_ino(&NsName::new("foons").unwrap())
                .unwrap()
                .is_none(),
            "fail at {fail_at}"
        );
        let host = k.observe(&NsRef::Host).unwrap();
        let pristine = Recorder::new().observe(&NsRef::Host).unwrap();
        assert_eq!(host, pristine, "fail at {fail_at}");
        assert_eq!(k.nat_info(&NsRef::Host, "netplumb-t").unwrap(), None);
        assert_eq!(
            k.sysctl_get(&NsRef::Host, "net.ipv4.ip_forward")
                .unwrap()
                .as_deref(),
            Some("0")
        );
    }
}

#[test]
fn taken_names_and_unreachable_gateways_fail_before_any_change() {
    let mut k = Recorder::new();
    k.apply(&Op::AddBridge {
        ns: NsRef::Host,
        name: crate::model::IfName::new("veth0").unwrap(),
    })
    .unwrap();
    let topo = declared(SEED);
    let e = plan_on(&topo, &mut k).unwrap_err();
    assert!(e.msg.contains("already has veth0"), "{}", e.msg);
    let topo = declared("let n = netns(\"a\"); n.route(\"default\", \"10.0.0.1\");");
    let e = plan_on(&topo, &mut Recorder::new()).unwrap_err();
    assert!(
        e.msg
            .contains("gateway 10.0.0.1 is not on any subnet of netns a"),
        "{}",
        e.msg
    );
    assert_eq!(e.pos.line, 1);
}

#[test]
fn teardown_skips_what_goes_with_a_namespace() {
    let topo = declared(SEED);
    let mut k = Recorder::new();
    let steps = plan_on(&topo, &mut k).unwrap();
    for s in &steps {
        k.apply(&s.op).unwrap();
    }
    let owns: Vec<Entry> = steps.iter().flat_map(|s| s.records.clone()).collect();
    let before = k.log.len();
    assert!(
        teardown(&mut k, None, &owns, &World::default())
            .errors
            .is_empty()
    );
    let undone: Vec<String> = k.log[before..].iter().map(|o| o.summary()).collect();
    assert!(undone.iter().any(|s| s == "- netns foons"), "{undone:?}");
    assert!(
        !undone.iter().any(|s| s.contains("foons:eth0")),
        "inside the namespace: {undone:?}"
    );
    assert!(
        !undone.iter().any(|s| s == "- link veth0"),
        "the veth goes with its peer's namespace: {undone:?}"
    );
    assert!(undone.iter().any(|s| s == "- link foobr0"));
}

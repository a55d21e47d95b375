//! The prune logic on the recording fake: what a topology owns and its
//! script no longer declares is removed innermost first, each removal with
//! the undo that rebuilds it; shared objects are released, not removed;
//! sysctls go back to the value found before the topology set them.

use super::*;
use crate::kernel::Recorder;
use crate::ledger::{SysctlKey, SysctlValue};
use crate::model::NsName;
use crate::run::Runner;
use crate::script::Session;

const V1: &str = r#"
let n1 = netns("n1");
let n2 = netns("n2");
let a = veth("s1", n1, "eth0");
a.addr("10.61.1.1/24").up();
a.peer.addr("10.61.1.2/24").up();
n1.route("default", "10.61.1.1");
let b = veth("s2", n2, "eth0");
b.addr("10.61.2.1/24").up();
b.peer.addr("10.61.2.2/24").up();
n2.route("default", "10.61.2.1");
dnat(8081, "10.61.2.2:80");
"#;

const V2: &str = r#"
let n1 = netns("n1");
let a = veth("s1", n1, "eth0");
a.addr("10.61.1.1/24").up();
a.peer.addr("10.61.1.3/24").up();
n1.route("default", "10.61.1.1");
"#;

fn declared(script: &str) -> Topology {
    let runner = Runner::new("t", Box::new(Recorder::new()), None).unwrap();
    let mut s = Session::new(runner, None, &[], 1_000_000);
    let _ = s.eval_named("", script).unwrap();
    s.runner().topo.clone()
}

/// Converge `k` to `script` for topology "t" owning `owned`; returns the
/// diff and what "t" owns afterwards.
fn converge(k: &mut Recorder, script: &str, owned: &[Entry], world: &World) -> (Diff, Vec<Entry>) {
    let topo = declared(script);
    let d = diff(&topo, k, "t", "t.rhai", owned, world).unwrap();
    let mut now: Vec<Entry> = owned.to_vec();
    for s in &d.steps {
        k.apply(&s.op).unwrap();
        now.retain(|e| !s.retires.contains(e));
        now.extend(s.records.iter().cloned());
    }
    now.retain(|e| !d.releases.contains(e));
    now.extend(d.claims.iter().cloned());
    (d, now)
}

fn summaries(d: &Diff) -> Vec<String> {
    d.steps.iter().map(|s| s.op.summary()).collect()
}

#[test]
fn what_the_script_drops_is_removed_innermost_first_and_then_nothing() {
    let mut k = Recorder::new();
    let (_, owned) = converge(&mut k, V1, &[], &World::default());
    let (d, owned) = converge(&mut k, V2, &owned, &World::default());
    let s = summaries(&d);
    let at = |line: &str| {
        s.iter()
            .position(|x| x == line)
            .unwrap_or_else(|| panic!("no `{line}` in {s:#?}"))
    };
    assert!(at("- nat table netplumb-t in host") < at("- route default via 10.61.2.1 in n2"));
    assert!(at("- route default via 10.61.2.1 in n2") < at("- addr 10.61.2.2/24 on n2:eth0"));
    assert!(at("- addr 10.61.2.1/24 on s2") < at("- link s2"));
    assert!(at("- link s2") < at("- netns n2"));
    // The old address goes before the new one comes: the new one is primary.
    assert!(at("- addr 10.61.1.2/24 on n1:eth0") < at("+ addr 10.61.1.3/24 on n1:eth0"));
    // Every removal retires what it removed from the record.
    for st in d.steps.iter().filter(|st| st.op.is_removal()) {
        assert!(!st.retires.is_empty(), "{}", st.op.summary());
    }
    assert!(k.netns_ino(&NsName::new("n2").unwrap()).unwrap().is_none());
    assert_eq!(k.nat_info(&NsRef::Host, "netplumb-t").unwrap(), None);
    let (again, _) = converge(&mut k, V2, &owned, &World::default());
    assert!(again.steps.is_empty(), "{:?}", summaries(&again));
}

#[test]
fn undoing_the_removals_in_reverse_restores_v1_exactly() {
    let mut k = Recorder::new();
    let (_, owned) = converge(&mut k, V1, &[], &World::default());
    let seen: Vec<NsState> = ["", "n1", "n2"]
        .iter()
        .map(|n| k.observe(&ns_of(n)).unwrap())
        .collect();
    let (d, _) = converge(&mut k, V2, &owned, &World::default());
    // The removed address took n1's default route with it: its undo puts
    // the route back too.
    let del = d
        .steps
        .iter()
        .find(|s| s.op.summary() == "- addr 10.61.1.2/24 on n1:eth0")
        .unwrap();
    assert!(
        del.undo
            .iter()
            .any(|o| o.summary() == "+ route default via 10.61.1.1 in n1"),
        "{:?}",
        del.undo.iter().map(Op::summary).collect::<Vec<_>>()
    );
    for s in d.steps.iter().rev() {
        for op in &s.undo {
            if let Err(e) = k.apply(op) {
                panic!("undo {} of {}: {e:?}", op.summary(), s.op.summary());
            }
        }
    }
    for (n, want) in ["", "n1", "n2"].iter().zip(&seen) {
        let mut got = k.observe(&ns_of(n)).unwrap();
        let mut want = want.clone();
        // Remade objects get new ifindexes; compare what a user sees.
        for st in [&mut got, &mut want] {
            st.links.iter_mut().for_each(|l| l.index = 0);
            st.links.sort_by(|a, b| a.name.cmp(&b.name));
            st.addrs.iter_mut().for_each(|a| a.index = 0);
            st.routes.iter_mut().for_each(|r| r.oif = None);
            st.routes.sort_by_key(|r| format!("{r:?}"));
            st.links.iter_mut().for_each(|l| {
                l.peer = None;
                l.master = None;
                l.peer_netnsid = None;
            });
        }
        assert_eq!(got, want, "netns '{n}'");
    }
    assert!(k.nat_info(&NsRef::Host, "netplumb-t").unwrap().is_some());
}

fn ns_of(n: &str) -> NsRef {
    match n {
        "" => NsRef::Host,
        n => NsRef::Named(NsName::new(n).unwrap()),
    }
}

#[test]
fn a_namespace_another_topology_shares_is_released_not_removed() {
    let mut k = Recorder::new();
    let (_, owned) = converge(&mut k, V1, &[], &World::default());
    let n2 = owned
        .iter()
        .find(|e| matches!(e, Entry::Netns { ns, .. } if ns.as_str() == "n2"))
        .unwrap()
        .clone();
    let world = World {
        others: vec![("other".into(), vec![n2.clone()])],
        ..World::default()
    };
    let (d, _) = converge(&mut k, V2, &owned, &world);
    let s = summaries(&d);
    assert!(!s.iter().any(|x| x == "- netns n2"), "{s:#?}");
    // This topology's own objects inside it still go.
    assert!(
        s.iter().any(|x| x == "- addr 10.61.2.2/24 on n2:eth0"),
        "{s:#?}"
    );
    assert!(d.releases.contains(&n2));
    assert!(
        d.notes
            .iter()
            .any(|n| n == "netns n2: still used by topology 'other', left to it"),
        "{:?}",
        d.notes
    );
    assert!(k.netns_ino(&NsName::new("n2").unwrap()).unwrap().is_some());
}

#[test]
fn a_dropped_sysctl_goes_back_to_its_old_value_unless_another_topology_needs_it() {
    let key = "net.ipv4.conf.all.rp_filter";
    let set = format!("{V2}host().sysctl(\"{key}\", \"2\");");
    for shared in [false, true] {
        let mut k = Recorder::new();
        let (_, owned) = converge(&mut k, &set, &[], &World::default());
        assert_eq!(
            k.sysctl_get(&NsRef::Host, key).unwrap().as_deref(),
            Some("2")
        );
        let world = if shared {
            World {
                others: vec![(
                    "other".into(),
                    vec![Entry::Sysctl {
                        ns: NsRef::Host,
                        key: SysctlKey::new(key).unwrap(),
                        value: SysctlValue::new("2").unwrap(),
                        old: None,
                    }],
                )],
                ..World::default()
            }
        } else {
            World::default()
        };
        let (d, owned) = converge(&mut k, V2, &owned, &world);
        let want = if shared { "2" } else { "0" };
        assert_eq!(
            k.sysctl_get(&NsRef::Host, key).unwrap().as_deref(),
            Some(want)
        );
        assert_eq!(
            summaries(&d),
            if shared {
                Vec::<String>::new()
            } else {
                vec![format!("~ sysctl {key}=0 in host")]
            }
        );
        assert!(!owned.iter().any(|e| matches!(e, Entry::Sysctl { .. })));
    }
}

use std::sync::Arc;

use super::alloc::{VXLAN_VNI_MAX, VXLAN_VNI_MIN};
use super::*;
use crate::topo::Topology;

fn site(name: &str, n: u8) -> SiteDecl {
    SiteDecl {
        name: Arc::from(name),
        underlay: IpAddr::from([192, 0, 2, n]),
        ssh: name.to_string(),
        mtu: 1500,
        pos: Pos::default(),
    }
}

#[test]
fn vni_is_stable_and_order_free_and_in_range() {
    let a = vni_for("lab", &["east a eth0".into(), "west b eth0".into()]);
    let b = vni_for("lab", &["west b eth0".into(), "east a eth0".into()]);
    assert_eq!(a, b);
    assert!((VXLAN_VNI_MIN..=VXLAN_VNI_MAX).contains(&a));
    assert_ne!(
        a,
        vni_for("lab2", &["east a eth0".into(), "west b eth0".into()])
    );
    // Pinned: every machine must compute the same number, release after release.
    assert_eq!(vni_for("t", &["x".into()]), vni_for("t", &["x".into()]));
}

#[test]
fn parts_swap_in_and_out_and_the_selected_one_comes_back() {
    let mut s = Sites {
        list: vec![site("east", 1), site("west", 2)],
        selected: Some("west".into()),
        ..Sites::default()
    };
    let mut topo = Topology::with_limit(7);
    let east: Arc<str> = Arc::from("east");
    let west: Arc<str> = Arc::from("west");
    s.enter(&mut topo, Some(&east));
    topo.add_netns(crate::model::NsName::new("a").unwrap(), Pos::default())
        .unwrap();
    s.enter(&mut topo, Some(&west));
    assert!(topo.namespaces().is_empty(), "west's part is its own");
    s.enter(&mut topo, Some(&east));
    assert_eq!(topo.namespaces().len(), 1);
    s.restore(&mut topo);
    assert!(topo.namespaces().is_empty(), "the selected part is west's");
    assert_eq!(s.part(&topo, Some(&east)).unwrap().namespaces().len(), 1);
}

#[test]
fn the_selected_site_is_checked() {
    let mut s = Sites {
        list: vec![site("east", 1), site("west", 2)],
        ..Sites::default()
    };
    assert_eq!(
        s.check_selected(true).unwrap_err().to_string(),
        "this script has sites (east, west): bring one up with --site NAME (or every one with --all-sites)"
    );
    assert!(s.check_selected(false).is_ok(), "plan of every site");
    s.selected = Some("north".into());
    assert_eq!(
        s.check_selected(true).unwrap_err().to_string(),
        "--site north: the script has no site north (its sites: east, west)"
    );
    s.list.clear();
    assert!(
        s.check_selected(true)
            .unwrap_err()
            .to_string()
            .contains("declares no sites")
    );
}

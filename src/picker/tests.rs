use super::*;
use crate::ids::ProviderId;
use crate::quota::Window;

fn label(s: &str) -> Label {
    s.parse().unwrap()
}

fn snap(primary_used: f64, weekly_used: f64) -> Snapshot {
    Snapshot {
        primary: Some(Window {
            used_percent: Some(primary_used),
            window_minutes: Some(300),
            reset_at: Some(10_000),
        }),
        secondary: Some(Window {
            used_percent: Some(weekly_used),
            window_minutes: Some(10080),
            reset_at: Some(90_000),
        }),
        ..Snapshot::default()
    }
}

fn names(pick: &Pick) -> Vec<&str> {
    pick.order.iter().map(Label::as_str).collect()
}

/// Three accounts with different usage: the one with the most left in its tightest window
/// goes first, whatever the configured order.
#[test]
fn headroom_orders_three_accounts_by_their_tightest_window() {
    let (a, b, c) = (label("a"), label("b"), label("c"));
    // a: 5h 90% used (10 left); b: weekly 70% used (30 left); c: 20/40 used (60 left).
    let (sa, sb, sc) = (snap(90.0, 10.0), snap(5.0, 70.0), snap(20.0, 40.0));
    let accounts = [
        Account {
            label: &a,
            snapshot: Some(&sa),
            cooling_until: None,
        },
        Account {
            label: &b,
            snapshot: Some(&sb),
            cooling_until: None,
        },
        Account {
            label: &c,
            snapshot: Some(&sc),
            cooling_until: None,
        },
    ];
    let pick = order(Strategy::Headroom, &accounts, None, 0, 100);
    assert_eq!(names(&pick), ["c", "b", "a"]);
    assert_eq!(pick.why, Some(Why::MostHeadroom));
    assert_eq!(pick.left, [60.0, 30.0, 10.0]);
    let first = Headroom::of(Some(&sc), 100);
    assert_eq!(first.percent, 60.0);
    assert_eq!(first.describe(), "5h 80% left, weekly 60% left");
}

#[test]
fn unknown_and_reset_windows_count_as_full_and_ties_keep_the_order() {
    let (a, b, c) = (label("a"), label("b"), label("c"));
    let used = snap(50.0, 50.0);
    // Both windows reset before `now`: as good as new.
    let reset = Snapshot {
        primary: Some(Window {
            used_percent: Some(99.0),
            window_minutes: Some(300),
            reset_at: Some(50),
        }),
        ..Snapshot::default()
    };
    let accounts = [
        Account {
            label: &a,
            snapshot: Some(&used),
            cooling_until: None,
        },
        Account {
            label: &b,
            snapshot: None,
            cooling_until: None,
        },
        Account {
            label: &c,
            snapshot: Some(&reset),
            cooling_until: None,
        },
    ];
    let pick = order(Strategy::Headroom, &accounts, None, 0, 100);
    assert_eq!(names(&pick), ["b", "c", "a"]);
    assert_eq!(pick.left, [100.0, 100.0, 50.0]);
    let unknown = Headroom::of(None, 100);
    assert!(!unknown.known);
    assert_eq!(unknown.describe(), "no quota figures yet");
    assert_eq!(Headroom::of(Some(&reset), 100).percent, 100.0);
}

#[test]
fn a_sticky_account_goes_first_while_it_can_serve() {
    let (a, b) = (label("a"), label("b"));
    let (sa, sb) = (snap(80.0, 10.0), snap(10.0, 10.0));
    let mut accounts = [
        Account {
            label: &a,
            snapshot: Some(&sa),
            cooling_until: None,
        },
        Account {
            label: &b,
            snapshot: Some(&sb),
            cooling_until: None,
        },
    ];
    let pick = order(Strategy::Headroom, &accounts, Some(&a), 0, 100);
    assert_eq!(names(&pick), ["a", "b"]);
    assert_eq!(pick.why, Some(Why::Sticky));
    // Cooling down: the conversation moves on, and the cooled account is still listed last.
    accounts[0].cooling_until = Some(500);
    let pick = order(Strategy::Headroom, &accounts, Some(&a), 0, 100);
    assert_eq!(names(&pick), ["b", "a"]);
    assert_eq!(pick.why, Some(Why::MostHeadroom));
    // A sticky label that is not an account of this target changes nothing.
    let pick = order(Strategy::Failover, &accounts, Some(&label("zzz")), 0, 100);
    assert_eq!(names(&pick), ["b", "a"]);
    assert_eq!(pick.why, Some(Why::Order));
}

#[test]
fn cooling_accounts_go_last_in_reset_order() {
    let (a, b, c) = (label("a"), label("b"), label("c"));
    let accounts = [
        Account {
            label: &a,
            snapshot: None,
            cooling_until: Some(900),
        },
        Account {
            label: &b,
            snapshot: None,
            cooling_until: Some(300),
        },
        Account {
            label: &c,
            snapshot: None,
            cooling_until: Some(50),
        }, // over at 100
    ];
    let pick = order(Strategy::Failover, &accounts, None, 0, 100);
    assert_eq!(names(&pick), ["c", "b", "a"]);
    let all_cooling = [
        Account {
            label: &a,
            snapshot: None,
            cooling_until: Some(900),
        },
        Account {
            label: &b,
            snapshot: None,
            cooling_until: Some(300),
        },
    ];
    let pick = order(Strategy::Headroom, &all_cooling, None, 0, 100);
    assert_eq!(names(&pick), ["b", "a"]);
    assert_eq!(pick.why, Some(Why::AllCooling));
    assert_eq!(order(Strategy::Headroom, &[], None, 0, 100).why, None);
}

#[test]
fn failover_and_round_robin_keep_their_meaning() {
    let (a, b, c) = (label("a"), label("b"), label("c"));
    let (sa, sc) = (snap(90.0, 90.0), snap(0.0, 0.0));
    let accounts = [
        Account {
            label: &a,
            snapshot: Some(&sa),
            cooling_until: None,
        },
        Account {
            label: &b,
            snapshot: None,
            cooling_until: None,
        },
        Account {
            label: &c,
            snapshot: Some(&sc),
            cooling_until: None,
        },
    ];
    assert_eq!(
        names(&order(Strategy::Failover, &accounts, None, 0, 1)),
        ["a", "b", "c"]
    );
    let rr = order(Strategy::RoundRobin, &accounts, None, 4, 1);
    assert_eq!(names(&rr), ["b", "c", "a"]);
    assert_eq!(rr.why, Some(Why::Rotation));
}

#[test]
fn sticky_map_remembers_forgets_and_stays_bounded() {
    let map = StickyMap::new();
    let p = ProviderId::openai_codex();
    let a = label("a");
    assert_eq!(map.get(&p, "conv", 0), None);
    map.set(&p, "conv", &a, 10);
    assert_eq!(map.get(&p, "conv", 20), Some(a.clone()));
    assert_eq!(map.get(&p, "conv", 10 + sticky::IDLE_LIMIT), None);
    assert_eq!(map.get(&"other".parse().unwrap(), "conv", 20), None);
    for i in 0..sticky::CAPACITY + 10 {
        map.set(&p, &format!("c{i}"), &a, 100 + i64::try_from(i).unwrap());
    }
    assert_eq!(map.len(), sticky::CAPACITY);
    // The oldest went first; the newest are kept.
    assert_eq!(map.get(&p, "c0", 200), None);
    let newest = format!("c{}", sticky::CAPACITY + 9);
    assert_eq!(map.get(&p, &newest, 200), Some(a));
}

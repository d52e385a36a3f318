//! Which provider account a message goes to: its pair's route (steps by
//! priority, equals sharing by weight), with accounts that are down moved
//! behind those that are up, and those that stopped delivering the pair's
//! messages (notify-svc's route-health rule) behind those that deliver,
//! but for a probe share that shows when they recover. The plan is made
//! once, when the message is accepted; the send walks it only while a
//! provider provably did not take the message, so one whose fate is
//! uncertain is never sent elsewhere.

/// One provider account of a pair's route, as operator-svc keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStep {
    pub provider: String,
    pub priority: u32,
    pub weight: u32,
}

/// Why a message went to its provider; recorded on it and its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The pair has no route (or names no account this service has): the
    /// accounts in their configured order.
    Default,
    /// The first step of the pair's route.
    Route,
    /// Drawn by weight among the route's first steps of equal priority.
    Weighted,
    /// The steps before it were down (breaker open, not bound).
    FailoverOutage,
    /// A provider before it provably did not take the message.
    FailoverNotTaken,
    /// The steps before it stopped delivering this pair's messages.
    FailoverHealth,
    /// A step that stopped delivering this pair's messages, sent a probe
    /// to see whether it delivers again.
    Probe,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Default => "default",
            RouteReason::Route => "route",
            RouteReason::Weighted => "weighted",
            RouteReason::FailoverOutage => "failover_outage",
            RouteReason::FailoverNotTaken => "failover_not_taken",
            RouteReason::FailoverHealth => "failover_health",
            RouteReason::Probe => "probe",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            RouteReason::Default,
            RouteReason::Route,
            RouteReason::Weighted,
            RouteReason::FailoverOutage,
            RouteReason::FailoverNotTaken,
            RouteReason::FailoverHealth,
            RouteReason::Probe,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

/// An account as the plan sees it: its name, whether it is up now and
/// whether it stopped delivering the pair's messages.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub up: bool,
    pub sick: bool,
}

/// Positions in `accounts` to try in order, each with why it would be
/// chosen; never empty while there is an account. `draw` gives numbers in
/// [0, 1) for the weighted picks and the probes; `probe_share` of the
/// messages whose route has a sick step keep the route's order.
pub fn plan(
    route: &[RouteStep],
    accounts: &[Candidate<'_>],
    probe_share: f64,
    draw: &mut impl FnMut() -> f64,
) -> Vec<(usize, RouteReason)> {
    let position = |name: &str| accounts.iter().position(|a| a.name == name);
    let mut steps: Vec<(usize, &RouteStep)> = route
        .iter()
        .filter_map(|step| position(&step.provider).map(|at| (at, step)))
        .collect();
    // Kept by priority already; sorted again so the rule holds on its own.
    steps.sort_by_key(|(_, step)| step.priority);
    let (ordered, first_reason): (Vec<usize>, RouteReason) = if steps.is_empty() {
        ((0..accounts.len()).collect(), RouteReason::Default)
    } else {
        let first_group = steps
            .iter()
            .filter(|(_, s)| s.priority == steps[0].1.priority);
        let reason = if first_group.count() > 1 {
            RouteReason::Weighted
        } else {
            RouteReason::Route
        };
        (by_weight(&steps, draw), reason)
    };
    let (up, down): (Vec<usize>, Vec<usize>) = ordered.iter().partition(|&&at| accounts[at].up);
    let any_sick = up.iter().any(|&at| accounts[at].sick);
    let probing = any_sick && draw() < probe_share;
    // Sick ones after the healthy: still before those down, as they take
    // messages, and a last resort is better than none.
    let (healthy, sick): (Vec<usize>, Vec<usize>) = if probing {
        (up, Vec::new())
    } else {
        up.into_iter().partition(|&at| !accounts[at].sick)
    };
    let chosen = healthy.first().or(sick.first()).copied();
    let first = match (chosen, ordered.first()) {
        (Some(a), Some(&b)) if a == b && probing && accounts[a].sick => RouteReason::Probe,
        (Some(a), Some(&b)) if a == b => first_reason,
        (Some(_), Some(&b)) if !accounts[b].up => RouteReason::FailoverOutage,
        (Some(_), Some(_)) => RouteReason::FailoverHealth,
        _ => first_reason,
    };
    // Down ones last: tried only once those up did not take the message,
    // and answering at once while their breaker is open.
    healthy
        .into_iter()
        .chain(sick)
        .chain(down)
        .enumerate()
        .map(|(i, at)| {
            (
                at,
                if i == 0 {
                    first
                } else {
                    RouteReason::FailoverNotTaken
                },
            )
        })
        .collect()
}

/// Steps (sorted by priority) in the order to try them: each priority's
/// steps drawn one after another by weight.
fn by_weight(steps: &[(usize, &RouteStep)], draw: &mut impl FnMut() -> f64) -> Vec<usize> {
    let mut ordered = Vec::with_capacity(steps.len());
    let mut rest = steps;
    while let Some((_, head)) = rest.first() {
        let same = rest
            .iter()
            .take_while(|(_, s)| s.priority == head.priority)
            .count();
        let mut group: Vec<(usize, u32)> = rest[..same]
            .iter()
            .map(|(at, step)| (*at, step.weight.max(1)))
            .collect();
        while !group.is_empty() {
            if let [(only, _)] = group[..] {
                ordered.push(only);
                break;
            }
            let total: u32 = group.iter().map(|(_, weight)| weight).sum();
            let mut point = draw().clamp(0.0, 1.0) * f64::from(total);
            let mut pick = group.len() - 1;
            for (i, (_, weight)) in group.iter().enumerate() {
                if point < f64::from(*weight) {
                    pick = i;
                    break;
                }
                point -= f64::from(*weight);
            }
            ordered.push(group.remove(pick).0);
        }
        rest = &rest[same..];
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(provider: &str, priority: u32, weight: u32) -> RouteStep {
        RouteStep {
            provider: provider.into(),
            priority,
            weight,
        }
    }

    fn accounts(up: &[bool]) -> Vec<Candidate<'static>> {
        ["twilio", "smsc", "spare"]
            .iter()
            .zip(up)
            .map(|(name, up)| Candidate {
                name,
                up: *up,
                sick: false,
            })
            .collect()
    }

    fn sick(mut all: Vec<Candidate<'static>>, name: &str) -> Vec<Candidate<'static>> {
        for candidate in &mut all {
            candidate.sick |= candidate.name == name;
        }
        all
    }

    fn names(plan: &[(usize, RouteReason)]) -> Vec<(&'static str, &'static str)> {
        let all = ["twilio", "smsc", "spare"];
        plan.iter()
            .map(|(at, why)| (all[*at], why.as_str()))
            .collect()
    }

    #[test]
    fn no_route_is_the_configured_order() {
        let plan = plan(&[], &accounts(&[true, true, true]), 0.0, &mut || 0.5);
        assert_eq!(
            names(&plan),
            [
                ("twilio", "default"),
                ("smsc", "failover_not_taken"),
                ("spare", "failover_not_taken")
            ]
        );
    }

    #[test]
    fn the_route_comes_first_and_unknown_accounts_are_skipped() {
        let route = [step("gone", 0, 1), step("smsc", 1, 1), step("twilio", 2, 1)];
        let plan = plan(&route, &accounts(&[true, true, true]), 0.0, &mut || 0.5);
        assert_eq!(
            names(&plan),
            [("smsc", "route"), ("twilio", "failover_not_taken")]
        );
    }

    #[test]
    fn accounts_down_go_last() {
        let route = [step("smsc", 1, 1), step("twilio", 2, 1)];
        let plan = plan(&route, &accounts(&[true, false, true]), 0.0, &mut || 0.5);
        assert_eq!(
            names(&plan),
            [
                ("twilio", "failover_outage"),
                ("smsc", "failover_not_taken")
            ]
        );
        // All down: the route's order, its first choice as the reason.
        let plan = super::plan(&route, &accounts(&[false, false, true]), 0.0, &mut || 0.5);
        assert_eq!(names(&plan)[0], ("smsc", "route"));
    }

    #[test]
    fn equal_priorities_share_by_weight() {
        let route = [
            step("smsc", 1, 30),
            step("twilio", 1, 70),
            step("spare", 2, 5),
        ];
        let all = accounts(&[true, true, true]);
        let mut draws = (0..1000).map(|i| f64::from(i) / 1000.0);
        let mut firsts = std::collections::HashMap::new();
        for _ in 0..1000 {
            let plan = plan(&route, &all, 0.0, &mut || draws.next().unwrap_or(0.0));
            assert_eq!(plan.len(), 3);
            assert_eq!(plan[0].1, RouteReason::Weighted);
            assert_eq!(plan[2].0, 2, "the lower priority stays last");
            *firsts.entry(plan[0].0).or_insert(0) += 1;
        }
        assert_eq!(firsts[&1], 300);
        assert_eq!(firsts[&0], 700);
    }

    #[test]
    fn a_sick_step_goes_behind_the_healthy_but_before_those_down() {
        let route = [
            step("smsc", 1, 1),
            step("twilio", 2, 1),
            step("spare", 3, 1),
        ];
        let all = sick(accounts(&[true, true, false]), "smsc");
        let plan = plan(&route, &all, 0.02, &mut || 0.5);
        assert_eq!(
            names(&plan),
            [
                ("twilio", "failover_health"),
                ("smsc", "failover_not_taken"),
                ("spare", "failover_not_taken")
            ]
        );
        // A healthy first step is not moved for a sick one behind it.
        let all = sick(accounts(&[true, true, true]), "twilio");
        assert_eq!(
            names(&super::plan(&route, &all, 0.02, &mut || 0.5))[0],
            ("smsc", "route")
        );
        // Every step sick: the route as it is.
        let mut all = sick(accounts(&[true, true, false]), "smsc");
        all = sick(all, "twilio");
        assert_eq!(
            names(&super::plan(&route, &all, 0.02, &mut || 0.5))[0],
            ("smsc", "route")
        );
        // The first step down and the second sick: the outage is the reason.
        let all = sick(accounts(&[true, false, true]), "twilio");
        assert_eq!(
            names(&super::plan(&route, &all, 0.02, &mut || 0.5))[0],
            ("spare", "failover_outage")
        );
    }

    #[test]
    fn the_probe_share_keeps_the_route() {
        let route = [step("smsc", 1, 1), step("twilio", 2, 1)];
        let all = sick(accounts(&[true, true, true]), "smsc");
        let mut draws = (0..1000).map(|i| f64::from(i) / 1000.0);
        let probes = (0..1000)
            .filter(|_| {
                let plan = plan(&route, &all, 0.02, &mut || draws.next().unwrap_or(0.0));
                plan[0].1 == RouteReason::Probe
            })
            .count();
        assert_eq!(probes, 20);
        // Down, a sick step gets no probes.
        let all = sick(accounts(&[true, false, true]), "smsc");
        assert_eq!(
            names(&plan(&route, &all, 1.0, &mut || 0.0))[0],
            ("twilio", "failover_outage")
        );
    }

    #[test]
    fn reasons_read_back() {
        for reason in [
            RouteReason::Default,
            RouteReason::Route,
            RouteReason::Weighted,
            RouteReason::FailoverOutage,
            RouteReason::FailoverNotTaken,
            RouteReason::FailoverHealth,
            RouteReason::Probe,
        ] {
            assert_eq!(RouteReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(RouteReason::parse("nope"), None);
    }
}

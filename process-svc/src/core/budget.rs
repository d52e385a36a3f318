//! Per-country budgets: a cap of messages per minute shared fairly by the
//! country's active sessions, wherever they run. Each replica computes the
//! same shares from the same list of active sessions, so no replica has to
//! ask another.

use std::collections::HashMap;

/// The rate each session may send at (messages per minute), given every
/// active session as (id, country, asked-for rate) and the caps. Fair means
/// max-min fair: no session gets more than it asked for, and what a slow
/// session leaves of its equal share goes to the others.
pub fn shares(
    sessions: &[(String, String, f64)],
    caps: &HashMap<String, f64>,
) -> HashMap<String, f64> {
    let mut by_country: HashMap<&str, Vec<(&str, f64)>> = HashMap::new();
    for (id, country, rate) in sessions {
        by_country
            .entry(country.as_str())
            .or_default()
            .push((id.as_str(), *rate));
    }
    let mut shares = HashMap::new();
    for (country, mut members) in by_country {
        let Some(&cap) = caps.get(country) else {
            shares.extend(members.iter().map(|(id, rate)| (id.to_string(), *rate)));
            continue;
        };
        members.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut left = cap;
        let mut waiting = members.len();
        for (id, rate) in members {
            let equal = left / waiting as f64;
            let share = rate.min(equal);
            shares.insert(id.to_string(), share);
            left -= share;
            waiting -= 1;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, country: &str, rate: f64) -> (String, String, f64) {
        (id.into(), country.into(), rate)
    }

    #[test]
    fn a_cap_is_shared_max_min_fairly() {
        let caps = HashMap::from([("GB".to_string(), 600.0)]);
        let got = shares(
            &[
                session("a", "GB", 600.0),
                session("b", "GB", 600.0),
                session("c", "US", 900.0),
            ],
            &caps,
        );
        assert_eq!(got["a"], 300.0);
        assert_eq!(got["b"], 300.0);
        assert_eq!(got["c"], 900.0);

        let got = shares(
            &[
                session("a", "GB", 100.0),
                session("b", "GB", 600.0),
                session("d", "GB", 600.0),
            ],
            &caps,
        );
        assert_eq!(got["a"], 100.0);
        assert_eq!(got["b"], 250.0);
        assert_eq!(got["d"], 250.0);
    }
}
